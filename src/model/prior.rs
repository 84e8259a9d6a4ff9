//! [`Prior`] from a state snapshot: what the current state already holds that the
//! workspace alone cannot decide (port numbers, which workers, jobs and allocations exist).
//! Only live (not tombstoned) keys count.

use super::types::Prior;
use crate::kv::{Current, CurrentEntry, NamespaceKind, Snapshot};

/// Keys of `maand/bucket` that are not port names.
const BUCKET_KEYS: [&str; 3] = ["bucket_id", "jobs", "activejobs"];

impl Prior {
    pub fn from_snapshot(snap: &Snapshot) -> Prior {
        Prior::from_current(snap)
    }

    /// From any view of the current state (a lean snapshot knows the `maand/bucket` values).
    pub fn from_current<C: Current>(snap: &C) -> Prior {
        let mut prior =
            Prior { bucket_id: snap.bucket_id(), purged_jobs: snap.purged_jobs().clone(), ..Default::default() };
        for ns in Current::live_namespaces(snap) {
            let Some(kind) = NamespaceKind::parse(ns) else { continue };
            if let Some(job) = kind.job() {
                prior.jobs.insert(job.to_string());
            }
            match &kind {
                NamespaceKind::Bucket => {
                    for (key, e) in Current::live(snap, ns) {
                        if !BUCKET_KEYS.contains(&key.as_str())
                            && let Some(Ok(n)) = e.value().map(|v| v.trim().parse::<u16>())
                        {
                            prior.ports.insert(key.clone(), n);
                        }
                    }
                }
                // A worker whose tags outlive its main namespace still needs purging.
                NamespaceKind::Worker(h) | NamespaceKind::WorkerTags(h) => {
                    prior.workers.insert(h.clone());
                }
                NamespaceKind::Allocation { job, host } => {
                    prior.allocations.insert((job.clone(), host.clone()));
                }
                _ => {}
            }
        }
        prior
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Entry;
    use uuid::Uuid;

    fn entry(value: &str, deleted: bool) -> Entry {
        Entry { value: value.into(), version: 1, deleted, ttl: 0, created_at: 0, serial: 1, writer: "apply".into() }
    }

    #[test]
    fn reads_live_namespaces_only() {
        let mut snap = Snapshot { bucket_id: Uuid::from_u128(7), ..Default::default() };
        let mut put = |ns: &str, k: &str, v: &str, deleted: bool| {
            snap.entries.entry(ns.into()).or_default().insert(k.into(), entry(v, deleted));
        };
        put("maand/bucket", "bucket_id", "x", false);
        put("maand/bucket", "jobs", "api", false);
        put("maand/bucket", "activejobs", "1", false);
        put("maand/bucket", "api_http", "30001", false);
        put("maand/bucket", "old_http", "30002", true);
        put("maand/bucket", "weird", "not-a-port", false);
        put("maand/worker/10.0.0.1", "worker_ip", "10.0.0.1", false);
        put("maand/worker/10.0.0.2", "worker_ip", "10.0.0.2", true);
        put("maand/worker/10.0.0.3/tags", "zone", "a", false);
        put("maand/job/api/worker/10.0.0.1", "version", "1", false);
        put("maand/job/gone/worker/10.0.0.9", "version", "1", true);
        put("secrets/job/vault", "token", "sealed", false);
        put("vars/bucket/job/cfg", "x", "1", false);
        put("not/a/namespace", "x", "1", false);
        let p = Prior::from_snapshot(&snap);
        assert_eq!(p.bucket_id, Uuid::from_u128(7));
        assert_eq!(p.ports.into_iter().collect::<Vec<_>>(), [("api_http".to_string(), 30001)]);
        assert_eq!(p.workers.into_iter().collect::<Vec<_>>(), ["10.0.0.1", "10.0.0.3"]);
        assert_eq!(p.jobs.into_iter().collect::<Vec<_>>(), ["api", "cfg", "vault"]);
        assert_eq!(p.allocations.into_iter().collect::<Vec<_>>(), [("api".to_string(), "10.0.0.1".to_string())]);
    }
}
