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
//!
//! Units (`crate::kv::inputs`): each worker's and each job's namespaces are projected by a
//! function that gets one value, `WorkerInputs` / `JobInputs`, holding everything it reads;
//! the digest of that value is the unit's input fingerprint. A plan whose state recorded
//! the same digest at the last apply (and nothing written since) skips the unit
//! (`Skip`): it is neither projected nor read. The bucket-level namespaces (`maand/bucket`,
//! `maand/worker`, `vars/bucket`) depend on the whole fleet and are projected every time.

use super::placement::{active_jobs_by_host, derived_id, position};
use super::resources::Reservation;
use super::types::{AllocState, Allocation};
use crate::kv::inputs::{InputDigest, Units, digest, job_unit, worker_unit};
use crate::kv::value::decimal;
use crate::kv::{KvMap, NamespaceKind, Value};
use crate::workspace::types::{Var, Worker, Workspace};
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

pub use crate::kv::inputs::Skip;

/// Project every unit (what `validate --print-desired`, `run` and a full plan need).
pub fn project_all(_: &str, _: &InputDigest) -> bool {
    false
}

struct Kv(KvMap);

impl Kv {
    fn put(&mut self, ns: &NamespaceKind, key: impl Into<String>, value: impl Into<Value>) {
        self.0.entry(ns.path()).or_default().insert(key.into(), value.into());
    }

    /// A whole namespace at once (unit projections build theirs in a local map: one path
    /// string per namespace instead of one per key). An empty one is not produced.
    fn put_all(&mut self, ns: String, keys: BTreeMap<String, Value>) {
        if !keys.is_empty() {
            self.0.entry(ns).or_default().extend(keys);
        }
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

/// The desired keys, and what was done with each unit: a unit is projected unless `skip`
/// says its inputs are the recorded ones.
pub fn project(i: &Inputs, skip: Skip<'_>) -> (KvMap, Units) {
    let mut kv = Kv(KvMap::new());
    let mut units = Units::default();
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
    let mut workers_ns = BTreeMap::new();
    for (label, hosts) in &by_label {
        workers_ns.insert(format!("{label}_workers"), join(hosts).into());
        workers_ns.insert(format!("{label}_workers_length"), hosts.len().to_string().into());
        for (idx, h) in hosts.iter().enumerate() {
            workers_ns.insert(format!("{label}_{idx}"), (*h).into());
        }
        workers_ns.insert(
            format!("{label}_label_id"),
            derived_id(&i.bucket_id, &format!("label/{label}")).to_string().into(),
        );
    }
    kv.put_all(NamespaceKind::Workers.path(), workers_ns);

    // maand/worker/<host> and its tags
    let active_by_host = active_jobs_by_host(i.allocations);
    for w in i.fleet {
        let mut labels: Vec<&str> = w.labels.iter().map(String::as_str).collect();
        labels.sort();
        let jobs: BTreeSet<&str> = active_by_host.get(w.host.as_str()).into_iter().flatten().copied().collect();
        let inputs = WorkerInputs {
            bucket_id: i.bucket_id,
            host: &w.host,
            hostname: w.hostname.as_deref(),
            labels: labels.iter().map(|l| (*l, label_index[l][w.host.as_str()])).collect(),
            position: position(w),
            memory_mb: decimal(w.memory_mb.unwrap_or(0.0)),
            cpu_mhz: decimal(w.cpu_mhz.unwrap_or(0.0)),
            jobs: jobs.into_iter().collect(),
            tags: &w.tags,
        };
        let unit = worker_unit(&w.host);
        let d = digest(&inputs);
        if !skip(&unit, &d) {
            project_worker(&inputs, &mut kv);
            units.projected.insert(unit.clone());
        }
        units.inputs.insert(unit, Some(d));
    }

    // vars/bucket
    for v in &ws.bucket_vars {
        kv.put(&NamespaceKind::BucketVars, &v.name, &v.value);
    }

    let server = super::catalog::has_prometheus_server(ws);
    for job in ws.jobs.values() {
        let placed = (!i.purged_jobs.contains(&job.name)).then(|| {
            let r = i.reservations.get(&job.name).copied().unwrap_or_default();
            Placed {
                version: job.version.as_ref().map_or("0.0.0", |v| v.value.as_str()),
                selectors: &job.selectors,
                resources: [r.memory_mb, r.cpu_mhz, r.min_memory_mb, r.max_memory_mb, r.min_cpu_mhz, r.max_cpu_mhz]
                    .map(decimal),
                placed: hosts_of(&job.name, |s| s != AllocState::Removed),
                active: hosts_of(&job.name, |s| s == AllocState::Active),
                seq: i.seq.get(&job.name).copied().unwrap_or(0),
                config_vars: ws.job_configs.get(&job.name).map(|c| pairs(&c.vars)).unwrap_or_default(),
                job_name: super::catalog::job_name(job, server),
            }
        });
        let inputs = JobInputs { bucket_id: i.bucket_id, name: &job.name, vars: pairs(&job.vars), placed };
        let unit = job_unit(&job.name);
        // Certificates are decided against the clock: such a job is projected every time.
        let d = job.certs.is_empty().then(|| digest(&inputs));
        if !d.is_some_and(|d| skip(&unit, &d)) {
            project_job(&inputs, &mut kv);
            units.projected.insert(unit.clone());
        }
        units.inputs.insert(unit, d);
    }
    (kv.0, units)
}

/// A var as a unit's input: name, value and HCL type. The projection writes name and value;
/// the type is in the digest because the namespace's fingerprint covers it ([`types`]), so
/// `replicas = "3"` -> `replicas = 3` re-plans the unit although the value text is the same.
fn pairs(vars: &[Var]) -> Vec<(&str, &str, crate::kv::KvType)> {
    vars.iter().map(|v| (v.name.as_str(), v.value.as_str(), v.kv_type)).collect()
}

/// Everything `maand/worker/<host>` and its tags are projected from.
#[derive(Hash)]
struct WorkerInputs<'a> {
    bucket_id: Uuid,
    host: &'a str,
    hostname: Option<&'a str>,
    /// Sorted, each with the host's index among the workers carrying it.
    labels: Vec<(&'a str, usize)>,
    position: i64,
    memory_mb: String,
    cpu_mhz: String,
    /// Jobs with an active allocation on the worker, sorted.
    jobs: Vec<&'a str>,
    tags: &'a BTreeMap<String, String>,
}

fn project_worker(i: &WorkerInputs, kv: &mut Kv) {
    let mut ns: BTreeMap<String, Value> = BTreeMap::new();
    let labels: Vec<&str> = i.labels.iter().map(|(l, _)| *l).collect();
    ns.insert("worker_ip".into(), i.host.into());
    ns.insert("worker_id".into(), derived_id(&i.bucket_id, &format!("worker/{}", i.host)).to_string().into());
    ns.insert("labels".into(), join(&labels).into());
    ns.insert("position".into(), i.position.to_string().into());
    ns.insert("worker_memory_mb".into(), i.memory_mb.as_str().into());
    ns.insert("worker_cpu_mhz".into(), i.cpu_mhz.as_str().into());
    ns.insert("jobs".into(), join(&i.jobs).into());
    if let Some(h) = i.hostname {
        ns.insert("hostname".into(), h.into());
    }
    // `<label>_peers` is derived from `<label>_workers` when read (`crate::kv::derived`).
    for (l, idx) in &i.labels {
        ns.insert(format!("{l}_allocation_index"), idx.to_string().into());
    }
    kv.put_all(NamespaceKind::Worker(i.host.to_string()).path(), ns);
    let tags = i.tags.iter().map(|(k, v)| (k.clone(), v.into())).collect();
    kv.put_all(NamespaceKind::WorkerTags(i.host.to_string()).path(), tags);
}

/// Everything a job's namespaces are projected from.
#[derive(Hash)]
struct JobInputs<'a> {
    bucket_id: Uuid,
    name: &'a str,
    /// vars.hcl (`vars/job/<job>`, written even when the job is purged).
    vars: Vec<(&'a str, &'a str, crate::kv::KvType)>,
    /// `None` when the job is purged: no job-level or allocation namespaces.
    placed: Option<Placed<'a>>,
}

#[derive(Hash)]
struct Placed<'a> {
    version: &'a str,
    selectors: &'a [String],
    /// `memory`, `cpu`, `min_memory_mb`, `max_memory_mb`, `min_cpu_mhz`, `max_cpu_mhz`.
    resources: [String; 6],
    /// Non-removed allocations' hosts, fleet order.
    placed: Vec<&'a str>,
    /// Active allocations' hosts, fleet order.
    active: Vec<&'a str>,
    seq: u32,
    /// The job's bucket.jobs block.
    config_vars: Vec<(&'a str, &'a str, crate::kv::KvType)>,
    /// `job_name`: the job's name, or a scrape file's (SPEC §8, `super::catalog::job_name`).
    job_name: &'a str,
}

