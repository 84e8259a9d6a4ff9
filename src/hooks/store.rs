//! The seam between the hook API and the state: [`HookStore`].
//!
//! The API never talks to SQLite itself. During `apply` the lead implements this trait over
//! the running write transaction (so hook writes land in the job's checkpoint and roll back
//! with it); tests and tools use [`MemoryStore`]. Secrets cross this seam as plaintext in
//! [`Zeroizing`] buffers: sealing and opening happen behind the trait.

use crate::kv::{KvType, Typed};
use crate::ops::Actor;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// One key as a hook reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookValue {
    /// The value; for `secrets/job/*` already decrypted.
    pub value: Zeroizing<String>,
    /// `Some(t)` when the key's ttl ran out at unix second `t` (`created_at + ttl <= now`).
    /// Such a key stays readable until the next plan tombstones it; reads report it.
    pub expired_at: Option<i64>,
    /// The live version, for a later write's `cas`.
    pub version: u64,
}

/// Why the store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum HookStoreError {
    /// The request is well-formed but the store will not do it (too large, bad key name, …).
    /// Answered with 400 and this message.
    #[error("{0}")]
    Rejected(String),
    /// The backend failed (I/O, SQLite, decryption). Answered with 500. Must never contain
    /// plaintext secret values.
    #[error("state store failed: {0}")]
    Backend(String),
    /// Compare-and-set: the key is not at the version the hook's `cas` named. Answered with
    /// 412 and `current` (0 = no live version).
    #[error("{message}")]
    Conflict { message: String, current: u64 },
}

impl HookStoreError {
    /// The compare-and-set refusal, in the words of [`crate::ops::OpError::Conflict`] with
    /// the hook's way to retry.
    pub fn conflict(ns: &str, key: &str, expected: u64, current: u64) -> HookStoreError {
        let none = if current == 0 { " (it has no live version)" } else { "" };
        HookStoreError::Conflict {
            message: format!(
                "{ns} {key} is at version {current}, not {expected}{none}\n  help: read it again and send \"cas\": {current}"
            ),
            current,
        }
    }
}

/// Reads and writes of the hook API, in the order the hooks make them.
pub trait HookStore: Send {
    /// The latest live version of a key; `None` when missing or tombstoned.
    fn get(&mut self, ns: &str, key: &str) -> Result<Option<HookValue>, HookStoreError>;
    /// Write a key (`ttl` seconds, 0 = never expires). `actor`'s text is recorded in history.
    /// `typed` is the hook's `type`/`description` (already validated against the value);
    /// `None` is maand's untyped write: a `string` that keeps the key's description, as
    /// [`crate::state::WriteTxn::put`] does. `cas`: the live version the hook expects
    /// (`Some(0)`: the key must not be live); a mismatch is [`HookStoreError::Conflict`].
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        actor: &Actor,
        typed: Option<&Typed>,
        cas: Option<u64>,
    ) -> Result<(), HookStoreError>;
    /// Tombstone a key; `false` when it was not live. `cas` as for [`HookStore::put`].
    fn delete(&mut self, ns: &str, key: &str, actor: &Actor, cas: Option<u64>) -> Result<bool, HookStoreError>;
    /// Live keys of a namespace, sorted.
    fn keys(&mut self, ns: &str) -> Result<Vec<String>, HookStoreError>;
    /// [`HookStore::get`] if it can answer without waiting: no lock another thread holds,
    /// no network round trip. `None` means "would wait"; the API then runs the request on
    /// the blocking pool. This lets the common `GET /kv` skip the hop to another thread
    /// (issue 11: its wake-up dominated the API's tail latency). The default never answers.
    fn try_get(&mut self, _ns: &str, _key: &str) -> Option<Result<Option<HookValue>, HookStoreError>> {
        None
    }
}

/// One row of [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    pub value: String,
    pub ttl: u64,
    pub writer: String,
    pub expired_at: Option<i64>,
    pub kv_type: KvType,
    pub description: String,
    /// The live version: 1 on the first write, +1 on each later one.
    pub version: u64,
}

/// An in-memory [`HookStore`] (namespace -> key -> entry), for tests and dry runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    pub entries: BTreeMap<String, BTreeMap<String, MemoryEntry>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Seed a key (writer `seed`, no ttl).
    pub fn with(mut self, ns: &str, key: &str, value: &str) -> MemoryStore {
        self.insert(ns, key, value, 0, "seed", None);
        self
    }

    fn insert(&mut self, ns: &str, key: &str, value: &str, ttl: u64, writer: &str, typed: Option<&Typed>) {
        // The same metadata rule as the state: an untyped write keeps the description.
        let description = match typed {
            Some(t) => t.description.clone(),
            None => self.entry(ns, key).map(|e| e.description.clone()).unwrap_or_default(),
        };
        let version = self.entry(ns, key).map_or(1, |e| e.version + 1);
        let entry = MemoryEntry {
            version,
            value: value.to_string(),
            ttl,
            writer: writer.to_string(),
            expired_at: None,
            kv_type: typed.map_or(KvType::String, |t| t.kv_type),
            description,
        };
        self.entries.entry(ns.to_string()).or_default().insert(key.to_string(), entry);
    }

    /// Compare-and-set as the state does it ([`crate::ops`]): the same message.
    fn check_cas(&self, ns: &str, key: &str, cas: Option<u64>) -> Result<(), HookStoreError> {
        let Some(expected) = cas else { return Ok(()) };
        let current = self.entry(ns, key).map_or(0, |e| e.version);
        if current == expected {
            return Ok(());
        }
        Err(HookStoreError::conflict(ns, key, expected, current))
    }

    /// The entry of a key, if live.
    pub fn entry(&self, ns: &str, key: &str) -> Option<&MemoryEntry> {
        self.entries.get(ns)?.get(key)
    }
}

impl HookStore for MemoryStore {
    fn get(&mut self, ns: &str, key: &str) -> Result<Option<HookValue>, HookStoreError> {
        Ok(self.entry(ns, key).map(|e| HookValue {
            value: Zeroizing::new(e.value.clone()),
            expired_at: e.expired_at,
            version: e.version,
        }))
    }

    fn put(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        actor: &Actor,
        typed: Option<&Typed>,
        cas: Option<u64>,
    ) -> Result<(), HookStoreError> {
        if key.is_empty() {
            return Err(HookStoreError::Rejected("key must not be empty".into()));
        }
        self.check_cas(ns, key, cas)?;
        self.insert(ns, key, value, ttl, &actor.to_string(), typed);
        Ok(())
    }

    fn delete(&mut self, ns: &str, key: &str, _actor: &Actor, cas: Option<u64>) -> Result<bool, HookStoreError> {
        self.check_cas(ns, key, cas)?;
        let Some(m) = self.entries.get_mut(ns) else { return Ok(false) };
        let removed = m.remove(key).is_some();
        if m.is_empty() {
            self.entries.remove(ns);
        }
        Ok(removed)
    }

    fn keys(&mut self, ns: &str) -> Result<Vec<String>, HookStoreError> {
        Ok(self.entries.get(ns).map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }
    /// In memory: never waits.
    fn try_get(&mut self, ns: &str, key: &str) -> Option<Result<Option<HookValue>, HookStoreError>> {
        Some(self.get(ns, key))
    }
}
