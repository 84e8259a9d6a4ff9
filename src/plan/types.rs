//! The plan as data: what [`super::diff`] produces, the renderers print, `--out` saves and
//! the apply executor executes. Field order here is the key order of the JSON document
//! (`kvform plan --json`), so reordering a field is a format change.

use crate::kv::{KvType, Value};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the plan document (`format_version` in JSON and saved plans).
pub const FORMAT_VERSION: &str = "1";

/// The kvform version that makes plans; a saved plan made by another version is refused.
pub const KVFORM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Options that change what the plan contains (recorded in saved plans).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanOptions {
    /// `plan --purge-secrets-kv`: purge `secrets/job/<job>` (and the non-workspace keys of
    /// `vars/job/<job>`) of jobs still in the workspace that have no active allocation.
    pub purge_secrets_kv: bool,
}

/// What a change does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The key has no live version (new, or revived after a tombstone): `+`, counted as add.
    Create,
    /// The key is live with another value (or a ttl the workspace resets): `~`, counted as change.
    Update,
    /// A tombstone version is appended: `-`, counted as destroy.
    Tombstone,
}

impl Action {
    /// The plan symbol (`+`, `~`, `-`).
    pub fn symbol(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Tombstone => '-',
        }
    }
}

/// One key written or tombstoned by the plan.
///
/// Values of `secrets/*` namespaces are never carried: `before`/`after` are `None` and the
/// matching `*_sensitive` flag is true, so no plan output or plan file holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub namespace: String,
    pub key: String,
    pub action: Action,
    /// The live value (trimmed) before the change; `None` for creates and sensitive values.
    pub before: Option<String>,
    /// The value written (trimmed); `None` for tombstones and sensitive values.
    // A `Value` (serialised as a string) so a plan writing every peer list (a first apply)
    // shares their text with the desired state instead of holding O(workers²) bytes.
    pub after: Option<Value>,
    /// The type the key is written with (SPEC §9, from the HCL value); omitted for `string`.
    #[serde(default, rename = "type", skip_serializing_if = "KvType::is_string")]
    pub kv_type: KvType,
    pub before_sensitive: bool,
    pub after_sensitive: bool,
    /// The value is made by `apply` (a certificate or its private key, SPEC §8): `after` is
    /// `None` in every plan and plan file; shown as `(known after apply)`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_unknown: bool,
    /// Why (tombstones always have one; creates/updates only when not obvious).
    pub reason: Option<String>,
    /// Part of a purge group (a whole namespace going away, or the non-workspace keys of
    /// `vars/job/<job>` under `--purge-secrets-kv`); the text renderer folds these into one line.
    pub purge: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Terraform-style counts: create = add, update = change, tombstone = destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// Which batching rule an allocation batch follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchKind {
    /// Allocations not in the prior state, batched by `max_concurrent_starts`.
    New,
    /// Existing active allocations whose configuration changed, batched by
    /// `max_concurrent_upgrades`.
    Changed,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::New => "new",
            BatchKind::Changed => "changed",
        }
    }
}

/// Allocations applied together: their `maand/job/<job>/worker/<host>` changes, then their
/// `post_deploy` hooks, then the job's `health_check` gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Batch {
    pub kind: BatchKind,
    /// Hosts in rollout (fleet) order.
    pub hosts: Vec<String>,
}

/// Hook commands the apply runs for one job, by event; command names sorted. Empty lists
/// mean nothing runs for that event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobHooks {
    /// Once per active allocation, after every namespace of the job is written.
    pub pre_deploy: Vec<String>,
    /// Once per apply on every active allocation, concurrently, with `NEW_ALLOCATIONS` /
    /// `UPDATED_ALLOCATIONS` of the whole job; a job with such commands has no batch hooks.
    pub job_control: Vec<String>,
    /// After each batch (jobs without `job_control`), on the batch's allocations.
    pub after_allocation_started: Vec<String>,
    /// Once per active allocation, last (after the rollout and its health gate).
    pub post_deploy: Vec<String>,
    /// The gate on every active allocation: after the new allocations, after each batch of
    /// changed ones, after `job_control`, after stops (a failure fails the job).
    pub health_check: Vec<String>,
    /// On each stopped (removed) allocation, before its namespace is tombstoned.
    pub after_allocation_stopped: Vec<String>,
    /// After the apply commits, in wave order.
    pub post_build: Vec<String>,
}

impl JobHooks {
    pub fn is_empty(&self) -> bool {
        self.by_event().iter().all(|(_, cmds)| cmds.is_empty())
    }