fn project_job(i: &JobInputs, kv: &mut Kv) {
    let job = i.name;
    let vars = i.vars.iter().map(|(k, v, _)| (k.to_string(), (*v).into())).collect();
    kv.put_all(NamespaceKind::JobVars(job.to_string()).path(), vars);
    let Some(p) = &i.placed else { return };
    let mut ns: BTreeMap<String, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        ns.insert(k.to_string(), v);
    };
    put("job_id", derived_id(&i.bucket_id, &format!("job/{job}")).to_string().into());
    put("name", job.into());
    put("version", p.version.into());
    put("selectors", join(p.selectors).into());
    for (key, v) in
        ["memory", "cpu", "min_memory_mb", "max_memory_mb", "min_cpu_mhz", "max_cpu_mhz"].iter().zip(&p.resources)
    {
        put(key, v.into());
    }
    put("workers", join(&p.active).into());
    put("workers_length", p.active.len().to_string().into());
    put("rollout_order", join(&p.active).into());
    // The source of every allocation's derived `peer_workers` (`crate::kv::derived`).
    put("placed_workers", join(&p.placed).into());
    put("deployment_seq", p.seq.to_string().into());
    put("job_name", p.job_name.into());
    for (idx, h) in p.active.iter().enumerate() {
        ns.insert(format!("worker_{idx}"), (*h).into());
    }
    kv.put_all(NamespaceKind::Job(job.to_string()).path(), ns);

    let config = p.config_vars.iter().map(|(k, v, _)| (k.to_string(), (*v).into())).collect();
    kv.put_all(NamespaceKind::BucketJobVars(job.to_string()).path(), config);

    let index_key = format!("{job}_allocation_index");
    for (idx, host) in p.placed.iter().enumerate() {
        let mut ns = BTreeMap::new();
        ns.insert(index_key.clone(), idx.to_string().into());
        ns.insert("version".to_string(), p.version.into());
        kv.put_all(NamespaceKind::Allocation { job: job.to_string(), host: host.to_string() }.path(), ns);
    }
}
