//! `plan --target JOB` / `apply --target JOB` (Terraform's `-target`): the plan narrowed to
//! some jobs, as a pure filter over a computed plan (the diff itself is unchanged).
//!
//! What a targeted plan keeps:
//! - every change in a namespace of a targeted job: `maand/job/<job>`, its allocations
//!   `maand/job/<job>/worker/<host>`, `vars/bucket/job/<job>`, `vars/job/<job>`,
//!   `secrets/job/<job>` (also the purges of a targeted job removed from the workspace);
//! - the bucket-level changes that follow from them. A bucket-level key (`maand/bucket`,
//!   `maand/worker`, `maand/worker/<host>`, `vars/bucket`) belongs to a job when its name
//!   says so: one of the job's port names, or `<job>_…` (`web_0`, `web_allocation_index`,
//!   `web_peers`; the longest matching job name wins). Such a key is kept only for a targeted
//!   job. A key that belongs to no job (`jobs`, `activejobs`, a worker's own keys, bucket
//!   variables) is shared by every job and kept, since the targeted jobs depend on it.
//! - the keys that list jobs by placement (`maand/bucket` `jobs` and `activejobs`,
//!   `maand/worker/<host>` `jobs`) are shared, but written with only the targeted jobs'
//!   membership changed: the other jobs are listed as the state lists them, so the catalog's
//!   cross-references (`maand/worker/<host> jobs` vs `maand/job/<job> workers`) agree after
//!   any targeted apply. A removed worker that still hosts a job not targeted keeps its
//!   `maand/worker/<host>` until that job is planned. What is held back is named in the
//!   plan's notes.
//! - the rollout of the targeted jobs only; the summary is counted again.
//!
//! Demanded (upstream) jobs are not added: their hooks read what the state already holds.
//! A target must name a job of the workspace or of the plan (a removed job being purged);
//! anything else is an error with a "did you mean".

use super::diff::summarize;
use super::types::{Action, Plan};
use crate::diag::suggest::hint_or_list;
use crate::kv::NamespaceKind;
use crate::kv::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `--target` named a job that is neither in the workspace nor in the plan.
#[derive(Debug, thiserror::Error)]
#[error("--target `{job}`: no such job in the workspace or the state\n  help: {help}")]
pub struct UnknownTarget {
    pub job: String,
    pub help: String,
}

/// The jobs a plan can be targeted at: `jobs` (the workspace's) and every job whose
/// namespaces the plan changes (a removed job being purged).
fn known_jobs(plan: &Plan, jobs: &BTreeSet<String>) -> BTreeSet<String> {
    let in_plan = plan.changes.iter().filter_map(|c| NamespaceKind::parse(&c.namespace)?.job().map(String::from));
    jobs.iter().cloned().chain(in_plan).collect()
}

/// The job a bucket-level key belongs to: a port name of the job, else the longest job
/// name `j` with `key` starting `j_`; `None` for a shared key.
fn owner<'a>(key: &str, ports: &'a BTreeMap<String, String>, known: &BTreeSet<&'a str>) -> Option<&'a str> {
    if let Some(job) = ports.get(key) {
        return Some(job);
    }
    known
        .iter()
        .filter(|j| key.len() > j.len() && key.starts_with(**j) && key.as_bytes()[j.len()] == b'_')
        .max_by_key(|j| j.len())
        .copied()
}

