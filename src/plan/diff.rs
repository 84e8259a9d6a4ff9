//! `diff(desired, current) -> Plan`: pure, deterministic (no clock, no I/O; `now` comes in).
//!
//! Per namespace, the ownership table ([`crate::kv::NAMESPACE_RULES`]) decides:
//! - **synced**: desired keys are created/updated; live keys no longer desired are tombstoned
//!   with a reason naming the file they came from (the rule's `stale_reason`).
//! - **merged** (`vars/job/<job>`): desired keys are written; other live keys are kept.
//! - **hook-only** (`secrets/job/<job>`): never written.
//!
//! Purges tombstone every live key of a namespace that is not desired, as one group
//! (`Change::purge`), with one reason ([`purge_reasons`], first match wins):
//! 1. a job removed from the workspace: all its namespaces, `vars/job` and `secrets/job` too;
//! 2. a worker removed from workers.json: `maand/worker/<host>`, its tags and every
//!    allocation namespace on it;
//! 3. an allocation removed (`AllocState::Removed`): its allocation namespace;
//! 4. `--purge-secrets-kv` for a job still in the workspace with no active allocation:
//!    `secrets/job/<job>` entirely, and the keys of `vars/job/<job>` that vars.hcl does not
//!    declare. The vars.hcl keys stay (they are desired), so planning again converges to
//!    "No changes." instead of tombstoning and re-creating them on alternate plans;
//! 5. a job of the workspace in `Desired::purged_jobs`: `maand/job/<job>` and
//!    `vars/bucket/job/<job>`.
//!
//! A job whose allocations are all removed gets its allocation namespaces purged (rule 3)
//! and, while it stays placed nowhere (`Desired::purged_jobs`), its job-level synced
//! namespaces too (rule 5, "job has no allocations left"). A job never placed keeps its job
//! namespaces like any other job of the workspace.
//!
//! TTL: a live key with `created_at + ttl <= now` is tombstoned (`expired at <RFC 3339>`)
//! unless this plan writes it. A desired key whose live row has a ttl is rewritten (an
//! update, even with the same value) because workspace keys never expire; that also means
//! it is "written by this plan" and not tombstoned.
//!
//! Certificates (SPEC §8) are decided by [`super::certs`]: their `.crt`/`.key` values are
//! made by apply, so the plan writes them as `(known after apply)` with the reason, and
//! never tombstones the ones still declared. `certs/*` keys no longer declared are
//! tombstoned like any stale key.
//!
//! The bucket CA (SPEC §8): without `secrets/ca.crt` on this machine (a CI runner), the
//! `maand/worker` `certs/ca.crt` found in the state is held (never tombstoned or changed;
//! the plan's notes say so). A bucket with neither state nor CA gets it `(known after
//! apply)`: `apply` makes the CA with the state.
//!
//! Types (SPEC §9): a desired key carries the type of its HCL value (`Desired::kv_types`;
//! `string` for every key not typed there). A live key whose stored type differs is an
//! update even when its value is the same, with the reason `type: <stored> → <desired>`
//! (one line in the text plan, like a ttl reset): so a state written before keys were typed
//! converges with one plan of such updates, shown, never silently (the first plan after an
//! upgrade reads every namespace: fingerprints recorded by another kvform version are not
//! trusted, and the fingerprint of a namespace includes its keys' types).
//!
//! Values are compared trimmed; an identical value with ttl 0 is not a change. Reviving a
//! tombstoned key is a create (the store continues its version numbers). Namespaces outside
//! the layout (`NamespaceKind::parse` is `None`) are treated as merged: desired keys are
//! written, live keys are only touched by TTL expiry.

use super::rollout::rollout;
use super::types::{Action, Change, FORMAT_VERSION, KVFORM_VERSION, Plan, PlanMeta, PlanOptions, Summary};
use crate::clock::format_time;
use crate::kv::{CERTS_PREFIX, Current, CurrentEntry, NamespaceKind, Ownership, Value, is_secret_key};
use crate::model::types::{AllocState, Desired};
use std::collections::{BTreeMap, BTreeSet};

pub const REASON_JOB_REMOVED: &str = "job removed from workspace";
pub const REASON_WORKER_REMOVED: &str = "worker removed";
pub const REASON_ALLOCATION_REMOVED: &str = "allocation removed";
pub const REASON_PURGE_SECRETS_KV: &str = "--purge-secrets-kv: job has no active allocation";
pub const REASON_NO_ALLOCATIONS: &str = "job has no allocations left";
pub const REASON_CERT_REMOVED: &str = "certificate no longer declared in the job's manifest.json";
pub const REASON_SCRAPE_REMOVED: &str = "the job no longer has a _prometheus/scrape.yaml";
/// The key of the bucket CA certificate in `maand/worker` (SPEC §8).
pub const CA_KEY: &str = "certs/ca.crt";
const REASON_CA_MADE_BY_APPLY: &str = "the bucket CA: `apply` makes secrets/ca.crt and secrets/ca.key with the state";
/// The note of a plan made where the CA files are absent.
pub const NOTE_CA_ABSENT: &str = "secrets/ca.crt and secrets/ca.key are missing on this machine: the bucket CA certificate in the state (`maand/worker` `certs/ca.crt`) is left as it is, not tombstoned or changed (copy both files from the machine that made the bucket to manage it here)";
const REASON_REVIVED: &str = "revives a tombstoned key";
const REASON_TTL_RESET: &str = "ttl reset: workspace keys never expire";

