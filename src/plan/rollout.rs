//! The rollout: which jobs the apply deploys, in which order, in which allocation batches,
//! and which hooks run. The apply executor drives execution from this structure (and the
//! text/markdown renderers print it), so the rules live here only:
//!
//! - Order: waves (`Desired::waves`, ascending `seq`) -> jobs in name order -> batches.
//! - A job is in the rollout when the plan changes any of its namespaces; jobs with no
//!   change are omitted (nothing is written for them, so no hook runs). Jobs removed from
//!   the workspace are never in a wave: their purges have no hooks and are applied in the
//!   bucket-level step (`Plan::bucket_step_namespaces`).
//! - The job's configuration *rolls* when `maand/job/<job>` or `vars/bucket/job/<job>`
//!   changes, or vars.hcl writes `vars/job/<job>` (a create/update). Tombstones of hook-owned
//!   keys in `vars/job`/`secrets/job` (TTL expiry, `--purge-secrets-kv`) do not roll it:
//!   they are bookkeeping, not configuration.
//! - New allocations (`Allocation::is_new`, active) go in batches of `max_concurrent_starts`
//!   (0 = all at once); existing active allocations whose allocation namespace changed, or
//!   all of them when the configuration rolls, go in batches of `max_concurrent_upgrades`
//!   (0 is treated as all at once too). Both in fleet order (`DesiredJob::active_hosts`);
//!   new batches first, so capacity is added before existing allocations are upgraded.
//! - Changes of disabled allocations are listed in `JobRollout::namespaces` and applied with
//!   the job-level namespaces, without hooks. Removed allocations with live namespaces are
//!   `JobRollout::stopped`: their stop hooks run before their namespaces are tombstoned.
//! - A job that deploys (has at least one batch) runs its `pre_deploy`, `job_control`,
//!   `after_allocation_started`, `post_deploy`, `health_check` and `post_build` commands
//!   (by `executed_on`); a job that stops allocations runs `after_allocation_stopped` and,
//!   when active allocations remain, `health_check` (maand's reconcile). A job with changes
//!   but neither (only bookkeeping, or only disabled allocations) runs none.

use super::types::{Action, Batch, BatchKind, Change, JobHooks, JobRollout, Wave};
use crate::kv::NamespaceKind;
use crate::model::types::{AllocState, Desired, DesiredJob};
use crate::workspace::types::Event;
use std::collections::{BTreeMap, BTreeSet};

/// What the changes touch for one job.
#[derive(Default)]
struct Touched<'a> {
    /// Job-level namespaces with changes.
    job_namespaces: BTreeSet<&'a str>,
    /// Hosts whose allocation namespace changes.
    hosts: BTreeSet<&'a str>,
    rolls: bool,
}

/// Build the rollout of `changes` (sorted) for `desired`.
pub fn rollout(desired: &Desired, changes: &[Change]) -> Vec<Wave> {
    let mut touched: BTreeMap<&str, Touched> = BTreeMap::new();
    for c in changes {
        let Some(kind) = NamespaceKind::parse(&c.namespace) else { continue };
        let Some(job) = kind.job() else { continue };
        let Some((job, _)) = desired.jobs.get_key_value(job) else { continue };
        let t = touched.entry(job.as_str()).or_default();
        match &kind {
            NamespaceKind::Allocation { host, .. } => {
                t.hosts.insert(host_of(&c.namespace, host));
            }
            _ => {
                t.job_namespaces.insert(c.namespace.as_str());
            }
        }
        t.rolls |= match kind {
            // `rollout_order` is ordering, not configuration: resetting a hook's override (SPEC §6,
            // "for one apply") must not re-roll every allocation. A real fleet change also
            // changes `workers`, which does roll.
            NamespaceKind::Job(_) => c.key != "rollout_order",
            NamespaceKind::BucketJobVars(_) => true,
            NamespaceKind::JobVars(_) => c.action != Action::Tombstone,
            _ => false,
        };
    }

    let mut waves = Vec::new();
    for (seq, names) in desired.waves.iter().enumerate() {
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        let jobs: Vec<JobRollout> = sorted
            .into_iter()
            .filter_map(|name| Some(job_rollout(desired, desired.jobs.get(name)?, touched.get(name.as_str())?)))
            .collect();
        if !jobs.is_empty() {
            waves.push(Wave { seq: seq as u32, jobs });
        }
    }
    waves
}

