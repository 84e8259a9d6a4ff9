//! [`execute`]: one plan, one write transaction, SPEC §5 order.
//!
//! 1. The bucket-level step: every changed namespace no job of the rollout claims
//!    (`Plan::bucket_step_namespaces`: `maand/bucket`, `maand/worker*`, `vars/bucket`, and
//!    the purges of jobs removed from the workspace, which have no hooks).
//! 2. Jobs, wave by wave, in name order. Each job runs in a savepoint, in the order
//!    [`super::job`] documents: job-level namespaces, stops of removed allocations,
//!    `pre_deploy`, the `rollout_order` override, then batch by batch with the rollout
//!    events. A failing step rolls the savepoint back; jobs that demand a failed or skipped
//!    job (transitively) are skipped; independent jobs continue. With `atomic`, the first
//!    failure rolls back everything.
//! 3. Commit (serial + 1 when anything changed) with the apply record, status `success`,
//!    `partial` (some job failed or was skipped) or `failed` (`atomic` and a failure: nothing
//!    but the audit record is committed).
//!
//! `post_build` hooks run after the commit in a follow-up transaction: [`post_build`].
//!
//! The transaction is shared with the hook runtime as [`SharedTxn`]; the executor locks it
//! only around its own writes and never while a hook step runs (the hooks' API thread
//! writes through the same mutex). To commit, the executor needs the transaction back:
//! a [`HookSteps`] implementation must not keep clones of `StepContext::txn` after a step
//! returns.
//!
//! The override of `rollout_order` lasts one apply: the executor writes the desired value
//! back right after reading the override.

use super::SharedTxn;
use super::job::{JobError, run_job};
use super::progress::{Progress, ProgressEvent};
use super::steps::{HookSteps, StepContext, StepFailure};
use crate::model::types::Desired;
use crate::plan::{Action, JobRollout, Plan};
use crate::state::Write;
use crate::state::{ApplyRecord, ApplyStatus, StateError, WriteOutcome, WriteTxn};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// The writer recorded for every key the executor writes.
pub const APPLY_WRITER: &str = "apply";

/// How to run an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Roll back everything on the first failure (`apply --atomic`).
    pub atomic: bool,
    /// Unix seconds recorded as `created_at` of every write and in the apply record (the
    /// command's one `now`, read by the CLI session).
    pub now: i64,
    /// The audit record's operation (`apply`).
    pub operation: String,
}

impl ApplyOptions {
    pub fn new(now: i64) -> ApplyOptions {
        ApplyOptions { atomic: false, now, operation: "apply".into() }
    }
}

/// A job that did not run because a job it demands failed or was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedJob {
    pub job: String,
    /// The upstream job that failed or was skipped.
    pub because: String,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub status: ApplyStatus,
    /// The state's serial after the commit (unchanged when nothing was written).
    pub serial: u64,
    /// Plan changes applied: keys created or revived / updated / tombstoned.
    pub added: u64,
    pub changed: u64,
    pub destroyed: u64,
    /// Jobs whose checkpoint was kept, in execution order.
    pub applied: Vec<String>,
    /// Jobs whose checkpoint was rolled back, with the failing step.
    pub failed: Vec<StepFailure>,
    pub skipped: Vec<SkippedJob>,
    /// `--atomic` and a failure: nothing of the plan was committed.
    pub rolled_back: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the plan creates {namespace} {key} without a value (a sensitive value cannot be applied from a plan)\n  help: this is a bug; run `kvform plan` again"
    )]
    NoValue { namespace: String, key: String },
    #[error(
        "the hook runtime still holds the apply's transaction after its step returned; cannot commit\n  help: this is a bug in the HookSteps implementation"
    )]
    TxnStillShared,
}

/// Counts of plan changes applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) added: u64,
    pub(super) changed: u64,
    pub(super) destroyed: u64,
}

impl Counts {
    pub(super) fn add(&mut self, o: Counts) {
        self.added += o.added;
        self.changed += o.changed;
        self.destroyed += o.destroyed;
    }
}

const ALL: &str = "kvform_apply";

pub(super) fn lock(txn: &SharedTxn) -> MutexGuard<'_, WriteTxn> {
    // A panicking hook thread poisons the mutex; the transaction itself is intact (each
    // SQLite statement is atomic), and the executor decides what to keep.
    txn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `plan` in `txn` and commit. See the module docs for the order and failure rules.
