//! Reservations, worker capacity and `min_allocations_count` (SPEC §2 "Reservation",
//! §3 "Resources").
//!
//! - Reservation = the bucket.jobs value when present (the parser has checked it lies
//!   within the manifest bounds), else the manifest max, else 0.
//! - The bounds written to the store (`min_*`/`max_*`) are the manifest bounds; without
//!   bounds but with a bucket.jobs value they are that value (min = max); else 0.
//! - Capacity is checked per worker and per resource against the reservations of its
//!   **active** allocations only: a disabled allocation is drained and holds nothing.
//!   A worker without declared capacity can only host jobs that reserve 0.
//! - Every violation is reported (one diagnostic per worker and resource), pointing at the
//!   worker object in workers.json with a secondary label at each reserving job's source
//!   (the bucket.jobs attribute or the manifest bounds).

use super::types::{AllocState, Allocation};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::kv::value::decimal;
use crate::workspace::types::{Bounds, Job, JobConfig, Worker, Workspace};
use std::collections::BTreeMap;

/// What a job reserves per allocation, and the bounds written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reservation {
    pub memory_mb: f64,
    pub cpu_mhz: f64,
    pub min_memory_mb: f64,
    pub max_memory_mb: f64,
    pub min_cpu_mhz: f64,
    pub max_cpu_mhz: f64,
}

/// One resource dimension: the rule is the same for memory and CPU, only the fields differ.
struct Dim {
    name: &'static str,
    unit: &'static str,
    capacity: fn(&Worker) -> Option<f64>,
    reserved: fn(&Reservation) -> f64,
    bounds: fn(&Job) -> Option<Bounds>,
    config: fn(&JobConfig) -> Option<Span>,
}

const DIMS: [Dim; 2] = [
    Dim {
        name: "memory",
        unit: "MB",
        capacity: |w| w.memory_mb,
        reserved: |r| r.memory_mb,
        bounds: |j| j.memory,
        config: |c| c.memory_mb.as_ref().map(|s| s.span),
    },
    Dim {
        name: "cpu",
        unit: "MHz",
        capacity: |w| w.cpu_mhz,
        reserved: |r| r.cpu_mhz,
        bounds: |j| j.cpu,
        config: |c| c.cpu_mhz.as_ref().map(|s| s.span),
    },
];

/// (reservation, min, max) of one dimension.
fn dimension(bounds: Option<Bounds>, configured: Option<f64>) -> (f64, f64, f64) {
    match (bounds, configured) {
        (Some(b), Some(v)) => (v, b.min, b.max),
        (Some(b), None) => (b.max, b.min, b.max),
        (None, Some(v)) => (v, v, v),
        (None, None) => (0.0, 0.0, 0.0),
    }
}

pub fn reservation(job: &Job, config: Option<&JobConfig>) -> Reservation {
    let (memory_mb, min_memory_mb, max_memory_mb) =
        dimension(job.memory, config.and_then(|c| c.memory_mb.as_ref()).map(|s| s.value));
    let (cpu_mhz, min_cpu_mhz, max_cpu_mhz) =
        dimension(job.cpu, config.and_then(|c| c.cpu_mhz.as_ref()).map(|s| s.value));
    Reservation { memory_mb, cpu_mhz, min_memory_mb, max_memory_mb, min_cpu_mhz, max_cpu_mhz }
}

/// Reservations of every workspace job.
pub fn reservations(ws: &Workspace) -> BTreeMap<String, Reservation> {
    ws.jobs.values().map(|j| (j.name.clone(), reservation(j, ws.job_configs.get(&j.name)))).collect()
}

/// Every worker whose capacity does not cover its active allocations.
pub fn check_capacity(
    ws: &Workspace,
    fleet: &[&Worker],
    allocations: &[Allocation],
    reservations: &BTreeMap<String, Reservation>,
    diags: &mut Diagnostics,
) {
    let by_host = super::placement::active_jobs_by_host(allocations);
    for w in fleet {
        let active: &[&str] = by_host.get(w.host.as_str()).map_or(&[], Vec::as_slice);
        for dim in &DIMS {
            let reserving: Vec<(&str, f64)> = active
                .iter()
                .map(|j| (*j, reservations.get(*j).map_or(0.0, dim.reserved)))
                .filter(|(_, r)| *r > 0.0)
                .collect();
            let total: f64 = reserving.iter().map(|(_, r)| r).sum();
            let (u, n) = (dim.unit, dim.name);
            let mut d = match (dim.capacity)(w) {
                None if total > 0.0 => Diagnostic::error(format!(
                    "worker `{}` declares no {n} capacity but its active allocations reserve {} {u}",
                    w.host,
                    decimal(total)
                ))
                .at(w.span)
                .label(format!("no `{n}` declared"))
                .help(format!("declare `\"{n}\"` for this worker in workers.json, or disable these allocations in disabled.json")),
                // A small tolerance: sums of fractional reservations must not fail on rounding.
                Some(cap) if total > cap + 1e-9 => Diagnostic::error(format!(
                    "worker `{}` has {} {u} of {n} but its active allocations reserve {} {u}",
                    w.host,
                    decimal(cap),
                    decimal(total)
                ))
                .at(w.span)
                .label(format!("capacity {} {u}", decimal(cap)))
                .help(format!(
                    "raise this worker's `{n}` in workers.json, lower the jobs' reservations (bucket.jobs file or manifest `resources.{n}`), or disable an allocation in disabled.json"
                )),
                _ => continue,
            };
            for (job, r) in reserving {
                let span = ws
                    .job_configs
                    .get(job)
                    .and_then(dim.config)
                    .or_else(|| ws.jobs.get(job).and_then(dim.bounds).map(|b| b.span))
                    .or_else(|| ws.jobs.get(job).map(|j| j.span));
                if let Some(span) = span {
                    d = d.also(span, format!("`{job}` reserves {} {u}", decimal(r)));
                }
            }
            diags.push(d);
        }
    }
}