/// Narrow `plan` to `targets` (see the module docs). `jobs`: the workspace's jobs; `ports`:
/// port name -> job, from the workspace's manifests.
pub fn restrict(
    mut plan: Plan,
    targets: &[String],
    jobs: &BTreeSet<String>,
    ports: &BTreeMap<String, String>,
) -> Result<Plan, UnknownTarget> {
    let known = known_jobs(&plan, jobs);
    for t in targets {
        if !known.contains(t) {
            return Err(UnknownTarget { job: t.clone(), help: hint_or_list(t, &known, "jobs") });
        }
    }
    let wanted: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
    let known_refs: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    plan.changes.retain(|c| match NamespaceKind::parse(&c.namespace) {
        Some(kind) => match kind.job() {
            Some(job) => wanted.contains(job),
            None => owner(&c.key, ports, &known_refs).is_none_or(|j| wanted.contains(j)),
        },
        // Outside the layout: not a job's, so shared.
        None => true,
    });
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A removed worker that still hosts a job not targeted keeps its namespace until that
    // job is planned: purging it would leave `maand/job/<job> workers` naming a host gone.
    let mut kept_workers: BTreeSet<String> = BTreeSet::new();
    for c in plan.changes.iter().filter(|c| c.action == Action::Tombstone && lists_jobs(&c.namespace, &c.key)) {
        let others: BTreeSet<&str> =
            names(c.before.as_deref().unwrap_or("")).into_iter().filter(|j| !wanted.contains(j)).collect();
        if matches!(NamespaceKind::parse(&c.namespace), Some(NamespaceKind::Worker(_))) && !others.is_empty() {
            kept_workers.insert(c.namespace.clone());
            held.entry(format!("`{}` (purge)", c.namespace))
                .or_default()
                .extend(others.iter().map(|j| format!("`{j}`")));
        }
    }
    plan.changes.retain_mut(|c| {
        let listing = lists_jobs(&c.namespace, &c.key);
        if kept_workers.contains(&c.namespace) && !listing {
            return false;
        }
        if !listing {
            return true;
        }
        let before: BTreeSet<&str> = names(c.before.as_deref().unwrap_or(""));
        let after_text = c.after.as_ref().map(|v| v.to_cow().into_owned()).unwrap_or_default();
        let after: BTreeSet<&str> = names(&after_text);
        let mine: BTreeSet<&str> = before
            .iter()
            .filter(|j| !wanted.contains(**j))
            .chain(after.iter().filter(|j| wanted.contains(**j)))
            .copied()
            .collect();
        let others: BTreeSet<&str> =
            before.symmetric_difference(&after).filter(|j| !wanted.contains(**j)).copied().collect();
        if others.is_empty() {
            return true;
        }
        held.entry(format!("`{}` `{}`", c.namespace, c.key))
            .or_default()
            .extend(others.iter().map(|j| format!("`{j}`")));
        if mine == before && c.before.is_some() {
            return false;
        }
        if c.action == Action::Tombstone {
            // The listing stays, naming the jobs not targeted.
            c.action = Action::Update;
            c.purge = false;
            c.reason = Some("--target: lists the jobs not targeted until they are planned".into());
        }
        c.after = Some(Value::from(mine.into_iter().collect::<Vec<_>>().join(",")));
        true
    });
    if !held.is_empty() {
        let n = held.len();
        let shown: Vec<String> = held.iter().take(3).map(|(k, jobs)| format!("{k} ({})", join(jobs))).collect();
        let more = if n > 3 { format!(" and {} more", n - 3) } else { String::new() };
        plan.notes.push(format!(
            "held back by --target: the placement of jobs not targeted in {n} key{} that list jobs: {}{more}; a plan without --target writes it",
            if n == 1 { "" } else { "s" },
            shown.join(", ")
        ));
        plan.notes.sort();
    }
    for wave in &mut plan.rollout {
        wave.jobs.retain(|j| wanted.contains(j.job.as_str()));
    }
    plan.rollout.retain(|w| !w.jobs.is_empty());
    plan.summary = summarize(&plan.changes);
    Ok(plan)
}

/// A key whose value lists jobs by name (comma-separated, sorted): the catalog's placement.
fn lists_jobs(ns: &str, key: &str) -> bool {
    match NamespaceKind::parse(ns) {
        Some(NamespaceKind::Bucket) => key == "jobs" || key == "activejobs",
        Some(NamespaceKind::Worker(_)) => key == "jobs",
        _ => false,
    }
}

fn names(list: &str) -> BTreeSet<&str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_belong_to_the_job_they_name() {
        let ports: BTreeMap<String, String> = [("http".to_string(), "web".to_string())].into();
        let known: BTreeSet<&str> = ["web", "web_api", "db"].into();
        assert_eq!(owner("http", &ports, &known), Some("web"));
        assert_eq!(owner("web_0", &ports, &known), Some("web"));
        assert_eq!(owner("web_api_allocation_index", &ports, &known), Some("web_api"));
        assert_eq!(owner("db_label_id", &ports, &known), Some("db"));
        assert_eq!(owner("jobs", &ports, &known), None);
        assert_eq!(owner("worker_0", &ports, &known), None);
        assert_eq!(owner("web", &ports, &known), None);
    }
}
