//! The pure domain: placement, ports, resources, dependency waves, KV projection.
//!
//! [`desired`] runs the steps in one direction and reports the problems of every step
//! together (SPEC §2: one run shows everything):
//!
//! 1. [`placement`]: fleet order, allocations and their states (active / disabled / removed).
//! 2. [`ports`]: port numbers for jobs with an active allocation.
//! 3. [`resources`]: reservations, worker capacity, `min_allocations_count`.
//! 4. [`graph`] + [`version`]: dependency waves, cycles, demand version constraints.
//! 5. [`project`]: the exact keys of SPEC §4; [`catalog`]: the keys of SPEC §8
//!    (`maand/prometheus`, `job_name`, `certs/ca.crt`, the certificates to hold).
//!
//! [`prior`] builds the [`types::Prior`] input from a state snapshot; [`render`] prints a
//! [`types::Desired`] as text or JSON. Each module documents the decisions it made where
//! the SPEC leaves room.

pub mod catalog;
pub mod graph;
pub mod placement;
pub mod ports;
pub mod prior;
pub mod project;
pub mod render;
pub mod resources;
pub mod types;
pub mod version;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;

use crate::diag::Diagnostics;
use crate::workspace::types::Workspace;
use std::collections::{BTreeMap, BTreeSet};
use types::{AllocState, Desired, DesiredJob, DesiredWorker, Prior};

/// The desired state of a validated workspace given what the state already holds.
/// Pure: no I/O, no clock, no randomness. All violations are reported together.
pub fn desired(ws: &Workspace, prior: &Prior) -> Result<Desired, Diagnostics> {
    desired_with(ws, prior, &project::project_all)
}

/// [`desired`] that leaves out the keys of the units `skip` accepts (`project::Skip`):
/// everything else (allocations, jobs, waves, the bucket-level keys) is complete, and
/// `Desired::units` says which units are in `Desired::kv`.
pub fn desired_with(ws: &Workspace, prior: &Prior, skip: project::Skip<'_>) -> Result<Desired, Diagnostics> {
    let mut diags = Diagnostics::new();
    let fleet = placement::fleet(ws);
    let allocations = placement::place(ws, &fleet, prior);

    let active_jobs: BTreeSet<String> =
        allocations.iter().filter(|a| a.state == AllocState::Active).map(|a| a.job.clone()).collect();
    let ports = ports::assign(ws, prior, &active_jobs, &mut diags);

    let reservations = resources::reservations(ws);
    resources::check_capacity(ws, &fleet, &allocations, &reservations, &mut diags);
    resources::check_min_allocations(ws, &allocations, &mut diags);

    version::check_demands(ws, &mut diags);
    let waves = graph::waves(ws, &mut diags);

    let waves = match waves {
        Some(w) if !diags.has_errors() => w,
        _ => return Err(diags),
    };

    let placed_jobs: BTreeSet<&str> =
        allocations.iter().filter(|a| a.state != AllocState::Removed).map(|a| a.job.as_str()).collect();
    let purged_jobs: BTreeSet<String> = prior
        .allocations
        .iter()
        .map(|(job, _)| job)
        .chain(&prior.purged_jobs)
        .filter(|j| !placed_jobs.contains(j.as_str()))
        .cloned()
        .collect();

    let (mut kv, units) = project::project(
        &project::Inputs {
            ws,
            bucket_id: prior.bucket_id,
            fleet: &fleet,
            allocations: &allocations,
            reservations: &reservations,
            ports: &ports,
            seq: &waves.seq,
            purged_jobs: &purged_jobs,
        },
        skip,
    );
    let certs = catalog::project(ws, &fleet, &allocations, &mut kv);
    let prometheus = catalog::prometheus_facts(ws, &ports, &allocations);

    let by_job = placement::allocations_by_job(&allocations);
    let hosts = |job: &str, state: AllocState| -> Vec<String> {
        by_job.get(job).into_iter().flatten().filter(|a| a.state == state).map(|a| a.host.clone()).collect()
    };
    let jobs: BTreeMap<String, DesiredJob> = ws
        .jobs
        .values()
        .map(|j| {
            let dj = DesiredJob {
                name: j.name.clone(),
                job_id: placement::derived_id(&prior.bucket_id, &format!("job/{}", j.name)),
                version: j.version.as_ref().map_or_else(|| "0.0.0".to_string(), |v| v.value.clone()),
                deployment_seq: waves.seq.get(&j.name).copied().unwrap_or(0),
                upstreams: waves.upstreams.get(&j.name).cloned().unwrap_or_default(),
                max_concurrent_upgrades: j.max_concurrent_upgrades,
                max_concurrent_starts: j.max_concurrent_starts,
                commands: j.commands.clone(),
                active_hosts: hosts(&j.name, AllocState::Active),
                disabled_hosts: hosts(&j.name, AllocState::Disabled),
            };
            (j.name.clone(), dj)
        })
        .collect();
    let workers = fleet
        .iter()
        .map(|w| {
            let mut labels = w.labels.clone();
            labels.sort();
            DesiredWorker {
                host: w.host.clone(),
                worker_id: placement::derived_id(&prior.bucket_id, &format!("worker/{}", w.host)),
                position: placement::position(w),
                labels,
            }
        })
        .collect();
    let hosts_now: BTreeSet<&str> = ws.workers.iter().map(|w| w.host.as_str()).collect();

    Ok(Desired {
        bucket_id: prior.bucket_id,
        kv,
        kv_types: project::types(ws),
        workers,
        jobs,
        allocations,
        removed_jobs: prior.jobs.iter().filter(|j| !ws.jobs.contains_key(*j)).cloned().collect(),
        removed_workers: prior.workers.iter().filter(|h| !hosts_now.contains(h.as_str())).cloned().collect(),
        purged_jobs,
        waves: waves.waves,
        certs,
        prometheus,
        sensitive: Default::default(),
        units,
    })
}
