//! The key-value vocabulary shared by every layer: namespaces and what kind of thing they
//! are ([`NamespaceKind`]), who owns them ([`Ownership`], one table), the latest row of a
//! key as the state holds it ([`Entry`]) and a whole-state [`Snapshot`].
//!
//! Namespaces are plain `/`-separated strings in the seed's layout (`maand/job/api`,
//! `vars/bucket/job/api`, `secrets/job/api`, …) so hooks and templates written for that
//! layout keep working.

pub mod current;
pub mod rules;
pub mod types;
pub mod value;

pub use current::{Current, CurrentEntry, LeanEntry, LeanSnapshot, LeanValue};
pub use types::{KeyMeta, KvType, Typed};
pub use value::Value;

use std::collections::BTreeMap;
use uuid::Uuid;

/// What a namespace is, parsed from its path. Matching is by whole path segment, so
/// `maand/job/api2` is never mistaken for `maand/job/api`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceKind {
    /// `maand/bucket`
    Bucket,
    /// `maand/worker`
    Workers,
    /// `maand/worker/<host>`
    Worker(String),
    /// `maand/worker/<host>/tags`
    WorkerTags(String),
    /// `maand/job/<job>`
    Job(String),
    /// `maand/job/<job>/worker/<host>`
    Allocation { job: String, host: String },
    /// `vars/bucket`
    BucketVars,
    /// `vars/bucket/job/<job>`
    BucketJobVars(String),
    /// `vars/job/<job>`
    JobVars(String),
    /// `secrets/job/<job>`
    JobSecrets(String),
}

/// How the plan treats a namespace (SPEC §4 "Ownership").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ownership {
    /// Desired keys are written; live keys no longer desired are tombstoned.
    Synced,
    /// Workspace keys are written; other keys (hook/operator writes) are kept.
    Merged,
    /// Never written by the plan; only hooks and operators write here.
    HookOnly,
}

/// Who may write a namespace from outside the workspace: hooks and `kvform kv set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalWrites {
    /// Owned by the workspace: change the workspace and run `kvform apply`.
    Refused,
    /// Plain values (`vars/job/<job>`).
    Plain,
    /// Encrypted values (`secrets/job/<job>`).
    Encrypted,
}

/// One row of the ownership table.
pub struct NamespaceRule {
    /// Path pattern; `<job>` and `<host>` stand for one path segment each.
    pub pattern: &'static str,
    pub ownership: Ownership,
    pub external_writes: ExternalWrites,
}

/// The ownership table (SPEC §4): one row per namespace kind, data rather than code.
pub const NAMESPACE_RULES: &[NamespaceRule] = &[
    NamespaceRule { pattern: "maand/bucket", ownership: Ownership::Synced, external_writes: ExternalWrites::Refused },
    NamespaceRule { pattern: "maand/worker", ownership: Ownership::Synced, external_writes: ExternalWrites::Refused },
    NamespaceRule {
        pattern: "maand/worker/<host>",
        ownership: Ownership::Synced,
        external_writes: ExternalWrites::Refused,
    },
    NamespaceRule {
        pattern: "maand/worker/<host>/tags",
        ownership: Ownership::Synced,
        external_writes: ExternalWrites::Refused,
    },
    NamespaceRule {
        pattern: "maand/job/<job>",
        ownership: Ownership::Synced,
        external_writes: ExternalWrites::Refused,
    },
    NamespaceRule {
        pattern: "maand/job/<job>/worker/<host>",
        ownership: Ownership::Synced,
        external_writes: ExternalWrites::Refused,
    },
    NamespaceRule { pattern: "vars/bucket", ownership: Ownership::Synced, external_writes: ExternalWrites::Refused },
    NamespaceRule {
        pattern: "vars/bucket/job/<job>",
        ownership: Ownership::Synced,
        external_writes: ExternalWrites::Refused,
    },
    NamespaceRule { pattern: "vars/job/<job>", ownership: Ownership::Merged, external_writes: ExternalWrites::Plain },
    NamespaceRule {
        pattern: "secrets/job/<job>",
        ownership: Ownership::HookOnly,
        external_writes: ExternalWrites::Encrypted,
    },
];