fn stale_reason(kind: &NamespaceKind) -> &'static str {
    kind.rule().stale_reason
}

/// Compute the plan that takes `current` to `desired`. `now` (unix seconds) decides TTL
/// expiry. Pure and deterministic: changes sorted by namespace then key. `current` is a
/// full `Snapshot` or a `LeanSnapshot` whose values were compared with this `desired`.
pub fn diff<C: Current>(desired: &Desired, current: &C, opts: &PlanOptions, now: i64) -> Plan {
    let purges = purge_reasons(desired, current, opts);
    let no_values = BTreeMap::new();
    let no_entries = BTreeMap::new();
    // An incremental view covers only the namespaces that may have changed.
    let namespaces: BTreeSet<&String> =
        desired.kv.keys().chain(current.entries().keys()).filter(|ns| current.covers(ns)).collect();

    // Certificates and their keys are decided by `certs` (their values are not in
    // `desired.kv`: apply makes them); the loops below leave them alone.
    let (mut changes, cert_keys) = super::certs::changes(desired, current, now);
    let mut notes = Vec::new();
    let workers_ns = NamespaceKind::Workers.path();
    if desired.certs.ca_pem.is_none() && current.covers(&workers_ns) {
        let stored = current.entries().get(&workers_ns).and_then(|m| m.get(CA_KEY)).filter(|e| e.is_live());
        if desired.certs.ca_pending {
            changes.push(Change {
                kv_type: crate::kv::KvType::String,
                namespace: workers_ns.clone(),
                key: CA_KEY.into(),
                action: Action::Create,
                before: None,
                after: None,
                before_sensitive: false,
                after_sensitive: false,
                after_unknown: true,
                reason: Some(REASON_CA_MADE_BY_APPLY.into()),
                purge: false,
            });
        } else if stored.is_some() {
            notes.push(NOTE_CA_ABSENT.into());
        }
    }
    for ns in namespaces {
        let kind = NamespaceKind::parse(ns);
        let ownership = kind.as_ref().map_or(Ownership::Merged, NamespaceKind::ownership);
        let want = match ownership {
            Ownership::HookOnly => &no_values,
            _ => desired.kv.get(ns).unwrap_or(&no_values),
        };
        let live = current.entries().get(ns).unwrap_or(&no_entries);

        for (key, value) in want {
            // A build-written key holding a secret a scrape template read is masked too.
            let secret = is_secret_key(ns, key)
                || (!desired.sensitive.is_empty() && desired.sensitive.contains(&(ns.to_string(), key.to_string())));
            let kv_type = crate::kv::types::type_of(&desired.kv_types, ns, key);
            let change = match live.get(key) {
                Some(e) if e.is_live() => {
                    let same = e.same_value(value);
                    let stored_type = current.kv_type(ns, key);
                    if same && e.ttl() == 0 && stored_type == kv_type {
                        continue;
                    }
                    let retype = (stored_type != kv_type).then(|| format!("type: {stored_type} → {kv_type}"));
                    let reset = (same && e.ttl() != 0).then(|| REASON_TTL_RESET.to_string());
                    let reason = match (reset, retype) {
                        (Some(r), Some(t)) => Some(format!("{r}; {t}")),
                        (r, t) => r.or(t),
                    };
                    // A value equal to the desired one may not have been kept (lean snapshot).
                    let trimmed = value.trimmed();
                    let before = if same { Some(&*trimmed) } else { e.value().or(Some("")) };
                    write(ns, key, Action::Update, before, value, secret, reason)
                }
                Some(_) => write(ns, key, Action::Create, None, value, secret, Some(REASON_REVIVED.into())),
                None => write(ns, key, Action::Create, None, value, secret, None),
            };
            changes.push(Change { kv_type, ..change });
        }

        let purge = purges.get(ns.as_str());
        // Derived keys are never stored; a view of the state that shows them (as readers see
        // it) must not make the plan tombstone them.
        for (key, entry) in
            live.iter().filter(|(k, e)| e.is_live() && !want.contains_key(*k) && !crate::kv::derived::is_derived(ns, k))
        {
            if purge.is_none() && cert_keys.contains(ns, key) {
                continue;
            }
            // Without the CA files here, the CA certificate in the state is not this
            // machine's to change (SPEC §8): it is held, with a note.
            if desired.certs.ca_pem.is_none() && *ns == workers_ns && key == CA_KEY {
                continue;
            }
            let secret = is_secret_key(ns, key);
            let (reason, is_purge) = if let Some(reason) = purge {
                (reason.clone(), true)
            } else if ownership == Ownership::Synced
                && matches!(kind, Some(NamespaceKind::Allocation { .. }))
                && key.starts_with(CERTS_PREFIX)
            {
                (REASON_CERT_REMOVED.to_string(), false)
            } else if ownership == Ownership::Synced && matches!(kind, Some(NamespaceKind::Job(_))) && key == "job_name"
            {
                (REASON_SCRAPE_REMOVED.to_string(), false)
            } else if ownership == Ownership::Synced {
                (stale_reason(kind.as_ref().expect("synced namespaces parse")).to_string(), false)
            } else if let Some(at) = entry.expires_at().filter(|_| entry.is_expired(now)) {
                (format!("expired at {}", format_time(at)), false)
            } else {
                continue;
            };
            changes.push(tombstone(ns, key, entry, secret, reason, is_purge));
        }
    }

    // Writes and tombstones of one namespace were produced in two passes.
    changes.sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
    let summary = summarize(&changes);
    let rollout = rollout(desired, &changes);
    Plan {
        format_version: FORMAT_VERSION.into(),
        changes,
        rollout,
        summary,
        notes,
        meta: PlanMeta {
            lineage: current.lineage(),
            base_serial: current.serial(),
            kvform_version: KVFORM_VERSION.into(),
            options: opts.clone(),
            now,
        },
    }
}

