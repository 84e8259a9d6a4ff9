//! The key operations every door calls (SPEC §4, §7, §9): the CLI (`kv set/delete/restore`,
//! `kv get --version`), `kvform serve`'s REST API and web UI, and the hook API. A door parses
//! its request, calls one of these inside its write transaction, and renders the answer; the
//! rules — validation, compare-and-set, what an edit keeps, restoring a version — are here
//! once, so the doors cannot drift apart.
//!
//! - **Compare-and-set**: a write may name the version it expects (`cas`); `0` means "create
//!   only" (no live version). A mismatch is [`OpError::Conflict`] naming the current version,
//!   checked under the write lock, so of two writers that read version 3 one wins.
//! - **Patch**: a [`Change`] changes only what it names. An omitted value keeps the value, an
//!   omitted type or description keeps them, an omitted ttl keeps the key's expiry (the new
//!   version gets the time that was left), so an edit of a description never restarts a
//!   countdown or replaces a secret nobody showed.
//! - **Restore**: a version's value, type and description written as a new version (a
//!   tombstoned key is revived the same way); history is never rewritten.
//! - **Who**: each operation takes the caller's [`Actor`], whose text is the new version's
//!   writer and the door's audit record ([`Actor::record`]) alike.

mod actor;

pub use actor::Actor;

pub mod search;

use crate::kv::validate::{self, WriteRuleError};
use crate::kv::{KvType, Typed, is_secret_key};
use crate::state::Write;
use crate::state::{StateError, VersionRow, WriteOutcome, WriteTxn};
use zeroize::Zeroizing;

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The write breaks a rule of the one write validation (a 400 on every door).
    #[error("{}", .0.message)]
    Rule(WriteRuleError),
    /// Compare-and-set: the key is not at the version the caller expected (412).
    #[error("{ns} {key} is at version {current}, not {expected}{}\n  help: read it again and retry with --cas {current} (If-Match: \"{current}\")", if *.current == 0 { " (it has no live version)" } else if *.expected == 0 { " (version 0 means create only, and the key exists)" } else { "" })]
    Conflict { ns: String, key: String, expected: u64, current: u64 },
    /// A compare-and-set delete of a key with no live version (absent or already deleted):
    /// nothing to delete, whatever version is named (412).
    #[error(
        "{ns} {key} has no live version to delete (--cas {expected} expected version {expected})\n  help: `kvform kv history {ns} {key}` shows whether it was deleted already; nothing needs deleting"
    )]
    NothingToDelete { ns: String, key: String, expected: u64 },
    /// The key has no such version (kept history is bounded by `max_versions`) (404).
    #[error("{ns} {key} has no version {version}\n  help: `kvform kv history {ns} {key}` lists the versions kept")]
    NoVersion { ns: String, key: String, version: u64 },
    /// A version that is a tombstone has no value to restore (400).
    #[error(
        "{ns} {key} version {version} is a deletion; it has no value to restore\n  help: restore the version before it"
    )]
    Tombstone { ns: String, key: String, version: u64 },
    /// A patch that keeps the value of a key that has none (400).
    #[error("{ns} {key} has no current value to keep\n  help: send a value")]
    NothingToKeep { ns: String, key: String },
    #[error(transparent)]
    State(#[from] StateError),
}

impl OpError {
    /// The HTTP status the REST and hook doors answer with.
    pub fn status(&self) -> u16 {
        match self {
            OpError::Rule(_) | OpError::Tombstone { .. } | OpError::NothingToKeep { .. } => 400,
            OpError::Conflict { .. } | OpError::NothingToDelete { .. } => 412,
            OpError::NoVersion { .. } => 404,
            OpError::State(StateError::Locked { .. }) => 503,
            OpError::State(StateError::WrongType { .. } | StateError::Invalid { .. } | StateError::Derived { .. }) => {
                400
            }
            OpError::State(_) => 500,
        }
    }
}

/// A write as a door received it: `None` keeps what the key has.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub value: Option<Zeroizing<String>>,
    pub kv_type: Option<KvType>,
    pub description: Option<String>,
    /// Seconds; `Some(0)` = never expires.
    pub ttl: Option<u64>,
    /// The live version the caller expects; `Some(0)`: the key must not be live.
    pub cas: Option<u64>,
}

/// What a put or restore wrote: the state's outcome and the type the key now has (the one
/// named, or the one it kept).
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub outcome: WriteOutcome,
    pub kv_type: KvType,
}

impl Written {
    pub fn version(&self) -> u64 {
        self.outcome.version()
    }
    pub fn changed(&self) -> bool {
        self.outcome.changed()
    }
}

/// The live version of a key, 0 when it has none (absent or deleted).
fn live_version(rows: &[VersionRow]) -> u64 {
    rows.last().filter(|r| !r.deleted).map_or(0, |r| r.version)
}

