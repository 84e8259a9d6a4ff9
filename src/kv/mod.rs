//! The key-value vocabulary shared by every layer: namespaces and what kind of thing they
//! are ([`NamespaceKind`]), who owns them ([`Ownership`], one table), the latest row of a
//! key as the state holds it ([`Entry`]) and a whole-state [`Snapshot`].
//!
//! Namespaces are plain `/`-separated strings in the seed's layout (`maand/job/api`,
//! `vars/bucket/job/api`, `secrets/job/api`, …) so hooks and templates written for that
//! layout keep working.

pub mod current;
pub mod derived;
pub mod inputs;
pub mod keys;
pub mod rules;
pub mod types;
pub mod validate;
pub mod value;

pub use current::{Current, CurrentEntry, LeanEntry, LeanSnapshot, LeanValue};
pub use types::{KeyMeta, KvType, KvTypes, Typed};
pub use value::Value;

use std::collections::{BTreeMap, BTreeSet};
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
    /// `maand/prometheus` (the scrape catalog, SPEC §8; readable by every hook)
    Prometheus,
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
    /// Path pattern; `<job>` and `<host>` stand for one path segment each. The only place a
    /// namespace's layout is spelled: parsing, printing and `rule()` all go through it.
    pub pattern: &'static str,
    pub ownership: Ownership,
    pub external_writes: ExternalWrites,
    /// Why the plan tombstones a live key of this namespace the workspace no longer
    /// produces (synced namespaces; shown as the change's reason).
    pub stale_reason: &'static str,
}

const fn rule(
    pattern: &'static str,
    ownership: Ownership,
    external_writes: ExternalWrites,
    stale_reason: &'static str,
) -> NamespaceRule {
    NamespaceRule { pattern, ownership, external_writes, stale_reason }
}

use ExternalWrites::{Encrypted, Plain, Refused};
use Ownership::{HookOnly, Merged, Synced};

/// Segments of the longest pattern of [`NAMESPACE_RULES`] (`maand/job/<job>/worker/<host>`).
const MAX_SEGMENTS: usize = 5;

/// The ownership table (SPEC §4): one row per namespace kind, in [`NamespaceKind`]'s
/// variant order, data rather than code.
pub const NAMESPACE_RULES: &[NamespaceRule] = &[
    rule("maand/bucket", Synced, Refused, "no longer derived from the workspace"),
    rule("maand/worker", Synced, Refused, "no longer derived from workers.json"),
    rule("maand/worker/<host>", Synced, Refused, "no longer derived from workers.json"),
    rule("maand/worker/<host>/tags", Synced, Refused, "tag no longer in workers.json"),
    rule("maand/job/<job>", Synced, Refused, "no longer derived from the job's manifest.json"),
    rule("maand/job/<job>/worker/<host>", Synced, Refused, "no longer derived from the workspace"),
    rule("vars/bucket", Synced, Refused, "no longer in bucket.conf"),
    rule("vars/bucket/job/<job>", Synced, Refused, "no longer in bucket.jobs.conf"),
    rule("vars/job/<job>", Merged, Plain, "no longer in vars.hcl"),
    rule("secrets/job/<job>", HookOnly, Encrypted, "no longer desired"),
    rule("maand/prometheus", Synced, Refused, "no longer derived from the jobs' _prometheus/scrape.yaml"),
];

impl NamespaceKind {
    /// Parse a namespace path against the patterns of [`NAMESPACE_RULES`]; `None` for
    /// anything outside the layout. Segments match whole, so `maand/job/api2` is never
    /// `maand/job/api`.
    pub fn parse(ns: &str) -> Option<NamespaceKind> {
        let (index, job, host) = Self::match_rule(ns)?;
        Some(Self::of_rule(index, job.map(str::to_string), host.map(str::to_string)))
    }

    /// The row of [`NAMESPACE_RULES`] `ns` matches, with the job and host segments it
    /// captures, borrowed. Allocates nothing: plans parse every live namespace several
    /// times (prior, purges, units), 100,000s on a large fleet.
    pub(crate) fn match_rule(ns: &str) -> Option<(usize, Option<&str>, Option<&str>)> {
        // Split once: the longest pattern has MAX_SEGMENTS segments, so a longer path
        // matches no rule.
        let mut segments = [""; MAX_SEGMENTS];
        let mut n = 0;
        for s in ns.split('/') {
            if s.is_empty() || n == MAX_SEGMENTS {
                return None;
            }
            segments[n] = s;
            n += 1;
        }
        NAMESPACE_RULES.iter().enumerate().find_map(|(index, rule)| {
            let (mut job, mut host) = (None, None);
            let mut pattern = rule.pattern.split('/');
            for &s in &segments[..n] {
                match pattern.next()? {
                    "<job>" => job = Some(s),
                    "<host>" => host = Some(s),
                    literal if literal == s => {}
                    _ => return None,
                }
            }
            if pattern.next().is_some() {
                return None;
            }
            Some((index, job, host))
        })
    }