impl NamespaceKind {
    /// Parse a namespace path; `None` for anything outside the layout.
    pub fn parse(ns: &str) -> Option<NamespaceKind> {
        let seg: Vec<&str> = ns.split('/').collect();
        if seg.iter().any(|s| s.is_empty()) {
            return None;
        }
        let s = |i: usize| seg[i].to_string();
        Some(match seg.as_slice() {
            ["maand", "bucket"] => NamespaceKind::Bucket,
            ["maand", "worker"] => NamespaceKind::Workers,
            ["maand", "worker", _] => NamespaceKind::Worker(s(2)),
            ["maand", "worker", _, "tags"] => NamespaceKind::WorkerTags(s(2)),
            ["maand", "job", _] => NamespaceKind::Job(s(2)),
            ["maand", "job", _, "worker", _] => NamespaceKind::Allocation { job: s(2), host: s(4) },
            ["vars", "bucket"] => NamespaceKind::BucketVars,
            ["vars", "bucket", "job", _] => NamespaceKind::BucketJobVars(s(3)),
            ["vars", "job", _] => NamespaceKind::JobVars(s(2)),
            ["secrets", "job", _] => NamespaceKind::JobSecrets(s(2)),
            _ => return None,
        })
    }

    /// The namespace path of this kind.
    pub fn path(&self) -> String {
        match self {
            NamespaceKind::Bucket => "maand/bucket".into(),
            NamespaceKind::Workers => "maand/worker".into(),
            NamespaceKind::Worker(h) => format!("maand/worker/{h}"),
            NamespaceKind::WorkerTags(h) => format!("maand/worker/{h}/tags"),
            NamespaceKind::Job(j) => format!("maand/job/{j}"),
            NamespaceKind::Allocation { job, host } => format!("maand/job/{job}/worker/{host}"),
            NamespaceKind::BucketVars => "vars/bucket".into(),
            NamespaceKind::BucketJobVars(j) => format!("vars/bucket/job/{j}"),
            NamespaceKind::JobVars(j) => format!("vars/job/{j}"),
            NamespaceKind::JobSecrets(j) => format!("secrets/job/{j}"),
        }
    }

    /// The row of [`NAMESPACE_RULES`] this namespace falls under.
    pub fn rule(&self) -> &'static NamespaceRule {
        let pattern = match self {
            NamespaceKind::Bucket => "maand/bucket",
            NamespaceKind::Workers => "maand/worker",
            NamespaceKind::Worker(_) => "maand/worker/<host>",
            NamespaceKind::WorkerTags(_) => "maand/worker/<host>/tags",
            NamespaceKind::Job(_) => "maand/job/<job>",
            NamespaceKind::Allocation { .. } => "maand/job/<job>/worker/<host>",
            NamespaceKind::BucketVars => "vars/bucket",
            NamespaceKind::BucketJobVars(_) => "vars/bucket/job/<job>",
            NamespaceKind::JobVars(_) => "vars/job/<job>",
            NamespaceKind::JobSecrets(_) => "secrets/job/<job>",
        };
        NAMESPACE_RULES.iter().find(|r| r.pattern == pattern).expect("every namespace kind has a rule")
    }

    pub fn ownership(&self) -> Ownership {
        self.rule().ownership
    }

    /// The job this namespace belongs to, if any.
    pub fn job(&self) -> Option<&str> {
        match self {
            NamespaceKind::Job(j)
            | NamespaceKind::BucketJobVars(j)
            | NamespaceKind::JobVars(j)
            | NamespaceKind::JobSecrets(j) => Some(j),
            NamespaceKind::Allocation { job, .. } => Some(job),
            _ => None,
        }
    }

    /// The worker host this namespace belongs to, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            NamespaceKind::Worker(h) | NamespaceKind::WorkerTags(h) => Some(h),
            NamespaceKind::Allocation { host, .. } => Some(host),
            _ => None,
        }
    }

    /// Bucket-level namespaces are applied before any job (SPEC §5 step 1).
    pub fn is_bucket_level(&self) -> bool {
        matches!(
            self,
            NamespaceKind::Bucket
                | NamespaceKind::Workers
                | NamespaceKind::Worker(_)
                | NamespaceKind::WorkerTags(_)
                | NamespaceKind::BucketVars
        )
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, NamespaceKind::JobSecrets(_))
    }
}

