//! The hook runtime behind the apply executor: [`RuntimeHooks`] implements
//! [`crate::apply::HookSteps`] by running real hook processes against a loopback API whose
//! store is the apply's write transaction ([`TxnStore`]). `kvform run` and `kvform health`
//! reuse the same pieces ([`HookTargets`], [`run_step`], [`step_failure`]).
//!
//! Decisions (where SPEC §5–§6 are silent):
//! - A step runs the job's commands for the event in command-name order; each command runs
//!   on every given host before the next command starts. The first command that fails ends
//!   the step (for `post_deploy`, after the whole batch of that command finished).
//! - `pre_deploy`, `post_deploy`, `health_check`, `post_build` and `cli` run host by host in
//!   the order given (maand's `JobCommand` with concurrency 1 for `pre_deploy`/`post_deploy`);
//!   the rollout events (`job_control` on every active allocation, `after_allocation_started`
//!   on a batch, `after_allocation_stopped`) run their hosts in parallel, all at once (maand's
//!   concurrency is the number of hosts: `deploy/job_deploy.go` 77-83,
//!   `deploy/batch_hooks.go` 74-87), each with the event's variables added to its
//!   environment.
//! - Hosts without an active allocation of the job are skipped: disabled allocations get
//!   no hooks (SPEC §3). Removed allocations of a job still in the workspace get only
//!   their stop event (`after_allocation_stopped`, as maand's `reconcileStoppedAllocation`),
//!   with the `<job>_allocation_index` and `version` their namespace last held.
//! - `CURRENT_VERSION` is the allocation's `version` key as the state held it when the
//!   runtime started (before the executor rewrites the allocation namespaces), `0.0.0` for
//!   a new allocation (maand's default); `NEW_VERSION` is the job's version in the workspace.
//! - The store is bound to `cx.txn` only while a step runs, so no hook holds on to the
//!   transaction between steps: the executor can take it back to commit, and `post_build`
//!   runs in its follow-up transaction.

use super::api::{ApiConfig, ApiError, ApiHandle, ApiServer, SharedStore, Topology};
use super::runner::{self, HookInvocation, HookOutcome};
use super::txn_store::TxnStore;
use crate::apply::{HookSteps, SharedTxn, StepContext, StepFailure};
use crate::kv::NamespaceKind;
use crate::model::types::{AllocState, Allocation, Desired};
use crate::state::{LiveValues, StateError};
use crate::workspace::types::{Event, Settings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum HookRuntimeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot read the current allocation versions: {0}")]
    State(#[from] StateError),
}

/// One active allocation as its hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllocTarget {
    alloc_id: Uuid,
    index: usize,
    current_version: String,
    /// A removed allocation: only its stop event runs.
    removed: bool,
}

/// `CURRENT_VERSION` of an allocation that has never been deployed (maand's
/// `DefaultAllocationVersion`).
pub const NEW_ALLOCATION_VERSION: &str = "0.0.0";

#[derive(Debug, Clone, PartialEq)]
struct JobTarget {
    version: String,
    /// command -> (events it runs on, script), by name.
    commands: BTreeMap<String, (Vec<Event>, PathBuf)>,
    /// Hosts of active allocations, fleet order.
    active_hosts: Vec<String>,
}

/// What is needed to build a [`HookInvocation`] for any (job, command, event, host), taken
/// once from the desired state and the state's current allocation versions.
#[derive(Debug, Clone, PartialEq)]
pub struct HookTargets {
    bucket_root: PathBuf,
    timeout: Duration,
    /// The command's `now`, stamped on every invocation (log headers).
    now: i64,
    jobs: BTreeMap<String, JobTarget>,
    allocs: BTreeMap<(String, String), AllocTarget>,
}

