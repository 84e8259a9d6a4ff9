//! In-Rust fixtures for the plan tests: a `Desired` and a `Snapshot` built key by key.
#![allow(dead_code)]

use kvform::diag::Span;
use kvform::kv::{Entry, Snapshot};
use kvform::model::types::{AllocState, Allocation, Desired, DesiredJob};
use kvform::plan::{Plan, PlanOptions, diff};
use kvform::workspace::types::{Command, Event};
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

pub const NOW: i64 = 1_767_323_045; // 2026-01-02T03:04:05Z

pub struct Fx {
    pub desired: Desired,
    pub snap: Snapshot,
    pub opts: PlanOptions,
}

pub fn lineage() -> Uuid {
    Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888)
}

pub fn entry(value: &str) -> Entry {
    Entry { value: value.into(), version: 1, deleted: false, ttl: 0, created_at: 0, serial: 1, writer: "apply".into() }
}

impl Fx {
    pub fn new() -> Fx {
        Fx {
            desired: Desired {
                bucket_id: Uuid::nil(),
                kv: BTreeMap::new(),
                kv_types: Default::default(),
                workers: Vec::new(),
                jobs: BTreeMap::new(),
                allocations: Vec::new(),
                removed_jobs: Default::default(),
                removed_workers: Default::default(),
                purged_jobs: Default::default(),
                waves: Vec::new(),
                certs: Default::default(),
                prometheus: Default::default(),
                sensitive: Default::default(),
                units: Default::default(),
            },
            snap: Snapshot { bucket_id: Uuid::nil(), lineage: lineage(), serial: 7, ..Default::default() },
            opts: PlanOptions::default(),
        }
    }

    /// A desired key.
    pub fn want(mut self, ns: &str, key: &str, value: &str) -> Fx {
        self.desired.kv.entry(ns.into()).or_default().insert(key.into(), value.into());
        self
    }

    /// A live key in the state.
    pub fn live(self, ns: &str, key: &str, value: &str) -> Fx {
        self.entry(ns, key, entry(value))
    }

    /// A live key written by a hook with a ttl.
    pub fn live_ttl(self, ns: &str, key: &str, value: &str, created_at: i64, ttl: u64) -> Fx {
        self.entry(
            ns,
            key,
            Entry { created_at, ttl, writer: "api:10.0.0.1/post_deploy/command_x".into(), ..entry(value) },
        )
    }

    /// A tombstoned key (version 2).
    pub fn tombstoned(self, ns: &str, key: &str, value: &str) -> Fx {
        self.entry(ns, key, Entry { deleted: true, version: 2, ..entry(value) })
    }

    pub fn entry(mut self, ns: &str, key: &str, e: Entry) -> Fx {
        self.snap.entries.entry(ns.into()).or_default().insert(key.into(), e);
        self
    }

    /// A job in wave `wave` with allocations: `(host, state, is_new)`, active hosts in the
    /// order given (fleet order).
    pub fn job(mut self, name: &str, wave: u32, allocs: &[(&str, AllocState, bool)]) -> Fx {
        let job = DesiredJob {
            name: name.into(),
            job_id: Uuid::nil(),
            version: "1.0.0".into(),
            deployment_seq: wave,
            upstreams: Vec::new(),
            max_concurrent_upgrades: 1,
            max_concurrent_starts: 0,
            commands: BTreeMap::new(),
            active_hosts: allocs.iter().filter(|a| a.1 == AllocState::Active).map(|a| a.0.to_string()).collect(),
            disabled_hosts: allocs.iter().filter(|a| a.1 == AllocState::Disabled).map(|a| a.0.to_string()).collect(),
        };
        for (host, state, is_new) in allocs {
            self.desired.allocations.push(Allocation {
                job: name.into(),
                host: host.to_string(),
                alloc_id: Uuid::nil(),
                state: *state,
                is_new: *is_new,
            });
        }
        self.desired.jobs.insert(name.into(), job);
        while self.desired.waves.len() <= wave as usize {
            self.desired.waves.push(Vec::new());
        }
        self.desired.waves[wave as usize].push(name.into());
        self.desired.waves[wave as usize].sort();
        self
    }

    pub fn job_mut(&mut self, name: &str) -> &mut DesiredJob {
        self.desired.jobs.get_mut(name).unwrap()
    }

    /// Add a hook command to a job.
    pub fn command(mut self, job: &str, name: &str, events: &[Event]) -> Fx {
        let cmd = Command {
            name: name.into(),
            executed_on: events.to_vec(),
            demands: None,
            script: PathBuf::from(format!("workspace/jobs/{job}/_modules/{name}.sh")),
            span: Span::new(0, 0..0),
        };
        self.job_mut(job).commands.insert(name.into(), cmd);
        self
    }

    pub fn removed_job(mut self, job: &str) -> Fx {
        self.desired.removed_jobs.insert(job.into());
        self
    }

    /// The model's `Desired::purged_jobs`: the job's allocations are all gone.
    pub fn purged(mut self, job: &str) -> Fx {
        self.desired.purged_jobs.insert(job.into());
        self
    }

    pub fn removed_worker(mut self, host: &str) -> Fx {
        self.desired.removed_workers.insert(host.into());
        self
    }

    pub fn purge_secrets_kv(mut self) -> Fx {
        self.opts.purge_secrets_kv = true;
        self
    }

    pub fn plan(&self) -> Plan {
        diff(&self.desired, &self.snap, &self.opts, NOW)
    }
}

/// `(namespace, key, action, reason, purge)` of each change, for compact assertions.
pub fn brief(plan: &Plan) -> Vec<(String, String, String, Option<String>, bool)> {
    plan.changes
        .iter()
        .map(|c| {
            let action = serde_json::to_value(c.action).unwrap().as_str().unwrap().to_string();
            (c.namespace.clone(), c.key.clone(), action, c.reason.clone(), c.purge)
        })
        .collect()
}