fn check_cas(ns: &str, key: &str, rows: &[VersionRow], cas: Option<u64>) -> Result<(), OpError> {
    let Some(expected) = cas else { return Ok(()) };
    let current = live_version(rows);
    if current == expected {
        return Ok(());
    }
    Err(OpError::Conflict { ns: ns.into(), key: key.into(), expected, current })
}

/// The plaintext of one stored row (secrets opened with the transaction's keyring).
fn plaintext(txn: &WriteTxn, ns: &str, key: &str, row: &VersionRow) -> Result<Zeroizing<String>, OpError> {
    if !is_secret_key(ns, key) || row.value.is_empty() {
        return Ok(Zeroizing::new(row.value.clone()));
    }
    let ring = txn.keyring().ok_or_else(|| StateError::NoKeyring { ns: ns.into(), key: key.into() })?;
    ring.open(ns, key, row.version, &row.value).map_err(|e| OpError::State(StateError::Secrets(e)))
}

/// The seconds left before `row` expires at `now` (at least 1: an expired key written again
/// without a ttl stays expired, it is not made permanent); 0 when it never expires.
fn remaining(row: &VersionRow, now: i64) -> u64 {
    if row.ttl == 0 {
        return 0;
    }
    let expires = row.created_at.saturating_add(row.ttl as i64);
    expires.saturating_sub(now).max(1) as u64
}

/// Write a key (a new version unless nothing changes): the one write path of every door.
/// `actor` is recorded as the new version's writer.
pub fn put(
    txn: &mut WriteTxn,
    ns: &str,
    key: &str,
    change: &Change,
    actor: &Actor,
    now: i64,
) -> Result<Written, OpError> {
    let rows = txn.history(ns, key)?;
    check_cas(ns, key, &rows, change.cas)?;
    let live = rows.last().filter(|r| !r.deleted);
    let value = match &change.value {
        Some(v) => v.clone(),
        None => match live {
            Some(r) => plaintext(txn, ns, key, r)?,
            None => return Err(OpError::NothingToKeep { ns: ns.into(), key: key.into() }),
        },
    };
    let kv_type = change.kv_type.or(live.map(|r| r.kv_type)).unwrap_or_default();
    let description = change.description.clone().or(live.map(|r| r.description.clone())).unwrap_or_default();
    let ttl = match (change.ttl, live) {
        (Some(t), _) => t,
        (None, Some(r)) => remaining(r, now),
        (None, None) => 0,
    };
    validate::check_write(ns, key, &value, kv_type, ttl, &description).map_err(OpError::Rule)?;
    let writer = actor.to_string();
    let outcome =
        txn.put(Write::new(ns, key, &value, &writer, now).ttl(ttl).described(&Typed::new(kv_type, &description)))?;
    Ok(Written { outcome, kv_type })
}

/// Tombstone a key; `Ok(false)` when it had no live version.
pub fn delete(
    txn: &mut WriteTxn,
    ns: &str,
    key: &str,
    cas: Option<u64>,
    actor: &Actor,
    now: i64,
) -> Result<bool, OpError> {
    validate::check_delete(ns, key).map_err(OpError::Rule)?;
    if let Some(expected) = cas {
        let rows = txn.history(ns, key)?;
        if live_version(&rows) == 0 {
            // "retry with --cas 0" would name no version a delete could act on.
            return Err(OpError::NothingToDelete { ns: ns.into(), key: key.into(), expected });
        }
        check_cas(ns, key, &rows, cas)?;
    }
    Ok(txn.tombstone(ns, key, &actor.to_string(), now)?)
}

/// Write version `version`'s value, type and description as a new version (reviving a
/// deleted key); its ttl is the one that version was written with, counted from now.
pub fn restore(
    txn: &mut WriteTxn,
    ns: &str,
    key: &str,
    version: u64,
    cas: Option<u64>,
    actor: &Actor,
    now: i64,
) -> Result<Written, OpError> {
    let rows = txn.history(ns, key)?;
    check_cas(ns, key, &rows, cas)?;
    let Some(row) = rows.iter().find(|r| r.version == version) else {
        return Err(OpError::NoVersion { ns: ns.into(), key: key.into(), version });
    };
    if row.deleted {
        return Err(OpError::Tombstone { ns: ns.into(), key: key.into(), version });
    }
    let value = plaintext(txn, ns, key, row)?;
    let change = Change {
        value: Some(value),
        kv_type: Some(row.kv_type),
        description: Some(row.description.clone()),
        ttl: Some(row.ttl),
        cas: None,
    };
    put(txn, ns, key, &change, actor, now)
}

/// One version of a key as stored (its value still sealed for secrets), or `None`.
pub fn version_of(rows: Vec<VersionRow>, version: u64) -> Option<VersionRow> {
    rows.into_iter().find(|r| r.version == version)
}

#[cfg(test)]
mod tests;