impl HookTargets {
    /// `current(ns, key)` returns the live value of `key` in namespace `ns` in the state
    /// before this command changes anything (allocation `version`s, and the
    /// `<job>_allocation_index` of removed allocations).
    pub fn new(
        bucket_root: &Path,
        desired: &Desired,
        timeout: Duration,
        now: i64,
        current: impl FnOnce(&[(String, String)]) -> Result<LiveValues, StateError>,
    ) -> Result<HookTargets, StateError> {
        Self::for_jobs(bucket_root, desired, timeout, now, |_| true, current)
    }

    /// [`Self::new`] with allocation targets for the jobs `wanted` accepts only: an apply
    /// runs hooks for the jobs its plan rolls out, and reading every allocation's version
    /// for the others is a point read per allocation of the fleet (100,000 at scale). The
    /// desired state must hold those jobs' keys (`Desired::units`).
    pub fn for_jobs(
        bucket_root: &Path,
        desired: &Desired,
        timeout: Duration,
        now: i64,
        wanted: impl Fn(&str) -> bool,
        current: impl FnOnce(&[(String, String)]) -> Result<LiveValues, StateError>,
    ) -> Result<HookTargets, StateError> {
        let jobs: BTreeMap<String, JobTarget> = desired
            .jobs
            .iter()
            .map(|(name, j)| {
                let commands = j
                    .commands
                    .iter()
                    .map(|(c, cmd)| (c.clone(), (cmd.executed_on.clone(), cmd.script.clone())))
                    .collect();
                (name.clone(), JobTarget { version: j.version.clone(), commands, active_hosts: j.active_hosts.clone() })
            })
            .collect();
        let active: Vec<&Allocation> =
            desired.allocations.iter().filter(|a| a.state == AllocState::Active && wanted(&a.job)).collect();
        let removed: Vec<&Allocation> = desired
            .allocations
            .iter()
            .filter(|a| a.state == AllocState::Removed && jobs.contains_key(&a.job) && wanted(&a.job))
            .collect();
        let ns_of = |a: &Allocation| NamespaceKind::Allocation { job: a.job.clone(), host: a.host.clone() }.path();
        // Every key read in one call (one statement on PostgreSQL, not one per allocation).
        let mut wanted_keys = Vec::new();
        for a in &active {
            wanted_keys.push((ns_of(a), "version".to_string()));
        }
        for a in &removed {
            wanted_keys.push((ns_of(a), format!("{}_allocation_index", a.job)));
            wanted_keys.push((ns_of(a), "version".to_string()));
        }
        let values = current(&wanted_keys)?;
        let value = |ns: &str, key: &str| values.get(&(ns.to_string(), key.to_string()));
        let mut allocs = BTreeMap::new();
        for a in active {
            let ns = ns_of(a);
            let index = desired
                .kv
                .get(&ns)
                .and_then(|m| m.get(&format!("{}_allocation_index", a.job)))
                .and_then(|v| v.to_cow().parse().ok())
                .or_else(|| desired.jobs.get(&a.job).and_then(|j| j.active_hosts.iter().position(|h| *h == a.host)))
                .unwrap_or(0);
            let current_version = value(&ns, "version").cloned().unwrap_or_else(|| NEW_ALLOCATION_VERSION.into());
            let target = AllocTarget { alloc_id: a.alloc_id, index, current_version, removed: false };
            allocs.insert((a.job.clone(), a.host.clone()), target);
        }
        for a in removed {
            let ns = ns_of(a);
            let index = value(&ns, &format!("{}_allocation_index", a.job)).and_then(|v| v.trim().parse().ok());
            let current_version = value(&ns, "version").cloned().unwrap_or_else(|| NEW_ALLOCATION_VERSION.into());
            let target =
                AllocTarget { alloc_id: a.alloc_id, index: index.unwrap_or(0), current_version, removed: true };
            allocs.insert((a.job.clone(), a.host.clone()), target);
        }
        Ok(HookTargets { bucket_root: bucket_root.to_path_buf(), timeout, now, jobs, allocs })
    }

    /// Whether `job` is in the workspace.
    pub fn has_job(&self, job: &str) -> bool {
        self.jobs.contains_key(job)
    }

