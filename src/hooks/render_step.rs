//! A job's templates rendered during `apply` (SPEC §12): after the job's namespaces are
//! written and before its `pre_deploy` hooks, every `.tpl` of the job for each active
//! allocation, read through the apply's write transaction (so a template sees this apply's
//! catalog and the writes of earlier jobs' hooks), into the staging tree
//! `<bucket>/data/stage/<host>/jobs/<job>/<path without .tpl>` — maand's
//! `tmp/workers/<ip>/jobs/<job>/` — whose root hooks get as `KVFORM_STAGE_DIR`.
//!
//! The files hold rendered secrets, so the tree is private (directories 0700, files 0600,
//! under the git-ignored `data/`), and nothing of their content is logged. A job's directory
//! for an allocation is replaced whole at each render, so a template removed from the
//! workspace leaves no stale file behind. A template that fails fails the job like a failed
//! `pre_deploy` hook (its checkpoint is rolled back).
//!
//! The masked copy (every secret the template read as `(sensitive)`) is also recorded in the
//! state, in the same transaction (`crate::state::render`): `plan --render` diffs against it
//! on any machine sharing the state.

use super::store::HookStore;
use super::txn_store::TxnStore;
use crate::apply::{StepContext, StepFailure};
use crate::templates::{Allocation, Reader, render_job};
use crate::workspace::templates::job_templates;
use crate::workspace::types::Event;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// `<bucket>/data/stage`: the staging tree's root (`KVFORM_STAGE_DIR`).
pub fn stage_dir(bucket_root: &Path) -> PathBuf {
    bucket_root.join("data").join("stage")
}

/// `<bucket>/data/render`: the same tree with every secret a template read shown as
/// `(sensitive)` — what `plan --render` compares the next render with (the staged files hold
/// the secrets themselves, which a plan must never print).
pub fn review_dir(bucket_root: &Path) -> PathBuf {
    bucket_root.join("data").join("render")
}

/// Reads through the apply's write transaction, as the job's hooks do.
struct TxnReader(RefCell<TxnStore>);

impl Reader for TxnReader {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        let v = self.0.borrow_mut().get(ns, key).map_err(|e| e.to_string())?;
        Ok(v.filter(|v| v.expired_at.is_none()).map(|v| v.value.to_string()))
    }
    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        self.0.borrow_mut().keys(ns).map_err(|e| e.to_string())
    }
}

/// What one allocation's render needs that the apply knows: id, current and new version.
pub struct AllocFacts {
    pub alloc_id: String,
    pub current_version: String,
    pub new_version: String,
}

fn failure(job: &str, message: String) -> StepFailure {
    StepFailure { job: job.to_string(), event: Event::PreDeploy, message, output: Vec::new() }
}

/// The apply's transaction (a poisoned lock still holds it: the step's failure says why).
fn lock(txn: &crate::apply::SharedTxn) -> std::sync::MutexGuard<'_, crate::state::WriteTxn> {
    txn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())
}

/// Render `job`'s templates for `hosts` into the staging tree under `bucket_root`.
pub fn render_job_templates(
    cx: &StepContext,
    bucket_root: &Path,
    job: &str,
    hosts: &[String],
    limit: u64,
    now: i64,
    facts: impl Fn(&str) -> Option<AllocFacts>,
) -> Result<usize, StepFailure> {
    let shown = format!("workspace/jobs/{job}");
    let templates = job_templates(&bucket_root.join("workspace/jobs").join(job), &shown, limit)
        .map_err(|e| failure(job, e.to_string()))?;
    let state = |e: crate::state::StateError| failure(job, format!("cannot record the render in the state: {e}"));
    // The state keeps the render of the allocations rendered now, and of no other.
    let keep = if templates.is_empty() { &[][..] } else { hosts };
    lock(cx.txn).retain_render(job, keep).map_err(state)?;
    if templates.is_empty() {
        return Ok(0);
    }
    let reader: Rc<dyn Reader> = Rc::new(TxnReader(RefCell::new(TxnStore::new(cx.txn.clone(), now))));
    let upstreams = cx.desired.jobs.get(job).map(|j| j.upstreams.clone()).unwrap_or_default();
    let catalog = Rc::new(cx.desired.prometheus.clone());
    let stage = stage_dir(bucket_root);
    let bucket_path = format!("/opt/worker/{}", cx.desired.bucket_id);
    let mut written = 0;
    for host in hosts {
        let Some(f) = facts(host) else { continue };
        let worker = cx.desired.workers.iter().find(|w| &w.host == host);
        let alloc = Allocation {
            allocation_id: f.alloc_id,
            job: job.to_string(),
            current_version: f.current_version,
            new_version: f.new_version,
            worker_ip: host.clone(),
            worker_id: worker.map(|w| w.worker_id.to_string()).unwrap_or_default(),
            labels: worker.map(|w| w.labels.clone()).unwrap_or_default(),
            bucket_path: bucket_path.clone(),
            job_path: format!("{bucket_path}/jobs/{job}"),
        };
        let dir = stage.join(host).join("jobs").join(job);
        let review = review_dir(bucket_root).join(host).join("jobs").join(job);
        let io = |e: std::io::Error| failure(job, format!("cannot write the staging tree {}: {e}", dir.display()));
        for d in [&dir, &review] {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(io)?;
            }
        }
        let mut masked = Vec::with_capacity(templates.len());
        for t in &templates {
            let r = render_job(&t.shown, &t.text, &alloc, &upstreams, reader.clone(), catalog.clone())
                .map_err(|e| failure(job, format!("{e} (allocation {job}@{host})")))?;
            write_private(&dir.join(t.output()), &r.text).map_err(io)?;
            write_private(&review.join(t.output()), &r.masked()).map_err(io)?;
            masked.push((t.output().to_string(), r.masked()));
            written += 1;
        }
        lock(cx.txn).put_render(job, host, &masked).map_err(state)?;
    }
    Ok(written)
}
