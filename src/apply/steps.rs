//! The seam between the executor and the hook runtime: the hook steps of SPEC §5.

use super::SharedTxn;
use crate::model::types::Desired;
use crate::workspace::types::Event;

/// What a hook step needs to know about where it runs.
pub struct StepContext<'a> {
    pub desired: &'a Desired,
    /// The apply's write transaction; hooks' writes land here (through the API).
    pub txn: &'a SharedTxn,
    /// The serial this apply commits as (names the log directory `logs/<serial>/`).
    pub serial: u64,
}

/// A failed hook step: the job fails, its checkpoint is rolled back, dependents are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub job: String,
    pub event: Event,
    /// One line: which hook on which host, and how it failed (exit code, timeout, start error).
    pub message: String,
    /// Captured hook output (prefixed lines), shown in the failure report.
    pub output: Vec<String>,
}

/// Hook steps, called by the executor in SPEC §5 order. Every method runs the job's commands
/// for that event once per listed host (active allocations only), in the order given.
pub trait HookSteps {
    /// After every namespace of the job is written (hooks read the new catalog and their own
    /// allocation's keys), before the rollout. May write vars/secrets and override
    /// `maand/job/<job>` `rollout_order` for this apply (the executor reads it afterwards).
    fn pre_deploy(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure>;
    /// After the rollout and its health gate, on every active allocation (maand's
    /// `finalizeJobDeploy`).
    fn post_deploy(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure>;
    /// The job's health gate on every active allocation (after the new allocations, after
    /// each batch of changed ones, after `job_control`, after stops); read-only.
    fn health_check(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure>;
    /// After commit, in a follow-up transaction, waves in order.
    fn post_build(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure>;
    /// A rollout event (`job_control`, `after_allocation_started`, `after_allocation_stopped`):
    /// the job's commands for `event` on `hosts` (parallel), each hook's environment extended
    /// with `env` (maand's batch variables, or `job_control`'s `NEW_ALLOCATIONS` /
    /// `UPDATED_ALLOCATIONS`). `after_allocation_stopped` runs on a removed allocation, still
    /// reading its last namespace.
    fn rollout_event(
        &mut self,
        cx: &StepContext,
        job: &str,
        event: Event,
        hosts: &[String],
        env: &[(String, String)],
    ) -> Result<(), StepFailure> {
        let _ = (cx, job, event, hosts, env);
        Ok(())
    }
    /// The job's templates for its active allocations (SPEC §12), after its namespaces are
    /// written and before `pre_deploy`; a template that fails fails the job.
    fn render_templates(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        let _ = (cx, job, hosts);
        Ok(())
    }
}

/// No hooks at all (e.g. jobs without commands, or tests of the executor alone).
pub struct NoHooks;

impl HookSteps for NoHooks {
    fn pre_deploy(&mut self, _: &StepContext, _: &str, _: &[String]) -> Result<(), StepFailure> {
        Ok(())
    }
    fn post_deploy(&mut self, _: &StepContext, _: &str, _: &[String]) -> Result<(), StepFailure> {
        Ok(())
    }
    fn health_check(&mut self, _: &StepContext, _: &str, _: &[String]) -> Result<(), StepFailure> {
        Ok(())
    }
    fn post_build(&mut self, _: &StepContext, _: &str, _: &[String]) -> Result<(), StepFailure> {
        Ok(())
    }
}