    /// The job's command names, sorted.
    pub fn command_names(&self, job: &str) -> Vec<&str> {
        self.jobs.get(job).map(|j| j.commands.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// The events a command runs on; `None` when the job has no such command.
    pub fn events_of(&self, job: &str, command: &str) -> Option<&[Event]> {
        Some(self.jobs.get(job)?.commands.get(command)?.0.as_slice())
    }

    /// The job's commands that run on `event`, by name.
    pub fn commands(&self, job: &str, event: Event) -> Vec<&str> {
        let Some(j) = self.jobs.get(job) else { return Vec::new() };
        j.commands.iter().filter(|(_, (events, _))| events.contains(&event)).map(|(c, _)| c.as_str()).collect()
    }

    /// Hosts of the job's active allocations, fleet order.
    pub fn active_hosts(&self, job: &str) -> &[String] {
        self.jobs.get(job).map(|j| j.active_hosts.as_slice()).unwrap_or_default()
    }

    /// The invocation of `command` on the allocation of `job` on `host`; `None` when that
    /// allocation is not active (removed ones: except for `after_allocation_stopped`) or the command
    /// does not exist.
    pub fn invocation(&self, job: &str, command: &str, event: Event, host: &str) -> Option<HookInvocation> {
        let j = self.jobs.get(job)?;
        let (_, script) = j.commands.get(command)?;
        let a = self.allocs.get(&(job.to_string(), host.to_string()))?;
        if a.removed && event != Event::AfterAllocationStopped {
            return None;
        }
        Some(HookInvocation {
            bucket_root: self.bucket_root.clone(),
            script: script.clone(),
            job: job.to_string(),
            command: command.to_string(),
            event,
            alloc_id: a.alloc_id,
            host: host.to_string(),
            alloc_index: a.index,
            disabled: false,
            current_version: a.current_version.clone(),
            new_version: j.version.clone(),
            timeout: self.timeout,
            // The staging tree of the job's rendered templates (SPEC §12).
            env: vec![(
                "KVFORM_STAGE_DIR".into(),
                super::render_step::stage_dir(&self.bucket_root).to_string_lossy().into_owned(),
            )],
            started_at: self.now,
        })
    }
}

/// How the hooks of one step share the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// One host after the other, in the order given.
    Sequential,
    /// All hosts at once (a rollout event).
    Parallel,
}

/// Run the job's `commands` (in the order given) on `hosts`, skipping hosts without an
/// active allocation. With `stop_on_failure` a failing command ends the step (the hosts
/// of that command still running in parallel finish first).
#[allow(clippy::too_many_arguments)]
pub fn run_step(
    targets: &HookTargets,
    api: &ApiHandle,
    log_dir: &Path,
    job: &str,
    commands: &[&str],
    event: Event,
    hosts: &[String],
    order: Order,
    stop_on_failure: bool,
) -> Vec<HookOutcome> {
    run_step_with_env(targets, api, log_dir, job, commands, event, hosts, order, stop_on_failure, &[])
}

/// [`run_step`] with `env` added to every hook's environment (a rollout event's variables).
#[allow(clippy::too_many_arguments)]
pub fn run_step_with_env(
    targets: &HookTargets,
    api: &ApiHandle,
    log_dir: &Path,
    job: &str,
    commands: &[&str],
    event: Event,
    hosts: &[String],
    order: Order,
    stop_on_failure: bool,
    env: &[(String, String)],
) -> Vec<HookOutcome> {
    let mut outcomes = Vec::new();
    for command in commands {
        let invocations: Vec<HookInvocation> = hosts
            .iter()
            .filter_map(|h| targets.invocation(job, command, event, h))
            .map(|mut inv| {
                inv.env.extend(env.iter().cloned());
                inv
            })
            .collect();
        match order {
            Order::Parallel => {
                let batch = runner::run_batch(&invocations, invocations.len(), api, log_dir);
                let failed = batch.iter().any(|o| !o.success());
                outcomes.extend(batch);
                if failed && stop_on_failure {
                    return outcomes;
                }
            }
            Order::Sequential => {
                for inv in &invocations {
                    let o = runner::run_hook(inv, api, log_dir);
                    let failed = !o.success();
                    outcomes.push(o);
                    if failed && stop_on_failure {
                        return outcomes;
                    }
                }
            }
        }
    }
    outcomes
}

/// The step's failure, if any hook failed: every failed hook is named (command@host and
/// how it ended) and its output kept.
pub fn step_failure(job: &str, event: Event, outcomes: &[HookOutcome]) -> Option<StepFailure> {
    let failed: Vec<&HookOutcome> = outcomes.iter().filter(|o| !o.success()).collect();
    if failed.is_empty() {
        return None;
    }
    let what: Vec<String> = failed.iter().map(|o| o.summary()).collect();
    Some(StepFailure {
        job: job.to_string(),
        event,
        message: format!("{event} hook failed: {}", what.join("; ")),
        output: failed.iter().flat_map(|o| o.output.iter().cloned()).collect(),
    })
}

/// [`crate::apply::HookSteps`] with real hook processes and the loopback API. Dropping it
/// (or [`RuntimeHooks::shutdown`]) stops the API.
/// Receives every hook outcome as its step finishes.
pub type Reporter = Box<dyn FnMut(&HookOutcome)>;

pub struct RuntimeHooks {
    targets: HookTargets,
    store: Arc<Mutex<TxnStore>>,
    server: ApiServer,
    outcomes: Vec<HookOutcome>,
    /// Told about every hook as its step finishes (the CLI prints one line per hook).
    reporter: Option<Reporter>,
    /// `limits { max_file_size }`: a larger template is refused unread, like any workspace file.
    template_limit: u64,
}

impl RuntimeHooks {
    /// Start the API (`hooks { api_port }`) over a store bound to each step's transaction,
    /// and record the current allocation versions from `txn` (call this before the
    /// executor writes any allocation namespace). `txn` is not kept.
    pub fn start(
        bucket_root: &Path,
        desired: &Desired,
        txn: SharedTxn,
        settings: &Settings,
        now: i64,
    ) -> Result<RuntimeHooks, HookRuntimeError> {
        let timeout = Duration::from_secs(settings.hook_timeout_secs);
        let targets = {
            let mut guard = txn.lock().unwrap_or_else(|p| p.into_inner());
            HookTargets::new(bucket_root, desired, timeout, now, |keys| guard.live_values(keys))?
        };
        drop(txn);
        let mut hooks = Self::with_targets(targets, desired, settings.api_port, now)?;
        hooks.template_limit = settings.max_file_size;
        Ok(hooks)
    }