pub fn execute(
    txn: WriteTxn,
    plan: &Plan,
    desired: &Desired,
    hooks: &mut dyn HookSteps,
    progress: &mut dyn Progress,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let serial = txn.next_serial();
    let shared: SharedTxn = Arc::new(Mutex::new(txn));
    let mut report = ApplyReport {
        status: ApplyStatus::Success,
        serial: serial - 1,
        added: 0,
        changed: 0,
        destroyed: 0,
        applied: Vec::new(),
        failed: Vec::new(),
        skipped: Vec::new(),
        rolled_back: false,
        warnings: Vec::new(),
    };
    let jobs: Vec<(u32, &JobRollout)> = plan.jobs().collect();
    let allocations = jobs.iter().flat_map(|(_, j)| &j.batches).map(|b| b.hosts.len()).sum();
    progress.event(ProgressEvent::Started { jobs: jobs.len(), allocations });

    if opts.atomic {
        lock(&shared).savepoint(ALL)?;
    }
    let mut total = Counts::default();

    // 1. Bucket level.
    let bucket = plan.bucket_step_namespaces();
    {
        let mut txn = lock(&shared);
        prefetch(&mut txn, plan, bucket.iter().copied())?;
        for ns in &bucket {
            total.add(apply_namespace(&mut txn, plan, desired, ns, opts.now)?);
        }
    }
    progress.event(ProgressEvent::BucketLevel { namespaces: bucket.len() });

    // 2. Jobs.
    let mut down: BTreeSet<String> = BTreeSet::new();
    let cx = StepContext { desired, txn: &shared, serial };
    for (i, (wave, job)) in jobs.iter().enumerate() {
        if let Some(up) = job.upstreams.iter().find(|u| down.contains(*u)) {
            progress.event(ProgressEvent::JobSkipped { job: &job.job, because: up });
            report.skipped.push(SkippedJob { job: job.job.clone(), because: up.clone() });
            down.insert(job.job.clone());
            continue;
        }
        progress.event(ProgressEvent::JobStarted { wave: *wave, job: &job.job });
        let savepoint = format!("job_{i}");
        lock(&shared).savepoint(&savepoint)?;
        match run_job(&cx, plan, job, hooks, progress, opts.now, &mut report.warnings) {
            Ok(counts) => {
                lock(&shared).release(&savepoint)?;
                total.add(counts);
                report.applied.push(job.job.clone());
                progress.event(ProgressEvent::JobDone { job: &job.job });
            }
            Err(JobError::Step(failure)) => {
                lock(&shared).rollback_to(&savepoint)?;
                progress.event(ProgressEvent::JobFailed { job: &job.job, message: &failure.message });
                down.insert(job.job.clone());
                report.failed.push(failure);
                if opts.atomic {
                    break;
                }
            }
            Err(JobError::Apply(e)) => return Err(e),
        }
    }

    // 3. Commit.
    if opts.atomic && !report.failed.is_empty() {
        lock(&shared).rollback_to(ALL)?;
        report.rolled_back = true;
        report.applied.clear();
        total = Counts::default();
    } else if opts.atomic {
        lock(&shared).release(ALL)?;
    }
    if !report.rolled_back {
        let mut txn = lock(&shared);
        record_purged_jobs(&mut txn, desired, &report)?;
        // The last render of jobs removed from the workspace (purged in the bucket step):
        // `plan --render` walks the workspace's jobs, so nothing would ever show or clear it.
        txn.retain_render_jobs(&desired.jobs.keys().map(String::as_str).collect())?;
    }
    report.status = if report.rolled_back {
        ApplyStatus::Failed
    } else if report.failed.is_empty() && report.skipped.is_empty() {
        ApplyStatus::Success
    } else {
        ApplyStatus::Partial
    };
    let txn = Arc::try_unwrap(shared).map_err(|_| ApplyError::TxnStillShared)?;
    let txn = txn.into_inner().unwrap_or_else(|p| p.into_inner());
    // The record carries the command's one `now` (its real length is `duration_ms`).
    let mut record = ApplyRecord::new(&opts.operation, opts.now);
    record.status = report.status;
    report.serial = txn.commit(record)?;
    report.added = total.added;
    report.changed = total.changed;
    report.destroyed = total.destroyed;
    progress.event(ProgressEvent::Finished);
    Ok(report)
}

/// The purged-jobs record after this apply: `Desired::purged_jobs`, except that a job whose
/// checkpoint was rolled back or skipped keeps the record it had (its namespaces did not
/// change either).
fn record_purged_jobs(txn: &mut WriteTxn, desired: &Desired, report: &ApplyReport) -> Result<(), ApplyError> {
    let before = txn.purged_jobs()?;
    let kept_back: BTreeSet<&str> =
        report.failed.iter().map(|f| f.job.as_str()).chain(report.skipped.iter().map(|s| s.job.as_str())).collect();
    let after: BTreeSet<String> = before
        .union(&desired.purged_jobs)
        .filter(|j| if kept_back.contains(j.as_str()) { before.contains(*j) } else { desired.purged_jobs.contains(*j) })
        .cloned()
        .collect();
    txn.set_purged_jobs(&after)?;
    Ok(())
}

/// Read ahead the keys `namespaces`' changes write over (updates, revivals, tombstones;
/// a create without a reason has no row), so applying them is not a read per key on
/// PostgreSQL.
pub(super) fn prefetch<'a>(
    txn: &mut WriteTxn,
    plan: &Plan,
    namespaces: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApplyError> {
    let keys: Vec<(&str, &str)> = namespaces
        .into_iter()
        .flat_map(|ns| plan.changes_in(ns))
        .filter(|c| c.action != Action::Create || c.reason.is_some())
        .map(|c| (c.namespace.as_str(), c.key.as_str()))
        .collect();
    txn.prefetch(&keys)?;
    Ok(())
}

