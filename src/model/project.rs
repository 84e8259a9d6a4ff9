//! The projection of the desired state into the key-value store (SPEC §4 table).
//!
//! Formats: lists are comma-joined without spaces, in fleet order unless stated; an empty
//! list is the empty string; numbers go through [`decimal`]. A namespace with no keys is
//! not produced.
//!
//! Decisions where the SPEC leaves room:
//! - `maand/job/<job>` and `vars/bucket/job/<job>` are written for every job of the
//!   workspace except purged ones (`Inputs::purged_jobs`: all allocations removed and not
//!   placed since, SPEC §4 "Ownership"). A job that has never been placed keeps them, with
//!   empty `workers`/`rollout_order` (as maand's build writes them); a fully disabled job
//!   keeps them too: draining is not deleting.
//! - `vars/job/<job>` (merged) carries vars.hcl for every job of the workspace: it is the
//!   job's configuration and survives while the job is in the workspace.
//! - `<job>_allocation_index` is the index among the job's **non-removed** allocations in
//!   fleet order, the same list `peer_workers` is drawn from: draining one worker does not
//!   renumber the others (indexes are often used as cluster member ids).
//! - `maand/job/<job>` `placed_workers` lists those non-removed workers (fleet order): it is
//!   the stored list the derived `peer_workers` is cut from (`crate::kv::derived`), since
//!   `workers` lists active allocations only.
//! - `<label>_peers` and `peer_workers` are not produced here: they are derived when read.
//! - `worker_<i>`/`workers`/`rollout_order` list only active allocations.
//! - `position` is the fleet position the worker is ordered by (explicit `position`, else
//!   the array index), not its rank.
//! - `worker_memory_mb` / `worker_cpu_mhz` are `0` when the worker declares no capacity:
//!   such a worker can host only jobs that reserve nothing, which is what 0 says.
//! - A disabled worker stays in the label lists (`<label>_workers`, indexes):
//!   it is still part of the fleet, only its allocations are drained.
//! - `vars/bucket` is exactly the bucket.conf attributes the parser returns (it decides
//!   whether default `port_min`/`port_max` appear).
//! - Types ([`types`]): the HCL vars (`vars/bucket`, `vars/job/<job>`,
//!   `vars/bucket/job/<job>`) are typed by their HCL value (number, boolean, json for lists
//!   and objects, string). Every other projected key is a `string`, numbers included: they
//!   are maand's catalog, which its readers parse as text.

use super::placement::{active_jobs_by_host, derived_id, position};
use super::resources::Reservation;
use super::types::{AllocState, Allocation};
use crate::kv::value::decimal;
use crate::kv::{KvMap, NamespaceKind, Value};
use crate::workspace::types::{Worker, Workspace};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Everything the projection reads, computed by the earlier steps.
pub struct Inputs<'a> {
    pub ws: &'a Workspace,
    pub bucket_id: Uuid,
    pub fleet: &'a [&'a Worker],
    pub allocations: &'a [Allocation],
    pub reservations: &'a BTreeMap<String, Reservation>,
    /// Port name -> number, ports of jobs with an active allocation only.
    pub ports: &'a BTreeMap<String, u16>,
    /// Job -> deployment_seq.
    pub seq: &'a BTreeMap<String, u32>,
    /// Jobs whose synced namespaces are purged (`Desired::purged_jobs`).
    pub purged_jobs: &'a BTreeSet<String>,
}

struct Kv(KvMap);

impl Kv {
    fn put(&mut self, ns: &NamespaceKind, key: impl Into<String>, value: impl Into<Value>) {
        self.0.entry(ns.path()).or_default().insert(key.into(), value.into());
    }
}

fn join<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(",")
}

/// The non-string types of the HCL vars (see the module docs). Kept apart from
/// [`project`]'s map so the value path (and its memory on large fleets) is unchanged; an
/// entry for a key `project` does not write (a purged job's bucket.jobs vars) is never read.
pub fn types(ws: &Workspace) -> crate::kv::KvTypes {
    let mut out = crate::kv::KvTypes::new();
    let mut put = |ns: NamespaceKind, vars: &[crate::workspace::types::Var]| {
        for v in vars.iter().filter(|v| !v.kv_type.is_string()) {
            out.entry(ns.path()).or_default().insert(v.name.clone(), v.kv_type);
        }
    };
    put(NamespaceKind::BucketVars, &ws.bucket_vars);
    for job in ws.jobs.values() {
        put(NamespaceKind::JobVars(job.name.clone()), &job.vars);
    }
    for (job, cfg) in &ws.job_configs {
        put(NamespaceKind::BucketJobVars(job.clone()), &cfg.vars);
    }
    out
}

