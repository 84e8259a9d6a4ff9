//! One job's checkpoint (SPEC §5 step 2, §6 rollout events): maand's deploy of one job
//! (maand-sh/maand @3f8043e, `deploy/job_deploy.go` `deployJob`, `deployJobWithCommands`,
//! `finalizeJobDeploy`; `deploy/rollout.go`; `deploy/batch_hooks.go`; `deploy/allocations.go`
//! `reconcileStoppedAllocation`), in this order:
//!
//! 1. **Every namespace of the job**: the job-level ones and every allocation namespace the
//!    plan changes (new, changed and disabled allocations), as maand's build writes them all
//!    before deploy runs any hook — a `pre_deploy` hook reads its own allocation's keys on a
//!    first apply. A `rollout_order` a `cli` hook left in the state is read first: the plan
//!    resets it here, but it still orders this apply.
//! 2. Each removed allocation ([`JobRollout::stopped`]): `after_allocation_stopped` with
//!    `DEPLOY_PHASE=stop`, reading its last namespace; then its namespace is tombstoned. Then
//!    the `health_check` gate over the allocations already running (maand's reconcile step,
//!    `deploy/allocations.go` 291-301, which also checks new ones it has not started yet).
//! 3. `pre_deploy` on every active allocation; then the job's `rollout_order` (a hook's
//!    override, else the workspace's) is read for this apply and the workspace's value
//!    written back (an override lasts one apply).
//! 4. A job **with `job_control` commands**: each command once on every active allocation,
//!    concurrently, with `NEW_ALLOCATIONS` / `UPDATED_ALLOCATIONS` of the whole job; no
//!    batches and no `after_allocation_started` (maand skips its own starts/restarts for such
//!    a job); then the `health_check` gate.
//!    A job **without** them: the new allocations in batches of `max_concurrent_starts`,
//!    `after_allocation_started` after each batch, the `health_check` gate once after all of
//!    them; then the changed ones in batches of `max_concurrent_upgrades`, each followed by
//!    `after_allocation_started` and the gate. Each phase's order is resolved by
//!    [`super::reorder::resolve`] (maand's `ResolveRolloutOrder`).
//! 5. `post_deploy` on every active allocation (maand's `finalizeJobDeploy`).
//!
//! The `health_check` gate runs the job's `health_check` commands on every active allocation
//! (maand's `healthcheck.HealthCheck`). Rollout hooks get maand's batch variables
//! ([`batch_env`]): `BATCH_ALLOCATIONS`, `BATCH_INDEX`, `BATCH_COUNT` (counted per phase),
//! `DEPLOY_PHASE` (`new`, `update`, `stop`), `ROLLOUT_ORDER`, `ROLLOUT_ORDER_SOURCE` (`kv`,
//! `default`); kvform adds `KVFORM_ROLLOUT_ORDER_OVERRIDDEN=1` when a hook's override
//! ordered the phase.

use super::executor::{APPLY_WRITER, ApplyError, Counts, apply_namespace, lock, prefetch};
use super::progress::{Progress, ProgressEvent};
use super::reorder::{Resolved, chunk, resolve};
use super::steps::{HookSteps, StepContext, StepFailure};
use crate::kv::NamespaceKind;
use crate::plan::{BatchKind, JobRollout, Plan};
use crate::state::StateError;
use crate::state::Write;
use crate::workspace::types::Event;

/// `DEPLOY_PHASE` of a batch of new allocations (maand's `deployPhaseNew`).
pub const PHASE_NEW: &str = "new";
/// `DEPLOY_PHASE` of a batch of changed allocations (maand's `deployPhaseUpdate`).
pub const PHASE_UPDATE: &str = "update";
/// `DEPLOY_PHASE` of a removed allocation's stop (maand's `deployPhaseStop`).
pub const PHASE_STOP: &str = "stop";
/// kvform's own variable beside maand's: `1` when a hook's `rollout_order` override ordered
/// the phase (maand's `ROLLOUT_ORDER_SOURCE` says `kv` for the workspace's value too).
pub const OVERRIDDEN_VAR: &str = "KVFORM_ROLLOUT_ORDER_OVERRIDDEN";

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

/// maand's batch variables (`deploy/batch_hooks.go` `batchEnv`, lines 44-54, minus `JOB`,
/// which every hook already has).
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

/// The job's `rollout_order` for this apply: (value, whether a hook overrode it).
struct OrderKey {
    value: Option<String>,
    overridden: bool,
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

    // 1. Every namespace of the job; a `cli` override of the order is read before they reset it.
    let left_by_cli = {
        let mut txn = lock(cx.txn);
        let left = txn.get(&job_ns, "rollout_order")?.filter(|e| e.is_live() && e.writer != APPLY_WRITER);
        let mut namespaces = job.namespaces.clone();
        namespaces.extend(job.batches.iter().flat_map(|b| &b.hosts).map(|host| allocation_ns(&job.job, host)));
        prefetch(&mut txn, plan, namespaces.iter().map(String::as_str))?;
        for ns in &namespaces {
            counts.add(apply_namespace(&mut txn, plan, cx.desired, ns, now)?);
        }
        left.map(|e| e.value)
    };