/// Apply the plan's changes of one namespace.
/// A build-written key the plan masks (`Desired::sensitive`: it holds a secret a scrape
/// template read) has no value in the plan: it is written from `desired`.
pub(super) fn apply_namespace(
    txn: &mut WriteTxn,
    plan: &Plan,
    desired: &Desired,
    ns: &str,
    now: i64,
) -> Result<Counts, ApplyError> {
    let mut counts = Counts::default();
    for c in plan.changes_in(ns) {
        match c.action {
            Action::Create | Action::Update => {
                let masked = || {
                    desired
                        .sensitive
                        .contains(&(c.namespace.clone(), c.key.clone()))
                        .then(|| desired.kv.get(&c.namespace).and_then(|m| m.get(&c.key)))
                        .flatten()
                };
                let value = c
                    .after
                    .as_ref()
                    .or_else(masked)
                    .ok_or_else(|| ApplyError::NoValue { namespace: c.namespace.clone(), key: c.key.clone() })?;
                // An HCL-typed key (SPEC §9) is written with its type.
                let written = if c.action == Action::Create && c.reason.is_none() {
                    // A create without a reason is a key with no row at all (a revive says so).
                    txn.put(
                        Write::new(&c.namespace, &c.key, &value.to_cow(), APPLY_WRITER, now)
                            .typed(c.kv_type)
                            .expect_new(),
                    )?
                } else {
                    txn.put(Write::new(&c.namespace, &c.key, &value.to_cow(), APPLY_WRITER, now).typed(c.kv_type))?
                };
                match written {
                    WriteOutcome::Created { .. } | WriteOutcome::Revived { .. } => counts.added += 1,
                    WriteOutcome::Updated { .. } => counts.changed += 1,
                    WriteOutcome::Unchanged { .. } => {}
                }
            }
            Action::Tombstone => {
                if txn.tombstone(&c.namespace, &c.key, APPLY_WRITER, now)? {
                    counts.destroyed += 1;
                }
            }
        }
    }
    Ok(counts)
}

/// What [`post_build`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostBuildReport {
    /// Jobs whose `post_build` hooks ran and passed.
    pub ran: Vec<String>,
    /// Failures (their writes rolled back); the apply itself stays committed.
    pub failed: Vec<StepFailure>,
    /// The serial after the follow-up commit.
    pub serial: u64,
}

/// Whether any of `applied` (jobs of `plan`) has `post_build` hooks.
pub fn has_post_build(plan: &Plan, applied: &[String]) -> bool {
    plan.jobs().any(|(_, j)| applied.contains(&j.job) && !j.hooks.post_build.is_empty())
}

/// `post_build` hooks of the jobs the apply kept (`applied`), in wave order, each job in
/// its own savepoint of the follow-up transaction `txn`; commits what passed (operation
/// `opts.operation` + ` post_build`). A failing job's writes are rolled back; the others
/// continue.
pub fn post_build(
    txn: WriteTxn,
    plan: &Plan,
    desired: &Desired,
    applied: &[String],
    hooks: &mut dyn HookSteps,
    progress: &mut dyn Progress,
    opts: &ApplyOptions,
) -> Result<PostBuildReport, ApplyError> {
    let serial = txn.next_serial();
    let shared: SharedTxn = Arc::new(Mutex::new(txn));
    let cx = StepContext { desired, txn: &shared, serial };
    let mut report = PostBuildReport::default();
    for (i, (_, job)) in plan.jobs().enumerate() {
        if !applied.contains(&job.job) || job.hooks.post_build.is_empty() {
            continue;
        }
        let hosts = desired.jobs.get(&job.job).map(|j| j.active_hosts.clone()).unwrap_or_default();
        progress.event(ProgressEvent::PostBuild { job: &job.job });
        let savepoint = format!("post_build_{i}");
        lock(&shared).savepoint(&savepoint)?;
        match hooks.post_build(&cx, &job.job, &hosts) {
            Ok(()) => {
                lock(&shared).release(&savepoint)?;
                report.ran.push(job.job.clone());
            }
            Err(f) => {
                lock(&shared).rollback_to(&savepoint)?;
                progress.event(ProgressEvent::JobFailed { job: &job.job, message: &f.message });
                report.failed.push(f);
            }
        }
    }
    let txn = Arc::try_unwrap(shared).map_err(|_| ApplyError::TxnStillShared)?;
    let txn = txn.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut record = ApplyRecord::new(&format!("{} post_build", opts.operation), opts.now);
    record.status = if report.failed.is_empty() { ApplyStatus::Success } else { ApplyStatus::Failed };
    report.serial = txn.commit(record)?;
    Ok(report)
}