    /// The kind of row `index` of [`NAMESPACE_RULES`] with the captured segments.
    fn of_rule(index: usize, job: Option<String>, host: Option<String>) -> NamespaceKind {
        let (j, h) = (|| job.clone().unwrap_or_default(), || host.clone().unwrap_or_default());
        match index {
            0 => NamespaceKind::Bucket,
            1 => NamespaceKind::Workers,
            2 => NamespaceKind::Worker(h()),
            3 => NamespaceKind::WorkerTags(h()),
            4 => NamespaceKind::Job(j()),
            5 => NamespaceKind::Allocation { job: j(), host: h() },
            6 => NamespaceKind::BucketVars,
            7 => NamespaceKind::BucketJobVars(j()),
            8 => NamespaceKind::JobVars(j()),
            9 => NamespaceKind::JobSecrets(j()),
            10 => NamespaceKind::Prometheus,
            _ => unreachable!("NAMESPACE_RULES has {} rows", NAMESPACE_RULES.len()),
        }
    }

    /// This kind's row in [`NAMESPACE_RULES`] (the variant order).
    fn rule_index(&self) -> usize {
        match self {
            NamespaceKind::Bucket => 0,
            NamespaceKind::Workers => 1,
            NamespaceKind::Worker(_) => 2,
            NamespaceKind::WorkerTags(_) => 3,
            NamespaceKind::Job(_) => 4,
            NamespaceKind::Allocation { .. } => 5,
            NamespaceKind::BucketVars => 6,
            NamespaceKind::BucketJobVars(_) => 7,
            NamespaceKind::JobVars(_) => 8,
            NamespaceKind::JobSecrets(_) => 9,
            NamespaceKind::Prometheus => 10,
        }
    }

    /// The namespace path of this kind: its rule's pattern with the job and host filled in.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.rule().pattern.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(match segment {
                "<job>" => self.job().unwrap_or_default(),
                "<host>" => self.host().unwrap_or_default(),
                literal => literal,
            });
        }
        out
    }

    /// The row of [`NAMESPACE_RULES`] this namespace falls under.
    pub fn rule(&self) -> &'static NamespaceRule {
        &NAMESPACE_RULES[self.rule_index()]
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
                | NamespaceKind::Prometheus
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

/// Whether one key holds an encrypted value: every key of `secrets/*`, and the private keys
/// of certificates (`certs/<name>.key` in `maand/job/<job>/worker/<host>`, SPEC §8). Every
/// place that seals, opens, hides or reveals a value asks this, not the namespace alone.
pub fn is_secret_key(ns: &str, key: &str) -> bool {
    is_secret_namespace(ns) || is_cert_private_key(ns, key)
}

/// `certs/<name>.key` in an allocation namespace: a certificate's private key.
pub fn is_cert_private_key(ns: &str, key: &str) -> bool {
    key.starts_with(CERTS_PREFIX)
        && key.ends_with(".key")
        && matches!(NamespaceKind::parse(ns), Some(NamespaceKind::Allocation { .. }))
}

/// Keys of certificate material in allocation namespaces (and `maand/worker` `certs/ca.crt`).
pub const CERTS_PREFIX: &str = "certs/";

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
    /// `apply`, or the text of the [`crate::ops::Actor`] that wrote it: `<user>@<host>` (CLI),
    /// `token:<name>` (`kvform serve`), `<job>:<allocation>/<event>/<command>` (a hook).
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
    /// Jobs the state records as purged (placed nowhere since their allocations went).
    pub purged_jobs: BTreeSet<String>,
    /// The non-`string` types of live `vars/*` keys (what plans compare types with).
    pub types: KvTypes,
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
    fn max_segments_is_the_longest_pattern() {
        let longest = NAMESPACE_RULES.iter().map(|r| r.pattern.split('/').count()).max();
        assert_eq!(longest, Some(MAX_SEGMENTS));
        assert_eq!(NamespaceKind::parse("maand/job/a/worker/h/x"), None);
    }

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
            "maand/prometheus",
        ] {
            assert_eq!(NamespaceKind::parse(ns).unwrap().path(), ns);
        }
        assert_eq!(NamespaceKind::parse("maand/job/api2"), Some(NamespaceKind::Job("api2".into())));
        assert_eq!(NamespaceKind::parse("maand/job//worker/x"), None);
        assert_eq!(NamespaceKind::parse("vars/jobs/api"), None);
        assert_eq!(NamespaceKind::parse("secrets/job/api/x"), None);
    }

    #[test]
    fn every_rule_parses_to_its_own_kind() {
        for (i, rule) in NAMESPACE_RULES.iter().enumerate() {
            let ns = rule.pattern.replace("<job>", "j").replace("<host>", "h");
            let kind = NamespaceKind::parse(&ns).unwrap_or_else(|| panic!("{ns}"));
            assert_eq!(kind.rule_index(), i, "{ns}");
            assert_eq!(kind.path(), ns);
        }
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
        assert_eq!(NamespaceKind::parse("maand/prometheus").unwrap().ownership(), Ownership::Synced);
    }

    #[test]
    fn certificate_private_keys_are_secret() {
        assert!(is_secret_key("maand/job/api/worker/10.0.0.1", "certs/server.key"));
        assert!(!is_secret_key("maand/job/api/worker/10.0.0.1", "certs/server.crt"));
        assert!(!is_secret_key("maand/job/api", "certs/server.key"));
        assert!(!is_secret_key("maand/worker", "certs/ca.crt"));
        assert!(is_secret_key("secrets/job/api", "anything"));
    }
}
