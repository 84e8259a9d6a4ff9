//! One job's checkpoint (SPEC §5 step 2, §6 rollout events), in this order:
//!
//! 1. The job-level namespaces (and disabled allocations' namespaces), so `pre_deploy`
//!    hooks read the job's new `maand/job/<job>` as maand's build writes it before deploy.
//!    A `rollout_order` a `cli` hook left in the state is read first: the plan resets it
//!    here, but it still orders this apply.
//! 2. Each removed allocation ([`JobRollout::stopped`]): `job_control` with `TARGET=stop`,
//!    then `after_allocation_stopped`, both reading its last namespace; then its namespace
//!    is tombstoned. (maand stops removed allocations before it deploys anything.)
//! 3. `pre_deploy` on the active allocations; then the `rollout_order` override
//!    ([`super::reorder`]) and the workspace's value written back (the override lasts one
//!    apply).
//! 4. Batch by batch: the batch's allocation namespaces, `job_control` once on the batch's
//!    first allocation, `after_allocation_started` on each allocation of the batch,
//!    `post_deploy` on the batch, then the `health_check` gate on the allocations rolled so
//!    far (every active allocation except those of later batches).
//!
//! Rollout hooks get maand's batch variables ([`batch_env`]): `BATCH_ALLOCATIONS`,
//! `BATCH_INDEX`, `BATCH_COUNT` (counted per phase, as maand counts start and restart
//! batches apart), `DEPLOY_PHASE`, `ROLLOUT_ORDER`, `ROLLOUT_ORDER_SOURCE`; `job_control`
//! also `NEW_ALLOCATIONS` / `UPDATED_ALLOCATIONS` (a stop: `TARGET=stop`). The values are
//! maand's, so hooks written for maand compare against what they always did.

use super::executor::{APPLY_WRITER, ApplyError, Counts, apply_namespace, lock, prefetch};
use super::progress::{Progress, ProgressEvent};
use super::reorder::{order_hosts, rechunk};
use super::steps::{HookSteps, StepContext, StepFailure};
use crate::kv::NamespaceKind;
use crate::plan::{Batch, BatchKind, JobRollout, Plan};
use crate::state::StateError;
use crate::workspace::types::Event;

/// `DEPLOY_PHASE` of a batch of new allocations (SPEC §6; maand's deploy calls it `new`).
pub const PHASE_NEW: &str = "start";
/// `DEPLOY_PHASE` of a batch of changed allocations (SPEC §6; maand's deploy calls it `update`).
pub const PHASE_UPDATE: &str = "upgrade";
/// `DEPLOY_PHASE` of a removed allocation's stop (maand's `deployPhaseStop`).
pub const PHASE_STOP: &str = "stop";
/// `ROLLOUT_ORDER_SOURCE` when the workspace's order is used (SPEC §6; maand: `default`).
pub const ORDER_FROM_WORKSPACE: &str = "workspace";
/// `ROLLOUT_ORDER_SOURCE` when a hook's `rollout_order` override is used (SPEC §6; maand: `kv`).
pub const ORDER_FROM_HOOK: &str = "hook";

/// Extra environment of one rollout hook: (name, value).
pub type EventEnv = Vec<(String, String)>;

/// Why a job stopped.
pub(super) enum JobError {
    Step(StepFailure),
    Apply(ApplyError),
}

impl From<StateError> for JobError {
    fn from(e: StateError) -> Self {
        JobError::Apply(e.into())
    }
}

impl From<ApplyError> for JobError {
    fn from(e: ApplyError) -> Self {
        JobError::Apply(e)
    }
}

