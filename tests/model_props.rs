//! Properties of `model::desired` over random small workspaces built in Rust:
//! - deterministic: the same input renders byte-identical JSON;
//! - every active allocation's job is listed in its worker's `jobs` key, and every
//!   non-removed allocation has its allocation namespace;
//! - every job is in exactly one wave, after all of its upstreams.

use kvform::{diag, model, workspace};
use model::types::{AllocState, Prior};
use proptest::prelude::*;
use uuid::Uuid;

// The fixture builder names `crate::diag` / `crate::workspace`, re-exported above.
#[allow(dead_code, unused_imports)]
#[path = "../src/model/fixture.rs"]
mod fixture;

const LABELS: [&str; 4] = ["a", "b", "c", "worker"];

#[derive(Debug, Clone)]
struct WorkerP {
    labels: Vec<usize>,
    position: Option<i64>,
    memory: Option<u32>,
}

#[derive(Debug, Clone)]
struct JobP {
    selectors: Vec<usize>,
    memory: Option<u32>,
    ports: usize,
    /// Indexes of earlier jobs this one demands (keeps the graph acyclic).
    demands: Vec<usize>,
    disabled: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct Params {
    workers: Vec<WorkerP>,
    jobs: Vec<JobP>,
    disabled_workers: Vec<usize>,
    prior_allocs: Vec<(usize, usize)>,
    prior_ports: Vec<(usize, u16)>,
}

fn worker_p() -> impl Strategy<Value = WorkerP> {
    (
        proptest::collection::vec(0..LABELS.len() - 1, 0..4),
        proptest::option::of(0i64..4),
        proptest::option::of(prop_oneof![Just(100u32), Just(100_000u32)]),
    )
        .prop_map(|(labels, position, memory)| WorkerP { labels, position, memory })
}

fn job_p() -> impl Strategy<Value = JobP> {
    (
        proptest::collection::vec(0..LABELS.len(), 1..2),
        prop_oneof![3 => Just(None), 1 => (1u32..300).prop_map(Some)],
        0usize..3,
        proptest::collection::vec(0usize..4, 0..3),
        proptest::option::of(proptest::collection::vec(0usize..5, 0..2)),
    )
        .prop_map(|(selectors, memory, ports, demands, disabled)| JobP {
            selectors,
            memory,
            ports,
            demands,
            disabled,
        })
}

fn params() -> impl Strategy<Value = Params> {
    (
        proptest::collection::vec(worker_p(), 1..5),
        proptest::collection::vec(job_p(), 1..5),
        proptest::collection::vec(0usize..6, 0..2),
        proptest::collection::vec((0usize..6, 0usize..6), 0..4),
        proptest::collection::vec((0usize..5, 29990u16..30010), 0..3),
    )
        .prop_map(|(workers, jobs, disabled_workers, prior_allocs, prior_ports)| Params {
            workers,
            jobs,
            disabled_workers,
            prior_allocs,
            prior_ports,
        })
}

fn host(i: usize) -> String {
    format!("10.0.0.{i}")
}

fn build(p: &Params) -> (workspace::types::Workspace, Prior) {
    let mut b = fixture::WsBuilder::new().pool(30000, 30020);
    for (i, w) in p.workers.iter().enumerate() {
        let labels: Vec<&str> = w.labels.iter().map(|l| LABELS[*l]).collect();
        let (pos, mem) = (w.position, w.memory);
        b = b.worker_with(&host(i), &labels, |wk| {
            wk.position = pos;
            wk.memory_mb = mem.map(f64::from);
        });
    }
    for (i, j) in p.jobs.iter().enumerate() {
        let name = format!("j{i}");
        let selectors: Vec<String> = j.selectors.iter().map(|s| LABELS[*s].to_string()).collect();
        b = b.job_with(&name, |job| {
            job.selectors = selectors;
            job.selectors.dedup();
        });
        if let Some(m) = j.memory {
            b = b.memory(&name, 0.0, f64::from(m));
        }
        for k in 0..j.ports {
            b = b.port(&name, &format!("p{i}_{k}"), None);
        }
        for &up in j.demands.iter().filter(|&&u| u < i) {
            b = b.demand(&name, &format!("j{up}"));
        }
        if let Some(hosts) = &j.disabled {
            let hosts: Vec<String> = hosts.iter().map(|h| host(*h)).collect();
            b = b.disable_job(&name, &hosts.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
    for &w in &p.disabled_workers {
        b = b.disable_worker(&host(w));
    }
    let mut prior = Prior { bucket_id: Uuid::from_u128(42), ..Default::default() };
    for &(j, h) in &p.prior_allocs {
        prior.allocations.insert((format!("j{j}"), host(h)));
        prior.jobs.insert(format!("j{j}"));
        prior.workers.insert(host(h));
    }
    for &(j, n) in &p.prior_ports {
        prior.ports.insert(format!("p{j}_0"), n);
    }
    (b.build(), prior)
}

fn outcome(p: &Params) -> Result<String, Vec<String>> {
    let (ws, prior) = build(p);
    match model::desired(&ws, &prior) {
        Ok(d) => Ok(model::render::json(&d)),
        Err(e) => Err(e.iter().map(|d: &diag::Diagnostic| d.message.clone()).collect()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn desired_is_deterministic(p in params()) {
        prop_assert_eq!(outcome(&p), outcome(&p));
    }

    #[test]
    fn active_allocations_appear_in_their_workers_jobs(p in params()) {
        let (ws, prior) = build(&p);
        let Ok(d) = model::desired(&ws, &prior) else { return Ok(()) };
        for a in &d.allocations {
            let ns = format!("maand/job/{}/worker/{}", a.job, a.host);
            match a.state {
                AllocState::Active => {
                    let jobs = &d.kv[&format!("maand/worker/{}", a.host)]["jobs"].to_string();
                    prop_assert!(jobs.split(',').any(|j| j == a.job), "{} not in jobs of {}: {:?}", a.job, a.host, jobs);
                    let workers = &d.kv[&format!("maand/job/{}", a.job)]["workers"].to_string();
                    prop_assert!(workers.split(',').any(|h| h == a.host), "{} not in workers of {}", a.host, a.job);
                    prop_assert!(d.kv.contains_key(&ns));
                }
                AllocState::Disabled => prop_assert!(d.kv.contains_key(&ns)),
                AllocState::Removed => prop_assert!(!d.kv.contains_key(&ns)),
            }
        }
        for (seq, jobs) in d.waves.iter().enumerate() {
            for j in jobs {
                prop_assert_eq!(d.jobs[j].deployment_seq as usize, seq);
                for up in &d.jobs[j].upstreams {
                    prop_assert!((d.jobs[up].deployment_seq as usize) < seq);
                }
            }
        }
        prop_assert_eq!(d.waves.iter().map(Vec::len).sum::<usize>(), d.jobs.len());
    }
}