/// Whether a namespace path holds encrypted values.
pub fn is_secret_namespace(ns: &str) -> bool {
    ns.starts_with("secrets/")
}

/// The latest row of one key as the state holds it. For `secrets/*` namespaces `value`
/// is the sealed ciphertext (never plaintext); see `crate::secrets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub version: u64,
    pub deleted: bool,
    /// Seconds; 0 = never expires.
    pub ttl: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// The state serial of the change set that wrote this row.
    pub serial: u64,
    /// `apply`, `hook:<job>/<command>@<host>`, `cli:<user>@<host>`.
    pub writer: String,
}

impl Entry {
    pub fn is_live(&self) -> bool {
        !self.deleted
    }
    /// `Some(expiry)` when the key has a ttl.
    pub fn expires_at(&self) -> Option<i64> {
        (self.ttl > 0).then(|| self.created_at.saturating_add(self.ttl as i64))
    }
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|t| t <= now)
    }
}

/// namespace -> key -> value.
pub type KvMap = BTreeMap<String, BTreeMap<String, Value>>;

/// The latest row of every key in the state (tombstones included), read in one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub bucket_id: Uuid,
    pub lineage: Uuid,
    pub serial: u64,
    /// namespace -> key -> latest row.
    pub entries: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Snapshot {
    /// Live (not tombstoned) entries of a namespace.
    pub fn live(&self, ns: &str) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.get(ns).into_iter().flat_map(|m| m.iter()).filter(|(_, e)| e.is_live())
    }
    /// Namespaces that have at least one live key.
    pub fn live_namespaces(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().filter(|(_, m)| m.values().any(Entry::is_live)).map(|(ns, _)| ns)
    }
    pub fn get(&self, ns: &str, key: &str) -> Option<&Entry> {
        self.entries.get(ns)?.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_matches_whole_segments() {
        for ns in [
            "maand/bucket",
            "maand/worker",
            "maand/worker/10.0.0.1",
            "maand/worker/10.0.0.1/tags",
            "maand/job/api",
            "maand/job/api/worker/10.0.0.1",
            "vars/bucket",
            "vars/bucket/job/api",
            "vars/job/api",
            "secrets/job/api",
        ] {
            assert_eq!(NamespaceKind::parse(ns).unwrap().path(), ns);
        }
        assert_eq!(NamespaceKind::parse("maand/job/api2"), Some(NamespaceKind::Job("api2".into())));
        assert_eq!(NamespaceKind::parse("maand/job//worker/x"), None);
        assert_eq!(NamespaceKind::parse("vars/jobs/api"), None);
        assert_eq!(NamespaceKind::parse("secrets/job/api/x"), None);
    }

    #[test]
    fn ownership_follows_the_table() {
        assert_eq!(NamespaceKind::parse("vars/job/a").unwrap().ownership(), Ownership::Merged);
        assert_eq!(NamespaceKind::parse("secrets/job/a").unwrap().ownership(), Ownership::HookOnly);
        assert_eq!(NamespaceKind::parse("vars/bucket/job/a").unwrap().ownership(), Ownership::Synced);
        assert_eq!(
            NamespaceKind::parse("maand/job/a/worker/h").unwrap().rule().external_writes,
            ExternalWrites::Refused
        );
    }
}