    /// Every list with its event name, in rollout order.
    pub fn by_event(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("pre_deploy", &self.pre_deploy),
            ("job_control", &self.job_control),
            ("after_allocation_started", &self.after_allocation_started),
            ("post_deploy", &self.post_deploy),
            ("health_check", &self.health_check),
            ("after_allocation_stopped", &self.after_allocation_stopped),
            ("post_build", &self.post_build),
        ]
    }
}

/// One job's part of the rollout: the checkpoint the executor opens for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobRollout {
    pub job: String,
    /// Jobs this job demands; when one of them fails, this job is skipped.
    pub upstreams: Vec<String>,
    /// Namespaces with changes and no batch of their own: the job-level namespaces and the
    /// allocation namespaces of disabled allocations. Sorted. The executor writes them and
    /// the batches' allocation namespaces at the start of the job's checkpoint, before
    /// `pre_deploy` (maand's build writes every namespace before deploy runs a hook).
    pub namespaces: Vec<String>,
    /// Allocation batches in order: new allocations first, then changed ones.
    pub batches: Vec<Batch>,
    /// Hosts of removed allocations whose namespace the plan tombstones: each gets its
    /// `after_allocation_stopped` hooks first. Sorted.
    pub stopped: Vec<String>,
    pub hooks: JobHooks,
}

/// One wave (`deployment_seq`): its jobs in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Wave {
    pub seq: u32,
    pub jobs: Vec<JobRollout>,
}

/// What the plan was made from. Not part of the `--json` document (so its golden output
/// does not change with the kvform version); saved plans carry it (see `saved`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanMeta {
    pub lineage: Uuid,
    /// The state serial the plan was computed against.
    pub base_serial: u64,
    pub kvform_version: String,
    pub options: PlanOptions,
    /// The time the plan was computed at (TTL expiry), unix seconds: the command's `now`.
    pub now: i64,
}

/// The whole plan. Serialises to the `kvform plan --json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Always `"1"` for this format.
    pub format_version: String,
    /// Sorted by namespace, then key.
    pub changes: Vec<Change>,
    /// Waves in ascending `seq`; only jobs with changes (see `rollout`).
    pub rollout: Vec<Wave>,
    pub summary: Summary,
    /// What the plan deliberately leaves as it is, and why (the bucket CA certificate on a
    /// machine without the CA files, other jobs' placement under `--target`). Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub meta: PlanMeta,
}

impl Plan {
    /// The empty plan against a state (lineage, serial) with `options`: what `diff` gives
    /// when nothing differs, computed at `now`.
    pub fn no_changes(lineage: Uuid, base_serial: u64, options: &PlanOptions, now: i64) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            changes: Vec::new(),
            rollout: Vec::new(),
            summary: Summary::default(),
            notes: Vec::new(),
            meta: PlanMeta {
                lineage,
                base_serial,
                kvform_version: KVFORM_VERSION.into(),
                options: options.clone(),
                now,
            },
        }
    }

    /// No key is written or tombstoned (and so nothing is rolled out).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes of one namespace (changes are sorted, so this is a contiguous run).
    pub fn changes_in<'a>(&'a self, namespace: &str) -> &'a [Change] {
        let start = self.changes.partition_point(|c| c.namespace.as_str() < namespace);
        let end = self.changes.partition_point(|c| c.namespace.as_str() <= namespace);
        &self.changes[start..end]
    }

    /// Namespaces with changes, sorted, each once.
    pub fn changed_namespaces(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.changes.iter().map(|c| c.namespace.as_str()).collect();
        out.dedup();
        out
    }

    /// Namespaces the executor applies in the bucket-level step, before any wave: every
    /// changed namespace no job of the rollout claims (the bucket-level namespaces, and the
    /// purges of jobs removed from the workspace, which have no hooks and no wave). Sorted.
    pub fn bucket_step_namespaces(&self) -> Vec<&str> {
        let claimed: std::collections::BTreeSet<String> =
            self.rollout
                .iter()
                .flat_map(|w| &w.jobs)
                .flat_map(|j| {
                    j.namespaces.iter().cloned().chain(
                        j.batches.iter().flat_map(|b| &b.hosts).chain(&j.stopped).map(|h| {
                            crate::kv::NamespaceKind::Allocation { job: j.job.clone(), host: h.clone() }.path()
                        }),
                    )
                })
                .collect();
        self.changed_namespaces().into_iter().filter(|ns| !claimed.contains(*ns)).collect()
    }

    /// Every job of the rollout, in execution order (wave, then name).
    pub fn jobs(&self) -> impl Iterator<Item = (u32, &JobRollout)> {
        self.rollout.iter().flat_map(|w| w.jobs.iter().map(move |j| (w.seq, j)))
    }
}