pub fn project(i: &Inputs) -> KvMap {
    let mut kv = Kv(KvMap::new());
    let ws = i.ws;
    // Each job's allocations in order, grouped in one pass (filtering all allocations per
    // job is jobs x allocations string comparisons: 40M on a 10,000-worker fleet).
    let by_job = super::placement::allocations_by_job(i.allocations);
    let hosts_of = |job: &str, pred: fn(AllocState) -> bool| -> Vec<&str> {
        by_job.get(job).into_iter().flatten().filter(|a| pred(a.state)).map(|a| a.host.as_str()).collect()
    };
    let active_jobs: BTreeSet<&str> =
        i.allocations.iter().filter(|a| a.state == AllocState::Active).map(|a| a.job.as_str()).collect();

    // maand/bucket
    let bucket = NamespaceKind::Bucket;
    kv.put(&bucket, "bucket_id", i.bucket_id.to_string());
    kv.put(&bucket, "jobs", join(&ws.jobs.keys().collect::<Vec<_>>()));
    kv.put(&bucket, "activejobs", join(&active_jobs.iter().collect::<Vec<_>>()));
    for (name, n) in i.ports {
        kv.put(&bucket, name, n.to_string());
    }

    // maand/worker: labels in name order, workers of each label in fleet order.
    let mut by_label: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in i.fleet {
        for l in &w.labels {
            by_label.entry(l).or_default().push(&w.host);
        }
    }
    // Each host's index in each of its labels' lists.
    let label_index: BTreeMap<&str, HashMap<&str, usize>> =
        by_label.iter().map(|(l, hosts)| (*l, hosts.iter().enumerate().map(|(i, h)| (*h, i)).collect())).collect();
    let workers_ns = NamespaceKind::Workers;
    for (label, hosts) in &by_label {
        kv.put(&workers_ns, format!("{label}_workers"), join(hosts));
        kv.put(&workers_ns, format!("{label}_workers_length"), hosts.len().to_string());
        for (idx, h) in hosts.iter().enumerate() {
            kv.put(&workers_ns, format!("{label}_{idx}"), *h);
        }
        kv.put(
            &workers_ns,
            format!("{label}_label_id"),
            derived_id(&i.bucket_id, &format!("label/{label}")).to_string(),
        );
    }

    // maand/worker/<host> and its tags
    let active_by_host = active_jobs_by_host(i.allocations);
    for w in i.fleet {
        let ns = NamespaceKind::Worker(w.host.clone());
        let mut labels: Vec<&str> = w.labels.iter().map(String::as_str).collect();
        labels.sort();
        let jobs: BTreeSet<&str> = active_by_host.get(w.host.as_str()).into_iter().flatten().copied().collect();
        kv.put(&ns, "worker_ip", &w.host);
        kv.put(&ns, "worker_id", derived_id(&i.bucket_id, &format!("worker/{}", w.host)).to_string());
        kv.put(&ns, "labels", join(&labels));
        kv.put(&ns, "position", position(w).to_string());
        kv.put(&ns, "worker_memory_mb", decimal(w.memory_mb.unwrap_or(0.0)));
        kv.put(&ns, "worker_cpu_mhz", decimal(w.cpu_mhz.unwrap_or(0.0)));
        kv.put(&ns, "jobs", join(&jobs.into_iter().collect::<Vec<_>>()));
        if let Some(h) = &w.hostname {
            kv.put(&ns, "hostname", h);
        }
        // `<label>_peers` is derived from `<label>_workers` when read (`crate::kv::derived`).
        for l in &labels {
            kv.put(&ns, format!("{l}_allocation_index"), label_index[l][w.host.as_str()].to_string());
        }
        let tags = NamespaceKind::WorkerTags(w.host.clone());
        for (k, v) in &w.tags {
            kv.put(&tags, k, v);
        }
    }

    // vars/bucket
    for v in &ws.bucket_vars {
        kv.put(&NamespaceKind::BucketVars, &v.name, &v.value);
    }

    for job in ws.jobs.values() {
        for v in &job.vars {
            kv.put(&NamespaceKind::JobVars(job.name.clone()), &v.name, &v.value);
        }
        if i.purged_jobs.contains(&job.name) {
            continue;
        }
        let placed = hosts_of(&job.name, |s| s != AllocState::Removed);
        let active = hosts_of(&job.name, |s| s == AllocState::Active);
        let version = job.version.as_ref().map_or("0.0.0", |v| v.value.as_str());
        let r = i.reservations.get(&job.name).copied().unwrap_or_default();

        let ns = NamespaceKind::Job(job.name.clone());
        kv.put(&ns, "job_id", derived_id(&i.bucket_id, &format!("job/{}", job.name)).to_string());
        kv.put(&ns, "name", &job.name);
        kv.put(&ns, "version", version);
        kv.put(&ns, "selectors", join(&job.selectors));
        kv.put(&ns, "memory", decimal(r.memory_mb));
        kv.put(&ns, "cpu", decimal(r.cpu_mhz));
        kv.put(&ns, "min_memory_mb", decimal(r.min_memory_mb));
        kv.put(&ns, "max_memory_mb", decimal(r.max_memory_mb));
        kv.put(&ns, "min_cpu_mhz", decimal(r.min_cpu_mhz));
        kv.put(&ns, "max_cpu_mhz", decimal(r.max_cpu_mhz));
        kv.put(&ns, "workers", join(&active));
        kv.put(&ns, "workers_length", active.len().to_string());
        for (idx, h) in active.iter().enumerate() {
            kv.put(&ns, format!("worker_{idx}"), *h);
        }
        kv.put(&ns, "rollout_order", join(&active));
        // The source of every allocation's derived `peer_workers` (`crate::kv::derived`).
        kv.put(&ns, "placed_workers", join(&placed));
        kv.put(&ns, "deployment_seq", i.seq.get(&job.name).copied().unwrap_or(0).to_string());

        if let Some(cfg) = ws.job_configs.get(&job.name) {
            for v in &cfg.vars {
                kv.put(&NamespaceKind::BucketJobVars(job.name.clone()), &v.name, &v.value);
            }
        }

        for (idx, host) in placed.iter().enumerate() {
            let ns = NamespaceKind::Allocation { job: job.name.clone(), host: host.to_string() };
            kv.put(&ns, format!("{}_allocation_index", job.name), idx.to_string());
            kv.put(&ns, "version", version);
        }
    }
    kv.0
}
