//! The desired state: what `model::desired(workspace, prior)` produces and `plan::diff`
//! and `apply` consume. Pure data; deterministic order everywhere (BTreeMap, fleet order).

use crate::kv::KvMap;
use crate::workspace::types::Command;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What the current state already holds that the workspace alone cannot decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior {
    pub bucket_id: Uuid,
    /// Port name -> number currently assigned (from live `maand/bucket` port keys).
    pub ports: BTreeMap<String, u16>,
    /// Hosts with a live `maand/worker/<host>` namespace.
    pub workers: BTreeSet<String>,
    /// Jobs with any live namespace (`maand/job/<job>`, `vars/bucket/job/<job>`,
    /// `vars/job/<job>`, `secrets/job/<job>`, or an allocation namespace).
    pub jobs: BTreeSet<String>,
    /// (job, host) pairs with a live `maand/job/<job>/worker/<host>` namespace.
    pub allocations: BTreeSet<(String, String)>,
    /// Jobs the state records as purged (all allocations removed, not placed since).
    pub purged_jobs: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AllocState {
    /// Placed and not disabled.
    Active,
    /// Placed but disabled by `disabled.json`: keeps its namespace, gets no hooks.
    Disabled,
    /// In the prior state but no longer placed: its namespace is tombstoned by the plan.
    Removed,
}

impl AllocState {
    pub fn as_str(self) -> &'static str {
        match self {
            AllocState::Active => "active",
            AllocState::Disabled => "disabled",
            AllocState::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub job: String,
    pub host: String,
    pub alloc_id: Uuid,
    pub state: AllocState,
    /// True when the allocation is not in the prior state (a new start, batched by
    /// `max_concurrent_starts`); false for existing ones (batched by
    /// `max_concurrent_upgrades`).
    pub is_new: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredWorker {
    pub host: String,
    pub worker_id: Uuid,
    /// Fleet position (explicit `position` or array index).
    pub position: i64,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredJob {
    pub name: String,
    pub job_id: Uuid,
    /// Store value of the version (`0.0.0` when absent).
    pub version: String,
    /// The wave: 0 without demands, else 1 + the highest upstream wave.
    pub deployment_seq: u32,
    /// Jobs this job demands (sorted, unique).
    pub upstreams: Vec<String>,
    pub max_concurrent_upgrades: u32,
    pub max_concurrent_starts: u32,
    pub commands: BTreeMap<String, Command>,
    /// Hosts of active allocations, in fleet order (the default rollout order).
    pub active_hosts: Vec<String>,
    /// Hosts of disabled allocations, fleet order.
    pub disabled_hosts: Vec<String>,
}

/// The whole desired state.
#[derive(Debug, Clone)]
pub struct Desired {
    pub bucket_id: Uuid,
    /// Every workspace-derived key (SPEC §4 table): namespace -> key -> value. Includes
    /// `vars/job/<job>` keys from vars.hcl (a merged namespace).
    pub kv: KvMap,
    /// The type of every key of [`Self::kv`] that is not a `string`: the HCL-typed vars
    /// (`crate::model::project::types`).
    pub kv_types: crate::kv::KvTypes,
    /// Workers in fleet order.
    pub workers: Vec<DesiredWorker>,
    /// Jobs of the workspace, by name.
    pub jobs: BTreeMap<String, DesiredJob>,
    /// Every allocation (active, disabled, and removed ones from the prior state), sorted
    /// by job name, then fleet order (removed ones after placed ones, by host).
    pub allocations: Vec<Allocation>,
    /// Jobs in the prior state that are no longer in the workspace.
    pub removed_jobs: BTreeSet<String>,
    /// Hosts in the prior state that are no longer in workers.json.
    pub removed_workers: BTreeSet<String>,
    /// Jobs whose synced namespaces are purged after this plan, the record the apply
    /// leaves in the state: jobs that had allocations (in the prior state, or recorded as
    /// purged) and have no placed (active or disabled) allocation now — in the workspace or
    /// not. A job that has never been placed is not one of them: it keeps its namespaces.
    pub purged_jobs: BTreeSet<String>,
    /// Jobs per wave: `waves[seq]` = job names in that wave, sorted.
    pub waves: Vec<Vec<String>>,
    /// Certificates the plan checks against the state and issues when needed (SPEC §8).
    pub certs: DesiredCerts,
    /// What job templates' `scrapeConfigs` and `ruleFiles` read besides the KV.
    pub prometheus: super::catalog::Prometheus,
    /// Keys of [`Self::kv`] outside `secrets/*` whose value holds a secret (a scrape template
    /// read it, `catalog::sensitive_keys`): the plan shows them `(sensitive)`.
    pub sensitive: std::collections::BTreeSet<(String, String)>,
    /// Every projection unit with its input digest, and which ones `kv` holds
    /// (`model::desired_with`; all of them from `model::desired`).
    pub units: crate::kv::inputs::Units,
}

/// The certificates of the desired state: what each allocation must hold. Their PEM is not
/// part of [`Desired::kv`] (it is random, made by `apply`); the plan decides per certificate
/// whether the stored one is still good (`crate::certs::inspect::reissue_reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredCerts {
    /// `secrets/ca.crt`, when this machine has the bucket CA. Without it the plan never
    /// tombstones or changes the `maand/worker` `certs/ca.crt` it finds in the state (the key
    /// material lives on the machine that made the bucket) and checks certificates against
    /// that one (`crate::plan::certs`).
    pub ca_pem: Option<String>,
    /// The bucket has neither a state nor a CA: `apply` makes the CA with the state, so the
    /// plan shows `certs/ca.crt` as `(known after apply)` (set by the CLI, which knows).
    pub ca_pending: bool,
    /// `kvform.hcl` `certs_renewal_days`.
    pub renewal_days: u32,
    /// Sorted by namespace, then certificate name.
    pub certs: Vec<DesiredCert>,
    /// `(namespace, certs/<name>.key)` of stored keys that do not unseal, parse or match
    /// their certificate: re-issued (SPEC §8). Not projected (the model holds no secrets):
    /// the shell fills it from the state before the plan (`cli::pipeline`).
    pub unreadable_keys: std::collections::BTreeSet<(String, String)>,
}

/// One declared certificate of one non-removed allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCert {
    pub job: String,
    pub host: String,
    /// `maand/job/<job>/worker/<host>`.
    pub namespace: String,
    /// `one = true`: one certificate for all of the job's allocations (same PEM everywhere).
    pub one: bool,
    pub request: crate::certs::IssueRequest,
}

impl DesiredCert {
    pub fn crt_key(&self) -> String {
        format!("certs/{}.crt", self.request.name)
    }
    pub fn key_key(&self) -> String {
        format!("certs/{}.key", self.request.name)
    }
    pub fn spec_key(&self) -> String {
        format!("certs/{}.spec", self.request.name)
    }
}
