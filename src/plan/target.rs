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
//! - the rollout of the targeted jobs only; the summary is counted again.
//!
//! Demanded (upstream) jobs are not added: their hooks read what the state already holds.
//! A target must name a job of the workspace or of the plan (a removed job being purged);
//! anything else is an error with a "did you mean".

use super::diff::summarize;
use super::types::Plan;
use crate::diag::suggest::hint_or_list;
use crate::kv::NamespaceKind;
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
    for wave in &mut plan.rollout {
        wave.jobs.retain(|j| wanted.contains(j.job.as_str()));
    }
    plan.rollout.retain(|w| !w.jobs.is_empty());
    plan.summary = summarize(&plan.changes);
    Ok(plan)
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