/// The host segment borrowed from the change's namespace string (so it lives as long as
/// the changes).
fn host_of<'a>(ns: &'a str, host: &str) -> &'a str {
    &ns[ns.len() - host.len()..]
}

fn job_rollout(desired: &Desired, job: &DesiredJob, t: &Touched) -> JobRollout {
    let allocations: BTreeMap<&str, _> =
        desired.allocations.iter().filter(|a| a.job == job.name).map(|a| (a.host.as_str(), a)).collect();

    let mut new = Vec::new();
    let mut changed = Vec::new();
    for host in &job.active_hosts {
        match allocations.get(host.as_str()) {
            Some(a) if a.state == AllocState::Active && a.is_new => new.push(host.clone()),
            Some(a) if a.state != AllocState::Active => {}
            _ if t.rolls || t.hosts.contains(host.as_str()) => changed.push(host.clone()),
            _ => {}
        }
    }
    let mut batches = chunk(BatchKind::New, new, job.max_concurrent_starts);
    batches.extend(chunk(BatchKind::Changed, changed, job.max_concurrent_upgrades));

    let in_batches: BTreeSet<&str> = batches.iter().flat_map(|b| &b.hosts).map(String::as_str).collect();
    let removed = |h: &str| allocations.get(h).is_none_or(|a| a.state == AllocState::Removed);
    let mut namespaces: Vec<String> = t.job_namespaces.iter().map(|s| s.to_string()).collect();
    let mut stopped = Vec::new();
    for h in t.hosts.iter().filter(|h| !in_batches.contains(*h)) {
        if removed(h) {
            stopped.push(h.to_string());
        } else {
            namespaces.push(NamespaceKind::Allocation { job: job.name.clone(), host: h.to_string() }.path());
        }
    }
    namespaces.sort();

    let mut hooks = hooks_of(job);
    if batches.is_empty() {
        // maand's reconcile of a removed allocation: its stop hook, then the health gate.
        let (health_check, after_allocation_stopped) = (hooks.health_check, hooks.after_allocation_stopped);
        hooks = JobHooks::default();
        if !stopped.is_empty() {
            hooks.after_allocation_stopped = after_allocation_stopped;
            if !job.active_hosts.is_empty() {
                hooks.health_check = health_check;
            }
        }
    } else {
        if stopped.is_empty() {
            hooks.after_allocation_stopped.clear();
        }
        if !hooks.job_control.is_empty() {
            // maand skips its own batch starts/restarts (and their hooks) for such a job.
            hooks.after_allocation_started.clear();
        }
    }
    JobRollout { job: job.name.clone(), upstreams: job.upstreams.clone(), namespaces, batches, stopped, hooks }
}

fn chunk(kind: BatchKind, hosts: Vec<String>, size: u32) -> Vec<Batch> {
    if hosts.is_empty() {
        return Vec::new();
    }
    let size = if size == 0 { hosts.len() } else { size as usize };
    hosts.chunks(size).map(|c| Batch { kind, hosts: c.to_vec() }).collect()
}

/// The job's deploy-time hook commands by event (command names sorted: `commands` is a
/// BTreeMap).
pub fn hooks_of(job: &DesiredJob) -> JobHooks {
    let mut h = JobHooks::default();
    for (name, cmd) in &job.commands {
        for event in &cmd.executed_on {
            let list = match event {
                Event::PreDeploy => &mut h.pre_deploy,
                Event::JobControl => &mut h.job_control,
                Event::AfterAllocationStarted => &mut h.after_allocation_started,
                Event::PostDeploy => &mut h.post_deploy,
                Event::HealthCheck => &mut h.health_check,
                Event::AfterAllocationStopped => &mut h.after_allocation_stopped,
                Event::PostBuild => &mut h.post_build,
                Event::Cli => continue,
            };
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
    }
    h
}