    /// Start over prepared targets (`kvform run` reads versions itself).
    pub fn with_targets(
        targets: HookTargets,
        desired: &Desired,
        api_port: u16,
        now: i64,
    ) -> Result<RuntimeHooks, HookRuntimeError> {
        let store = Arc::new(Mutex::new(TxnStore::detached(now)));
        let shared: SharedStore = store.clone();
        let topology = Topology::from_jobs(&desired.jobs).with_declared(&targets.bucket_root);
        let server = ApiServer::start(ApiConfig::for_port(api_port), shared, topology)?;
        Ok(RuntimeHooks {
            targets,
            store,
            server,
            outcomes: Vec::new(),
            reporter: None,
            template_limit: crate::workspace::source::DEFAULT_MAX_FILE_SIZE,
        })
    }

    /// Call `report` for every hook run, in the order the hooks finished their step.
    pub fn with_reporter(mut self, report: Reporter) -> Self {
        self.reporter = Some(report);
        self
    }

    pub fn targets(&self) -> &HookTargets {
        &self.targets
    }

    /// The API's base URL (`KVFORM_API`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Every hook run so far, in the order they finished their step.
    pub fn outcomes(&self) -> &[HookOutcome] {
        &self.outcomes
    }

    /// Stop the API (waits for in-flight requests).
    pub fn shutdown(self) {
        self.server.shutdown();
    }

