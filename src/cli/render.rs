//! `kvform render [--job J] [--worker H] [--out DIR] [--reveal]`: the jobs' `.tpl` files
//! rendered per active allocation against the current state (SPEC §12), as `apply` renders
//! them before the job's hooks — for review and for tools (consul-template's role).
//!
//! Printed, each file is headed by its staged path (`<host>/jobs/<job>/<file>`, maand's
//! layout) and every secret value it read is shown as `(sensitive)` unless `--reveal`. With
//! `--out` the files are written in that layout (directories 0700, files 0600) with their
//! real values, and nothing of their content is printed. Every template is rendered even
//! after one fails; the command then exits 1 with each error (file:line:col and the key).

use super::Context;
use super::pipeline::{Loaded, check_job, load_for_hooks};
use crate::hooks::steps_impl::NEW_ALLOCATION_VERSION;
use crate::kv::NamespaceKind;
use crate::model::types::Desired;
use crate::state::StateStore;
use crate::templates::{Allocation, Reader, render_job};
use crate::workspace::templates::{JobTemplate, job_templates};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform render\n  kvform render --job api --worker 10.0.0.1\n  \
kvform render --out /tmp/staged          # files in <host>/jobs/<job>/, secrets included")]
pub struct Args {
    /// Only these jobs (comma-separated). Default: every job with templates.
    #[arg(long, value_delimiter = ',', value_name = "JOBS")]
    job: Vec<String>,
    /// Only these workers (comma-separated hosts). Default: every active allocation.
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    worker: Vec<String>,
    /// Write the rendered files under DIR (`<host>/jobs/<job>/…`) instead of printing them.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print secret values read by the templates instead of `(sensitive)`.
    #[arg(long)]
    reveal: bool,
}

/// The current state as templates read it: live, unexpired values, secrets opened.
pub(super) struct StateReader {
    pub store: StateStore,
    pub now: i64,
}

impl Reader for StateReader {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        let Some(e) = self.store.get(ns, key).map_err(|e| e.to_string())? else { return Ok(None) };
        if !e.is_live() || e.is_expired(self.now) {
            return Ok(None);
        }
        if !crate::kv::is_secret_key(ns, key) || e.value.is_empty() {
            return Ok(Some(e.value));
        }
        let ring = self.store.keyring().ok_or("the bucket key (secrets/kv.key) is missing")?;
        let plain = ring.open(ns, key, e.version, &e.value).map_err(|e| e.to_string())?;
        Ok(Some(plain.to_string()))
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        let rows = self.store.list_keys(ns, "").map_err(|e| e.to_string())?;
        Ok(rows.into_iter().filter(|l| l.entry.is_live() && !l.entry.is_expired(self.now)).map(|l| l.key).collect())
    }
}

/// maand's dot context for allocation (job, host).
pub(super) fn allocation(desired: &Desired, reader: &dyn Reader, job: &str, host: &str) -> anyhow::Result<Allocation> {
    let j = &desired.jobs[job];
    let alloc_id = desired
        .allocations
        .iter()
        .find(|a| a.job == job && a.host == host)
        .map(|a| a.alloc_id.to_string())
        .unwrap_or_default();
    let worker = desired.workers.iter().find(|w| w.host == host);
    let ns = NamespaceKind::Allocation { job: job.to_string(), host: host.to_string() }.path();
    let current = reader.get(&ns, "version").map_err(anyhow::Error::msg)?;
    let bucket_path = format!("/opt/worker/{}", desired.bucket_id);
    Ok(Allocation {
        allocation_id: alloc_id,
        job: job.to_string(),
        current_version: current.unwrap_or_else(|| NEW_ALLOCATION_VERSION.to_string()),
        new_version: j.version.clone(),
        worker_ip: host.to_string(),
        worker_id: worker.map(|w| w.worker_id.to_string()).unwrap_or_default(),
        labels: worker.map(|w| w.labels.clone()).unwrap_or_default(),
        job_path: format!("{bucket_path}/jobs/{job}"),
        bucket_path,
    })
}

/// Write `text` at `path` (directories 0700, the file 0600), naming the path on failure.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::hooks::render_step::write_private(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let Loaded { session, desired, store } = load_for_hooks(ctx)?;
    for j in &args.job {
        check_job(&desired, j)?;
    }
    // Before anything is rendered: `--out` must not be left half-written by a typo.
    for w in &args.worker {
        if !desired.workers.iter().any(|x| &x.host == w) {
            let hosts: Vec<&str> = desired.workers.iter().map(|x| x.host.as_str()).collect();
            bail!(
                "no worker `{w}` in workspace/workers.json\n  help: pass a host as it appears there: {}",
                hosts.join(", ")
            );
        }
    }
    let reader = Rc::new(StateReader { store, now: session.now });
    let jobs_dir = session.bucket.jobs_dir();
    let catalog = Rc::new(desired.prometheus.clone());
    let limit = session.settings.max_file_size;
    let mut rendered = 0usize;
    // The same error on several allocations (a parse error, a missing job key) is one line.
    let mut errors: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (name, job) in &desired.jobs {
        if !args.job.is_empty() && !args.job.contains(name) {
            continue;
        }
        let templates: Vec<JobTemplate> =
            job_templates(&jobs_dir.join(name), &format!("workspace/jobs/{name}"), limit)?;
        if templates.is_empty() {
            if args.job.contains(name) {
                ctx.printer.info(&format!("job `{name}` has no templates (no *.tpl under workspace/jobs/{name}/)"));
            }
            continue;
        }
        for host in &job.active_hosts {
            if !args.worker.is_empty() && !args.worker.contains(host) {
                continue;
            }
            let alloc = allocation(&desired, reader.as_ref(), name, host)?;
            for t in &templates {
                let staged = format!("{host}/jobs/{name}/{}", t.output());
                match render_job(&t.shown, &t.text, &alloc, &job.upstreams, reader.clone(), catalog.clone()) {
                    Ok(r) => {
                        rendered += 1;
                        match &args.out {
                            Some(dir) => write_private(&dir.join(&staged), &r.text)?,
                            None => {
                                let text = if args.reveal { r.text.clone() } else { r.masked() };
                                let nl = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
                                ctx.printer.out(&format!("# {staged}\n{text}{nl}"));
                            }
                        }
                    }
                    Err(e) => errors.entry(e.to_string()).or_default().push(format!("{name}@{host}")),
                }
            }
        }
    }
    for (e, allocs) in &errors {
        let s = if allocs.len() == 1 { "" } else { "s" };
        ctx.printer.error(&format!("{e}\n  (allocation{s} {})", allocs.join(", ")));
    }
    if let Some(dir) = &args.out {
        ctx.printer.info(&format!("rendered {rendered} file(s) into {}", dir.display()));
    } else if rendered == 0 && errors.is_empty() {
        ctx.printer.info("no templates to render (no *.tpl under workspace/jobs/<job>/ for an active allocation)");
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