fn write(
    ns: &str,
    key: &str,
    action: Action,
    before: Option<&str>,
    after: &Value,
    secret: bool,
    reason: Option<String>,
) -> Change {
    Change {
        namespace: ns.into(),
        key: key.into(),
        action,
        before: before.filter(|_| !secret).map(str::to_string),
        after: (!secret).then(|| after.trimmed_value()),
        kv_type: crate::kv::KvType::String,
        before_sensitive: secret && before.is_some(),
        after_sensitive: secret,
        after_unknown: false,
        reason,
        purge: false,
    }
}

fn tombstone(ns: &str, key: &str, entry: &impl CurrentEntry, secret: bool, reason: String, purge: bool) -> Change {
    Change {
        namespace: ns.into(),
        key: key.into(),
        action: Action::Tombstone,
        before: (!secret).then(|| entry.value().unwrap_or_default().to_string()),
        after: None,
        kv_type: crate::kv::KvType::String,
        before_sensitive: secret,
        after_sensitive: false,
        after_unknown: false,
        reason: Some(reason),
        purge,
    }
}

/// Terraform-style counts.
pub fn summarize(changes: &[Change]) -> Summary {
    let mut s = Summary::default();
    for c in changes {
        match c.action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Tombstone => s.destroy += 1,
        }
    }
    s
}

/// Namespace -> purge reason for every live namespace the plan purges (see the module docs
/// for the rules and their precedence).
pub fn purge_reasons<C: Current>(desired: &Desired, current: &C, opts: &PlanOptions) -> BTreeMap<String, String> {
    let removed_allocations: BTreeSet<(&str, &str)> = desired
        .allocations
        .iter()
        .filter(|a| a.state == AllocState::Removed)
        .map(|a| (a.job.as_str(), a.host.as_str()))
        .collect();
    let purge_kv_jobs: BTreeSet<&str> = if opts.purge_secrets_kv {
        desired.jobs.values().filter(|j| j.active_hosts.is_empty()).map(|j| j.name.as_str()).collect()
    } else {
        BTreeSet::new()
    };

    let mut out = BTreeMap::new();
    for ns in Current::live_namespaces(current) {
        let Some(kind) = NamespaceKind::parse(ns) else { continue };
        let job = kind.job();
        let reason = if job.is_some_and(|j| desired.removed_jobs.contains(j)) {
            REASON_JOB_REMOVED
        } else if kind.host().is_some_and(|h| desired.removed_workers.contains(h)) {
            REASON_WORKER_REMOVED
        } else if let NamespaceKind::Allocation { job, host } = &kind
            && removed_allocations.contains(&(job.as_str(), host.as_str()))
        {
            REASON_ALLOCATION_REMOVED
        } else if matches!(kind, NamespaceKind::JobVars(_) | NamespaceKind::JobSecrets(_))
            && job.is_some_and(|j| purge_kv_jobs.contains(j))
        {
            REASON_PURGE_SECRETS_KV
        } else if matches!(kind, NamespaceKind::Job(_) | NamespaceKind::BucketJobVars(_))
            && job.is_some_and(|j| desired.jobs.contains_key(j) && desired.purged_jobs.contains(j))
        {
            // The job is still in the workspace but its allocations are all removed (SPEC §4):
            // its synced job namespaces go as a whole. A job never placed keeps them.
            REASON_NO_ALLOCATIONS
        } else {
            continue;
        };
        out.insert(ns.clone(), reason.to_string());
    }
    out
}
