//! Property: after any targeted apply (`--target JOB`, `plan::target::restrict`) the catalog
//! agrees with itself — a host is in `maand/worker/<host>` `jobs` exactly when it is in
//! `maand/job/<job>` `workers`, and `maand/bucket` `activejobs` lists exactly the jobs with
//! a live `maand/job/<job>` that has workers. Library level: apply a random workspace, change
//! it at random, apply the change targeted at a random set of jobs, check the state.

use kvform::apply::{ApplyOptions, NoHooks, NoProgress, execute};
use kvform::model::types::Prior;
use kvform::plan::{PlanOptions, diff};
use kvform::secrets::Keyring;
use kvform::state::StateStore;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const NOW: i64 = 1_767_323_045;
const LABELS: &[&str] = &["api", "cache", "web"];
const JOBS: &[&str] = &["api", "cache", "web"];

/// Per worker a label mask; per job: present, disabled.
#[derive(Debug, Clone)]
struct Ws {
    workers: Vec<u8>,
    jobs: Vec<(bool, bool)>,
}

fn ws_strategy() -> impl Strategy<Value = Ws> {
    (
        prop::collection::vec(0u8..8, 1..4),
        prop::collection::vec((prop::bool::weighted(0.8), prop::bool::weighted(0.15)), 3),
    )
        .prop_map(|(workers, jobs)| Ws { workers, jobs })
}

fn write_ws(root: &Path, ws: &Ws) {
    let w = root.join("workspace");
    let _ = std::fs::remove_dir_all(&w);
    std::fs::create_dir_all(w.join("jobs")).unwrap();
    let workers: Vec<serde_json::Value> = ws
        .workers
        .iter()
        .enumerate()
        .map(|(i, mask)| {
            let labels: Vec<&str> =
                LABELS.iter().enumerate().filter(|(b, _)| mask & (1 << b) != 0).map(|(_, l)| *l).collect();
            serde_json::json!({"host": format!("10.0.0.{}", i + 1), "labels": labels})
        })
        .collect();
    std::fs::write(w.join("workers.json"), serde_json::to_string(&workers).unwrap()).unwrap();
    let mut disabled = serde_json::Map::new();
    for (i, (present, off)) in ws.jobs.iter().enumerate() {
        if !present {
            continue;
        }
        let dir = w.join("jobs").join(JOBS[i]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.json"), r#"{"version": "1.0.0"}"#).unwrap();
        if *off {
            disabled.insert(JOBS[i].into(), serde_json::json!({}));
        }
    }
    std::fs::write(w.join("disabled.json"), serde_json::json!({"jobs": disabled}).to_string()).unwrap();
}

fn apply(path: &Path, root: &Path, targets: &[String]) {
    let ring = || Keyring::from_bytes(&[7u8; 32]);
    let loaded = kvform::workspace::load(root);
    let workspace = loaded.workspace.expect("a valid generated workspace");
    let store = StateStore::open(path).unwrap().with_keyring(ring());
    let snap = store.snapshot().unwrap();
    let desired = kvform::model::desired(&workspace, &Prior::from_snapshot(&snap)).expect("model accepts");
    let mut plan = diff(&desired, &snap, &PlanOptions::default(), NOW);
    if !targets.is_empty() {
        let jobs: BTreeSet<String> = workspace.jobs.keys().cloned().collect();
        plan = kvform::plan::target::restrict(plan, targets, &jobs, &BTreeMap::new()).expect("known targets");
    }
    if plan.is_empty() {
        return;
    }
    let txn = store.begin_write("apply", Duration::ZERO, NOW).unwrap();
    let report = execute(txn, &plan, &desired, &mut NoHooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(report.status, kvform::state::ApplyStatus::Success);
}

fn list(v: &str) -> BTreeSet<String> {
    v.split(',').filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Every disagreement between the catalog's cross-references, described.
fn disagreements(path: &Path) -> Vec<String> {
    let snap = StateStore::open(path).unwrap().snapshot().unwrap();
    let live = |ns: &str, key: &str| -> Option<String> {
        snap.entries.get(ns)?.get(key).filter(|e| !e.deleted).map(|e| e.value.clone())
    };
    let namespaces: Vec<String> = snap.entries.keys().cloned().collect();
    let mut worker_jobs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut job_workers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ns in &namespaces {
        let parts: Vec<&str> = ns.split('/').collect();
        match parts.as_slice() {
            ["maand", "worker", host] => {
                if let Some(v) = live(ns, "jobs") {
                    worker_jobs.insert(host.to_string(), list(&v));
                }
            }
            ["maand", "job", job] => {
                if let Some(v) = live(ns, "workers") {
                    job_workers.insert(job.to_string(), list(&v));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (host, jobs) in &worker_jobs {
        for job in jobs {
            if !job_workers.get(job).is_some_and(|w| w.contains(host)) {
                out.push(format!(
                    "maand/worker/{host} jobs lists `{job}`, maand/job/{job} workers does not list {host}"
                ));
            }
        }
    }
    for (job, hosts) in &job_workers {
        for host in hosts {
            if !worker_jobs.get(host).is_some_and(|j| j.contains(job)) {
                out.push(format!(
                    "maand/job/{job} workers lists {host}, maand/worker/{host} jobs does not list `{job}`"
                ));
            }
        }
    }
    let active: BTreeSet<String> = job_workers.iter().filter(|(_, w)| !w.is_empty()).map(|(j, _)| j.clone()).collect();
    if let Some(v) = live("maand/bucket", "activejobs")
        && list(&v) != active
    {
        out.push(format!("maand/bucket activejobs = {v:?}, jobs with workers: {active:?}"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_targeted_apply_keeps_the_catalog_cross_references_in_agreement(
        ws1 in ws_strategy(),
        ws2 in ws_strategy(),
        target in 1u8..7,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let path = root.join("data/kvform.db");
        StateStore::init(&path, NOW).unwrap();
        write_ws(root, &ws1);
        apply(&path, root, &[]);
        prop_assert_eq!(disagreements(&path), Vec::<String>::new());
        write_ws(root, &ws2);
        // Only jobs of the workspace can be targeted here (a removed job is not known to
        // `restrict` without the plan naming it): fall back to every present job.
        let present: Vec<String> =
            JOBS.iter().enumerate().filter(|(i, _)| ws2.jobs[*i].0).map(|(_, j)| j.to_string()).collect();
        let mut targets: Vec<String> = present.iter().enumerate().filter(|(i, _)| target & (1 << i) != 0).map(|(_, j)| j.clone()).collect();
        if targets.is_empty() {
            targets = present.into_iter().take(1).collect();
        }
        if targets.is_empty() {
            return Ok(());
        }
        apply(&path, root, &targets);
        let bad = disagreements(&path);
        prop_assert!(bad.is_empty(), "after --target {:?}:\n{}", targets, bad.join("\n"));
    }
}