/// Every job with fewer non-removed allocations than its `min_allocations_count`.
pub fn check_min_allocations(ws: &Workspace, allocations: &[Allocation], diags: &mut Diagnostics) {
    for job in ws.jobs.values().filter(|j| j.min_allocations_count > 0) {
        let have = allocations.iter().filter(|a| a.job == job.name && a.state != AllocState::Removed).count();
        if have < job.min_allocations_count as usize {
            diags.push(
                Diagnostic::error(format!(
                    "job `{}` needs at least {} allocation{} but is placed on {have} worker{}",
                    job.name,
                    job.min_allocations_count,
                    if job.min_allocations_count == 1 { "" } else { "s" },
                    if have == 1 { "" } else { "s" }
                ))
                .at(job.span)
                .label(format!("min_allocations_count = {}", job.min_allocations_count))
                .help(format!(
                    "add workers carrying the labels [{}] to workers.json, or lower `min_allocations_count`",
                    job.selectors.join(", ")
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::WsBuilder;
    use crate::model::placement::{fleet, place};
    use crate::model::types::Prior;

    fn check(ws: &Workspace) -> Diagnostics {
        let f = fleet(ws);
        let a = place(ws, &f, &Prior::default());
        let mut d = Diagnostics::new();
        check_capacity(ws, &f, &a, &reservations(ws), &mut d);
        check_min_allocations(ws, &a, &mut d);
        d
    }

    #[test]
    fn reservation_from_manifest_max_bucket_jobs_and_min_only() {
        let ws = WsBuilder::new()
            .job("a")
            .memory("a", 256.0, 512.0)
            .cpu("a", 500.0, 1000.0)
            .job("b")
            .memory("b", 256.0, 512.0)
            .job_config("b", Some(300.0), None)
            .job("c")
            .memory("c", 128.0, 128.0) // `min` alone: the parser sets max = min
            .job("d")
            .job_config("d", Some(64.0), Some(250.0))
            .job("e")
            .build();
        let r = reservations(&ws);
        assert_eq!((r["a"].memory_mb, r["a"].cpu_mhz), (512.0, 1000.0));
        assert_eq!((r["b"].memory_mb, r["b"].min_memory_mb, r["b"].max_memory_mb), (300.0, 256.0, 512.0));
        assert_eq!((r["c"].memory_mb, r["c"].min_memory_mb, r["c"].max_memory_mb), (128.0, 128.0, 128.0));
        assert_eq!(
            r["d"],
            Reservation {
                memory_mb: 64.0,
                cpu_mhz: 250.0,
                min_memory_mb: 64.0,
                max_memory_mb: 64.0,
                min_cpu_mhz: 250.0,
                max_cpu_mhz: 250.0
            }
        );
        assert_eq!(r["e"], Reservation::default());
    }

    #[test]
    fn capacity_violations_on_two_workers_are_reported_together() {
        let ws = WsBuilder::new()
            .worker_with("h1", &["a", "b"], |w| w.memory_mb = Some(600.0))
            .worker_with("h2", &["a", "b"], |w| w.memory_mb = Some(1024.0))
            .worker("h3", &["a"])
            .job("a")
            .memory("a", 256.0, 512.0)
            .job("b")
            .memory("b", 100.0, 600.0)
            .build();
        let d = check(&ws);
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "worker `h1` has 600 MB of memory but its active allocations reserve 1112 MB",
                "worker `h2` has 1024 MB of memory but its active allocations reserve 1112 MB",
                "worker `h3` declares no memory capacity but its active allocations reserve 512 MB",
            ]
        );
        let h1 = &d.0[0];
        assert_eq!(h1.span, Some(ws.workers[0].span));
        let labels: Vec<&str> = h1.secondary.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["`a` reserves 512 MB", "`b` reserves 600 MB"]);
        assert_eq!(h1.secondary[0].0, ws.jobs["a"].memory.unwrap().span);
    }

    #[test]
    fn disabled_allocations_hold_no_capacity() {
        let ws = WsBuilder::new()
            .worker_with("h1", &["a"], |w| w.cpu_mhz = Some(100.0))
            .job("a")
            .cpu("a", 500.0, 500.0)
            .disable_worker("h1")
            .build();
        assert!(check(&ws).is_empty());
    }

    #[test]
    fn capacity_that_fits_exactly_passes_and_secondary_points_at_bucket_jobs() {
        let ws = WsBuilder::new()
            .worker_with("h1", &["a"], |w| w.cpu_mhz = Some(0.3))
            .job("a")
            .job_config("a", None, Some(0.1))
            .job("b")
            .build();
        assert!(check(&ws).is_empty());
        let ws = WsBuilder::new()
            .worker_with("h1", &["a"], |w| w.cpu_mhz = Some(100.0))
            .job("a")
            .cpu("a", 100.0, 900.0)
            .job_config("a", None, Some(150.0))
            .build();
        let d = check(&ws);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].secondary[0].0, ws.job_configs["a"].cpu_mhz.as_ref().unwrap().span);
    }

    #[test]
    fn min_allocations_count_counts_disabled_but_not_removed() {
        let ws = WsBuilder::new()
            .worker("h1", &["a", "b"])
            .worker("h2", &["a"])
            .job_with("a", |j| j.min_allocations_count = 2)
            .job_with("b", |j| j.min_allocations_count = 2)
            .disable_job("a", &[])
            .build();
        let d = check(&ws);
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs, ["job `b` needs at least 2 allocations but is placed on 1 worker"]);
        assert_eq!(d.0[0].span, Some(ws.jobs["b"].span));
    }
}