    fn bind(&self, txn: Option<SharedTxn>) {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        match txn {
            Some(t) => store.attach(t),
            None => {
                store.detach();
            }
        }
    }

    /// Run `commands` of `job` on `hosts` with the store bound to `txn`; `Err` names the
    /// failed hooks.
    #[allow(clippy::too_many_arguments)]
    pub fn run_commands(
        &mut self,
        txn: &SharedTxn,
        serial: u64,
        job: &str,
        commands: &[&str],
        event: Event,
        hosts: &[String],
        order: Order,
    ) -> Result<(), StepFailure> {
        self.run_commands_with_env(txn, serial, job, commands, event, hosts, order, &[])
    }

    /// [`Self::run_commands`] with `env` added to every hook's environment.
    #[allow(clippy::too_many_arguments)]
    fn run_commands_with_env(
        &mut self,
        txn: &SharedTxn,
        serial: u64,
        job: &str,
        commands: &[&str],
        event: Event,
        hosts: &[String],
        order: Order,
        env: &[(String, String)],
    ) -> Result<(), StepFailure> {
        if commands.is_empty() || hosts.is_empty() {
            return Ok(());
        }
        let log_dir = runner::log_dir(&self.targets.bucket_root, serial);
        self.bind(Some(txn.clone()));
        let api = self.server.handle();
        let outcomes = run_step_with_env(&self.targets, &api, &log_dir, job, commands, event, hosts, order, true, env);
        self.bind(None);
        let failure = step_failure(job, event, &outcomes);
        if let Some(report) = self.reporter.as_mut() {
            outcomes.iter().for_each(report);
        }
        self.outcomes.extend(outcomes);
        failure.map_or(Ok(()), Err)
    }

    fn step(
        &mut self,
        cx: &StepContext,
        job: &str,
        event: Event,
        hosts: &[String],
        order: Order,
    ) -> Result<(), StepFailure> {
        self.step_with_env(cx, job, event, hosts, order, &[])
    }

    fn step_with_env(
        &mut self,
        cx: &StepContext,
        job: &str,
        event: Event,
        hosts: &[String],
        order: Order,
        env: &[(String, String)],
    ) -> Result<(), StepFailure> {
        let commands: Vec<String> = self.targets.commands(job, event).into_iter().map(str::to_string).collect();
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        self.run_commands_with_env(cx.txn, cx.serial, job, &commands, event, hosts, order, env)
    }
}

impl HookSteps for RuntimeHooks {
    fn pre_deploy(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, job, Event::PreDeploy, hosts, Order::Sequential)
    }
    fn post_deploy(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, job, Event::PostDeploy, hosts, Order::Sequential)
    }
    fn health_check(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, job, Event::HealthCheck, hosts, Order::Sequential)
    }
    fn post_build(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, job, Event::PostBuild, hosts, Order::Sequential)
    }
    fn rollout_event(
        &mut self,
        cx: &StepContext,
        job: &str,
        event: Event,
        hosts: &[String],
        env: &[(String, String)],
    ) -> Result<(), StepFailure> {
        // maand runs these with the number of hosts as concurrency.
        self.step_with_env(cx, job, event, hosts, Order::Parallel, env)
    }
    fn render_templates(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        let t = &self.targets;
        let facts = |host: &str| {
            let a = t.allocs.get(&(job.to_string(), host.to_string())).filter(|a| !a.removed)?;
            Some(super::render_step::AllocFacts {
                alloc_id: a.alloc_id.to_string(),
                current_version: a.current_version.clone(),
                new_version: t.jobs.get(job)?.version.clone(),
            })
        };
        super::render_step::render_job_templates(cx, &t.bucket_root, job, hosts, self.template_limit, t.now, facts)
            .map(|_| ())
    }
}