    // 2. Removed allocations: the stop hook with their last namespace, then the tombstones
    //    (maand's `reconcileStoppedAllocation`), then the gate over what remains.
    for host in &job.stopped {
        let one = std::slice::from_ref(host);
        if !h.after_allocation_stopped.is_empty() {
            let env = batch_env(PHASE_STOP, 0, 1, one, "", "");
            hooks.rollout_event(cx, &job.job, Event::AfterAllocationStopped, one, &env).map_err(JobError::Step)?;
        }
        counts.add(apply_namespace(&mut lock(cx.txn), plan, cx.desired, &allocation_ns(&job.job, host), now)?);
    }
    let gate = |hooks: &mut dyn HookSteps| -> Result<(), JobError> {
        if !h.health_check.is_empty() && !active.is_empty() {
            hooks.health_check(cx, &job.job, &active).map_err(JobError::Step)?;
        }
        Ok(())
    };
    if !job.stopped.is_empty() && !h.health_check.is_empty() {
        // Over the allocations already running: maand's reconcile gate would also check new
        // ones it has not started yet (SPEC §6; CONTRIBUTING's decisions).
        let started = |host: &String| !job.batches.iter().any(|b| b.kind == BatchKind::New && b.hosts.contains(host));
        let running: Vec<String> = active.iter().filter(|a| started(a)).cloned().collect();
        if !running.is_empty() {
            hooks.health_check(cx, &job.job, &running).map_err(JobError::Step)?;
        }
    }
    if !deploys {
        return Ok(counts);
    }

    // 3. The job's templates, then pre_deploy, then the order for this apply (a hook's override lasts
    // one apply).
    hooks.render_templates(cx, &job.job, &active).map_err(JobError::Step)?;
    if !h.pre_deploy.is_empty() {
        hooks.pre_deploy(cx, &job.job, &active).map_err(JobError::Step)?;
    }
    let order = {
        let mut txn = lock(cx.txn);
        let live = txn.get(&job_ns, "rollout_order")?.filter(|e| e.is_live());
        let by_hook = live.as_ref().filter(|e| e.writer != APPLY_WRITER).map(|e| e.value.clone());
        let over = by_hook.or(left_by_cli).filter(|o| Some(o.trim()) != want.as_deref());
        if let Some(want) = &want
            && live.as_ref().is_some_and(|e| e.value.trim() != want)
        {
            txn.put(Write::new(&job_ns, "rollout_order", want, APPLY_WRITER, now))?;
        }
        match over {
            Some(value) => OrderKey { value: Some(value), overridden: true },
            None => OrderKey { value: live.map(|e| e.value).or(want.clone()), overridden: false },
        }
    };

    // 4. job_control, or maand's own batches.
    let of_kind = |kind: BatchKind| -> Vec<String> {
        active.iter().filter(|a| job.batches.iter().any(|b| b.kind == kind && b.hosts.contains(a))).cloned().collect()
    };
    if !h.job_control.is_empty() {
        let env: EventEnv = vec![
            ("UPDATED_ALLOCATIONS".into(), of_kind(BatchKind::Changed).join(",")),
            ("NEW_ALLOCATIONS".into(), of_kind(BatchKind::New).join(",")),
        ];
        hooks.rollout_event(cx, &job.job, Event::JobControl, &active, &env).map_err(JobError::Step)?;
        gate(hooks)?;
        for b in &job.batches {
            progress.event(ProgressEvent::BatchDone { job: &job.job, kind: b.kind, hosts: &b.hosts });
        }
    } else {
        for kind in [BatchKind::New, BatchKind::Changed] {
            let candidates = of_kind(kind);
            if candidates.is_empty() {
                continue;
            }
            let resolved = resolve(order.value.as_deref(), &candidates, &active);
            if let Some(reason) = resolved.rejected.as_ref().filter(|_| order.overridden) {
                let w = format!("{}: {reason}; the default order is used", job.job);
                progress.event(ProgressEvent::Warning(&w));
                warnings.push(w);
            }
            rollout_phase(cx, job, kind, &resolved, order.overridden, hooks, progress)?;
            if kind == BatchKind::New {
                gate(hooks)?;
            }
        }
    }

    // 5. post_deploy (maand's `finalizeJobDeploy`).
    if !h.post_deploy.is_empty() {
        hooks.post_deploy(cx, &job.job, &active).map_err(JobError::Step)?;
    }
    Ok(counts)
}

/// One phase (maand's `rolloutStartBatches` / `rolloutRestartBatches`): batches in the
/// resolved order, `after_allocation_started` after each, and for changed allocations the
/// `health_check` gate after each batch.
fn rollout_phase(
    cx: &StepContext,
    job: &JobRollout,
    kind: BatchKind,
    resolved: &Resolved,
    overridden: bool,
    hooks: &mut dyn HookSteps,
    progress: &mut dyn Progress,
) -> Result<(), JobError> {
    let Some(dj) = cx.desired.jobs.get(&job.job) else { return Ok(()) };
    let (phase, size) = match kind {
        BatchKind::New => (PHASE_NEW, dj.max_concurrent_starts),
        BatchKind::Changed => (PHASE_UPDATE, dj.max_concurrent_upgrades),
    };
    let batches = chunk(kind, &resolved.ordered, size);
    let h = &job.hooks;
    for (i, batch) in batches.iter().enumerate() {
        if !h.after_allocation_started.is_empty() {
            let mut env = batch_env(phase, i, batches.len(), &batch.hosts, &resolved.full_order, resolved.source);
            if overridden && resolved.rejected.is_none() {
                env.push((OVERRIDDEN_VAR.into(), "1".into()));
            }
            hooks
                .rollout_event(cx, &job.job, Event::AfterAllocationStarted, &batch.hosts, &env)
                .map_err(JobError::Step)?;
        }
        if kind == BatchKind::Changed && !h.health_check.is_empty() && !dj.active_hosts.is_empty() {
            hooks.health_check(cx, &job.job, &dj.active_hosts).map_err(JobError::Step)?;
        }
        progress.event(ProgressEvent::BatchDone { job: &job.job, kind, hosts: &batch.hosts });
    }
    Ok(())
}