/// maand's batch variables (`deploy/batch_hooks.go` `batchEnv`, minus `JOB`, which every
/// hook already has).
pub fn batch_env(phase: &str, index: usize, count: usize, hosts: &[String], order: &str, source: &str) -> EventEnv {
    [
        ("BATCH_ALLOCATIONS", hosts.join(",")),
        ("BATCH_INDEX", index.to_string()),
        ("BATCH_COUNT", count.to_string()),
        ("DEPLOY_PHASE", phase.to_string()),
        ("ROLLOUT_ORDER", order.to_string()),
        ("ROLLOUT_ORDER_SOURCE", source.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn allocation_ns(job: &str, host: &str) -> String {
    NamespaceKind::Allocation { job: job.to_string(), host: host.to_string() }.path()
}

/// One job inside its savepoint (see the module docs for the order).
pub(super) fn run_job(
    cx: &StepContext,
    plan: &Plan,
    job: &JobRollout,
    hooks: &mut dyn HookSteps,
    progress: &mut dyn Progress,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<Counts, JobError> {
    let mut counts = Counts::default();
    let dj = cx.desired.jobs.get(&job.job);
    let active: Vec<String> = dj.map(|j| j.active_hosts.clone()).unwrap_or_default();
    let deploys = !job.batches.is_empty();
    let h = &job.hooks;
    let job_ns = NamespaceKind::Job(job.job.clone()).path();
    let want = cx.desired.kv.get(&job_ns).and_then(|m| m.get("rollout_order")).map(|v| v.trimmed().into_owned());

    // 1. Job-level namespaces; a `cli` override of the order is read before they reset it.
    let left_by_cli = {
        let mut txn = lock(cx.txn);
        let left = txn.get(&job_ns, "rollout_order")?.filter(|e| e.is_live() && e.writer != APPLY_WRITER);
        prefetch(&mut txn, plan, job.namespaces.iter().map(String::as_str))?;
        for ns in &job.namespaces {
            counts.add(apply_namespace(&mut txn, plan, ns, now)?);
        }
        left.map(|e| e.value)
    };

    // 2. Removed allocations: stop hooks with their last namespace, then the tombstones.
    for host in &job.stopped {
        let one = std::slice::from_ref(host);
        let env = batch_env(PHASE_STOP, 0, 1, one, "", "");
        if !h.job_control.is_empty() {
            let mut env = env.clone();
            env.push(("TARGET".into(), "stop".into()));
            hooks.rollout_event(cx, &job.job, Event::JobControl, one, &env).map_err(JobError::Step)?;
        }
        if !h.after_allocation_stopped.is_empty() {
            hooks.rollout_event(cx, &job.job, Event::AfterAllocationStopped, one, &env).map_err(JobError::Step)?;
        }
        counts.add(apply_namespace(&mut lock(cx.txn), plan, &allocation_ns(&job.job, host), now)?);
    }
    if !deploys {
        return Ok(counts);
    }

    // 3. The job's templates, then pre_deploy, then the one-apply override of the order.
    hooks.render_templates(cx, &job.job, &active).map_err(JobError::Step)?;
    if !h.pre_deploy.is_empty() {
        hooks.pre_deploy(cx, &job.job, &active).map_err(JobError::Step)?;
    }
    let mut batches = job.batches.clone();
    let mut order = active.clone();
    let mut source = ORDER_FROM_WORKSPACE;
    if let (Some(dj), Some(want)) = (dj, want) {
        let mut txn = lock(cx.txn);
        let live = txn.get(&job_ns, "rollout_order")?.filter(|e| e.is_live());
        let by_hook = live.as_ref().filter(|e| e.writer != APPLY_WRITER).map(|e| e.value.clone());
        if let Some(over) = by_hook.or(left_by_cli).filter(|o| o.trim() != want) {
            let (ordered, unknown) = order_hosts(&over, &active);
            for host in unknown {
                let w = format!(
                    "{}: rollout_order names {host}, which is not an active allocation of the job; ignored",
                    job.job
                );
                progress.event(ProgressEvent::Warning(&w));
                warnings.push(w);
            }
            batches = rechunk(&job.batches, &ordered, dj.max_concurrent_starts, dj.max_concurrent_upgrades);
            order = ordered;
            source = ORDER_FROM_HOOK;
        }
        if live.is_some_and(|e| e.value.trim() != want) {
            txn.put(&job_ns, "rollout_order", &want, 0, APPLY_WRITER, now)?;
        }
    }

    // 4. Batches.
    let order_text = order.join(",");
    let count_of = |kind: BatchKind| batches.iter().filter(|b| b.kind == kind).count();
    let mut index_in_phase = [0usize; 2];
    for (i, batch) in batches.iter().enumerate() {
        counts.add(apply_batch(cx, plan, &job.job, batch, now)?);
        let (phase, slot) = match batch.kind {
            BatchKind::New => (PHASE_NEW, 0),
            BatchKind::Changed => (PHASE_UPDATE, 1),
        };
        let env = batch_env(phase, index_in_phase[slot], count_of(batch.kind), &batch.hosts, &order_text, source);
        index_in_phase[slot] += 1;
        if !h.job_control.is_empty() {
            let (new, updated) = match batch.kind {
                BatchKind::New => (batch.hosts.join(","), String::new()),
                BatchKind::Changed => (String::new(), batch.hosts.join(",")),
            };
            let mut env = env.clone();
            env.push(("NEW_ALLOCATIONS".into(), new));
            env.push(("UPDATED_ALLOCATIONS".into(), updated));
            let first = &batch.hosts[..1.min(batch.hosts.len())];
            hooks.rollout_event(cx, &job.job, Event::JobControl, first, &env).map_err(JobError::Step)?;
        }
        if !h.after_allocation_started.is_empty() {
            hooks
                .rollout_event(cx, &job.job, Event::AfterAllocationStarted, &batch.hosts, &env)
                .map_err(JobError::Step)?;
        }
        if !h.post_deploy.is_empty() {
            hooks.post_deploy(cx, &job.job, &batch.hosts).map_err(JobError::Step)?;
        }
        if !h.health_check.is_empty() {
            // Rolled so far: every active allocation but those still waiting in later batches.
            let waiting: Vec<&String> = batches[i + 1..].iter().flat_map(|b| &b.hosts).collect();
            let rolled: Vec<String> = active.iter().filter(|a| !waiting.contains(a)).cloned().collect();
            hooks.health_check(cx, &job.job, &rolled).map_err(JobError::Step)?;
        }
        progress.event(ProgressEvent::BatchDone { job: &job.job, kind: batch.kind, hosts: &batch.hosts });
    }
    Ok(counts)
}

fn apply_batch(cx: &StepContext, plan: &Plan, job: &str, batch: &Batch, now: i64) -> Result<Counts, ApplyError> {
    let mut counts = Counts::default();
    let mut txn = lock(cx.txn);
    let namespaces: Vec<String> = batch.hosts.iter().map(|host| allocation_ns(job, host)).collect();
    prefetch(&mut txn, plan, namespaces.iter().map(String::as_str))?;
    for ns in &namespaces {
        counts.add(apply_namespace(&mut txn, plan, ns, now)?);
    }
    Ok(counts)
}
