//! What the plan reads of the current state, as two traits ([`Current`], [`CurrentEntry`])
//! with two implementations:
//!
//! - [`super::Snapshot`]: every latest row with its value (cat, hooks, tests).
//! - [`LeanSnapshot`]: what planning needs and nothing more. Why: a large fleet's state is
//!   mostly O(workers²) peer lists (1.7 GB for 10,000 workers), and a plan only has to know
//!   whether each desired value is the stored one. The state reads the rows without their
//!   values (`StateStore::lean_snapshot`), the model builds the desired state from that,
//!   then one more scan compares every stored value with the desired one in place
//!   (`StateStore::compare_values`) and keeps a copy only of the values that differ — the
//!   `before` of the plan's updates and tombstones. A no-op plan copies no value at all.

use super::types::KvType;
use super::value::Value;
use super::{Entry, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The latest row of one key, as much of it as the plan needs.
pub trait CurrentEntry {
    fn is_live(&self) -> bool;
    /// Seconds; 0 = never expires.
    fn ttl(&self) -> u64;
    /// Unix seconds.
    fn created_at(&self) -> i64;
    /// Whether the stored value (trimmed) equals `want` (trimmed).
    fn same_value(&self, want: &Value) -> bool;
    /// The stored value when it is known here (always for [`Entry`]; for [`LeanEntry`] only
    /// the values that differ from the desired state, and never in `secrets/*`).
    fn value(&self) -> Option<&str>;

    /// `Some(expiry)` when the key has a ttl.
    fn expires_at(&self) -> Option<i64> {
        (self.ttl() > 0).then(|| self.created_at().saturating_add(self.ttl() as i64))
    }
    fn is_expired(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|t| t <= now)
    }
}

/// The current state the plan is computed against.
pub trait Current {
    type Entry: CurrentEntry;
    fn bucket_id(&self) -> Uuid;
    fn lineage(&self) -> Uuid;
    fn serial(&self) -> u64;
    /// namespace -> key -> latest row (tombstones included).
    fn entries(&self) -> &BTreeMap<String, BTreeMap<String, Self::Entry>>;
    /// Jobs whose allocations were all removed and that have not been placed since: their
    /// synced namespaces stay purged (a record of the state, not of key history, so gc
    /// cannot bring them back).
    fn purged_jobs(&self) -> &BTreeSet<String>;
    /// The stored type of a live key (`string` unless the state says otherwise).
    fn kv_type(&self, ns: &str, key: &str) -> KvType;

    /// Namespaces that have at least one live key.
    fn live_namespaces(&self) -> impl Iterator<Item = &String> {
        self.entries().iter().filter(|(_, m)| m.values().any(CurrentEntry::is_live)).map(|(ns, _)| ns)
    }
    /// Whether the plan covers this namespace. A partial view (an incremental plan, see
    /// `crate::state::fingerprint`) covers only the namespaces it read; the others are
    /// known unchanged and produce no changes.
    fn covers(&self, _ns: &str) -> bool {
        true
    }
    /// Live entries of a namespace.
    fn live(&self, ns: &str) -> impl Iterator<Item = (&String, &Self::Entry)> {
        self.entries().get(ns).into_iter().flat_map(|m| m.iter()).filter(|(_, e)| e.is_live())
    }
}

impl CurrentEntry for Entry {
    fn is_live(&self) -> bool {
        !self.deleted
    }
    fn ttl(&self) -> u64 {
        self.ttl
    }
    fn created_at(&self) -> i64 {
        self.created_at
    }
    fn same_value(&self, want: &Value) -> bool {
        want.eq_trimmed(&self.value)
    }
    fn value(&self) -> Option<&str> {
        Some(self.value.trim())
    }
}

impl Current for Snapshot {
    type Entry = Entry;
    fn bucket_id(&self) -> Uuid {
        self.bucket_id
    }
    fn lineage(&self) -> Uuid {
        self.lineage
    }
    fn serial(&self) -> u64 {
        self.serial
    }
    fn entries(&self) -> &BTreeMap<String, BTreeMap<String, Entry>> {
        &self.entries
    }
    fn purged_jobs(&self) -> &BTreeSet<String> {
        &self.purged_jobs
    }
    fn kv_type(&self, ns: &str, key: &str) -> KvType {
        super::types::type_of(&self.types, ns, key)
    }
}

/// What is known of a [`LeanEntry`]'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeanValue {
    /// Not read (tombstones, `secrets/*`, or values not compared yet).
    NotRead,
    /// Equal (trimmed) to the desired value of the key.
    SameAsDesired,
    /// The stored value, trimmed: it differs from the desired value or the key is not desired.
    Stored(String),
}

/// The latest row of one key without its value (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanEntry {
    pub deleted: bool,
    pub ttl: u64,
    pub created_at: i64,
    pub value: LeanValue,
}

impl CurrentEntry for LeanEntry {
    fn is_live(&self) -> bool {
        !self.deleted
    }
    fn ttl(&self) -> u64 {
        self.ttl
    }
    fn created_at(&self) -> i64 {
        self.created_at
    }
    fn same_value(&self, want: &Value) -> bool {
        match &self.value {
            LeanValue::SameAsDesired => true,
            LeanValue::Stored(v) => want.eq_trimmed(v),
            LeanValue::NotRead => false,
        }
    }
    fn value(&self) -> Option<&str> {
        match &self.value {
            LeanValue::Stored(v) => Some(v),
            _ => None,
        }
    }
}

/// The latest row of every key without values, plus the values that differ from the desired
/// state once compared (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeanSnapshot {
    pub bucket_id: Uuid,
    pub lineage: Uuid,
    pub serial: u64,
    /// namespace -> key -> latest row.
    pub entries: BTreeMap<String, BTreeMap<String, LeanEntry>>,
    /// Jobs the state records as purged (see [`Current::purged_jobs`]).
    pub purged_jobs: BTreeSet<String>,
    /// Live namespaces whose rows were not read (unchanged since the last apply).
    pub unread_live: BTreeSet<String>,
    /// `Some`: the namespaces this view covers (read, or known to have no rows); the plan
    /// leaves every other namespace alone. `None`: everything was read.
    pub covered: Option<BTreeSet<String>>,
    /// The non-`string` types of live `vars/*` keys (`state::listing::read_var_types`).
    pub types: super::KvTypes,
}

impl Current for LeanSnapshot {
    fn live_namespaces(&self) -> impl Iterator<Item = &String> {
        self.entries
            .iter()
            .filter(|(_, m)| m.values().any(CurrentEntry::is_live))
            .map(|(ns, _)| ns)
            .chain(self.unread_live.iter())
    }
    fn covers(&self, ns: &str) -> bool {
        self.covered.as_ref().is_none_or(|c| c.contains(ns))
    }
    type Entry = LeanEntry;
    fn bucket_id(&self) -> Uuid {
        self.bucket_id
    }
    fn lineage(&self) -> Uuid {
        self.lineage
    }
    fn serial(&self) -> u64 {
        self.serial
    }
    fn entries(&self) -> &BTreeMap<String, BTreeMap<String, LeanEntry>> {
        &self.entries
    }
    fn purged_jobs(&self) -> &BTreeSet<String> {
        &self.purged_jobs
    }
    fn kv_type(&self, ns: &str, key: &str) -> KvType {
        super::types::type_of(&self.types, ns, key)
    }
}
