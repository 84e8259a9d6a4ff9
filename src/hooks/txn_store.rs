//! [`HookStore`] over the state: [`TxnStore`] for hooks that may write (apply steps,
//! `kvform run`), [`ReadOnlyStore`] for `kvform health`.
//!
//! [`TxnStore`] writes into the running [`WriteTxn`], so a hook's writes land in the job's
//! checkpoint and commit or roll back with it. It is bound to a transaction only while a
//! step runs ([`TxnStore::attach`] / [`TxnStore::detach`]): the executor must be able to
//! take the transaction back (`Arc::try_unwrap`) to commit it, and `post_build` hooks run
//! in a follow-up transaction. The API thread locks the transaction for each request, so
//! the executor must not hold the lock while hooks run.
//!
//! Secrets: the state holds only ciphertext; reads open it with the transaction's (or the
//! store's) keyring, writes are sealed by [`WriteTxn::put`]. Errors never carry values.

use super::store::{HookStore, HookStoreError, HookValue};
use crate::apply::SharedTxn;
use crate::kv::{Entry, KvType, Typed, is_secret_key};
use crate::ops::{Actor, Change, OpError};
use crate::secrets::Keyring;
use crate::state::{StateError, StateStore, WriteTxn};
use std::sync::MutexGuard;
use zeroize::Zeroizing;

/// Hook reads and writes inside the apply's (or `kvform run`'s) write transaction.
pub struct TxnStore {
    txn: Option<SharedTxn>,
    now: i64,
}

impl TxnStore {
    /// A store writing into `txn`; `now` stamps `created_at` and decides expiry.
    pub fn new(txn: SharedTxn, now: i64) -> TxnStore {
        TxnStore { txn: Some(txn), now }
    }

    /// A store bound to no transaction yet (every request fails until [`TxnStore::attach`]).
    pub fn detached(now: i64) -> TxnStore {
        TxnStore { txn: None, now }
    }

    /// Send the following requests to `txn`.
    pub fn attach(&mut self, txn: SharedTxn) {
        self.txn = Some(txn);
    }

    /// Stop using the transaction (so its owner can commit it); returns the handle held.
    pub fn detach(&mut self) -> Option<SharedTxn> {
        self.txn.take()
    }

    fn lock(&self) -> Result<MutexGuard<'_, WriteTxn>, HookStoreError> {
        let txn = self.txn.as_ref().ok_or_else(|| {
            HookStoreError::Backend(
                "no write transaction is open: the store is only usable while a hook step runs".into(),
            )
        })?;
        Ok(txn.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Map a state error: bad names are the hook's fault (400), everything else is ours (500).
/// State errors name namespaces and keys, never values.
fn store_error(e: StateError) -> HookStoreError {
    match e {
        StateError::Invalid { .. }
        | StateError::Derived { .. }
        | StateError::WrongType { .. }
        | StateError::Refused(_) => HookStoreError::Rejected(e.to_string()),
        // The database's own text names the state's path and SQL: not the hook's business.
        StateError::Db { context, .. } => HookStoreError::Backend(format!(
            "the state could not {context}; nothing of this request was kept and the apply goes on"
        )),
        e => HookStoreError::Backend(e.to_string()),
    }
}

fn op_error(e: OpError) -> HookStoreError {
    match e {
        OpError::State(e) => store_error(e),
        OpError::Conflict { ns, key, expected, current } => HookStoreError::conflict(&ns, &key, expected, current),
        e @ OpError::NothingToDelete { .. } => HookStoreError::Conflict { message: e.to_string(), current: 0 },
        e @ (OpError::Rule(_)
        | OpError::NoVersion { .. }
        | OpError::Tombstone { .. }
        | OpError::NothingToKeep { .. }) => HookStoreError::Rejected(e.to_string()),
    }
}

/// The savepoint each hook write runs under.
const HOOK_WRITE: &str = "kvform_hook_write";

/// Run one hook write under a savepoint of its own: a write that still fails in the
/// database (after the validation of the routes) is undone alone and leaves the
/// transaction usable — on PostgreSQL a failed statement otherwise aborts the whole
/// transaction, and with it every later job of the apply.
fn own_savepoint<T, E: From<StateError>>(
    txn: &mut WriteTxn,
    write: impl FnOnce(&mut WriteTxn) -> Result<T, E>,
) -> Result<T, E> {
    txn.savepoint(HOOK_WRITE)?;
    match write(txn) {
        Ok(v) => {
            txn.release(HOOK_WRITE)?;
            Ok(v)
        }
        Err(e) => {
            txn.rollback_to(HOOK_WRITE)?;
            Err(e)
        }
    }
}

/// A latest row as a hook sees it: `None` when tombstoned; secrets opened.
fn hook_value(
    ns: &str,
    key: &str,
    entry: Option<Entry>,
    keyring: Option<&Keyring>,
    now: i64,
) -> Result<Option<HookValue>, HookStoreError> {
    let Some(e) = entry.filter(Entry::is_live) else { return Ok(None) };
    let value = if is_secret_key(ns, key) {
        let ring = keyring.ok_or_else(|| {
            HookStoreError::Backend(format!("{ns} {key}: reading a secret needs the bucket key (secrets/kv.key)"))
        })?;
        ring.open(ns, key, e.version, &e.value).map_err(|err| HookStoreError::Backend(format!("{ns} {key}: {err}")))?
    } else {
        zeroize::Zeroizing::new(e.value.clone())
    };
    let expired_at = e.expires_at().filter(|t| *t <= now);
    Ok(Some(HookValue { value, expired_at, version: e.version }))
}

/// Live keys of a namespace, derived keys included, sorted.
fn live_keys(keys: Result<Vec<String>, StateError>) -> Result<Vec<String>, HookStoreError> {
    keys.map_err(store_error)
}

impl HookStore for TxnStore {
    fn get(&mut self, ns: &str, key: &str) -> Result<Option<HookValue>, HookStoreError> {
        let mut txn = self.lock()?;
        let entry = txn.get(ns, key).map_err(store_error)?;
        hook_value(ns, key, entry, txn.keyring(), self.now)
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
        let now = self.now;
        // Through the operations layer, like every door: its validation, cas and patch
        // rules. A hook write always names its value and ttl; without `type` it is maand's
        // untyped write, a `string` that keeps the key's description.
        let change = Change {
            value: Some(Zeroizing::new(value.to_string())),
            kv_type: Some(typed.map_or(KvType::String, |t| t.kv_type)),
            description: typed.map(|t| t.description.clone()),
            ttl: Some(ttl),
            cas,
        };
        let mut txn = self.lock()?;
        own_savepoint(&mut txn, |txn| crate::ops::put(txn, ns, key, &change, actor, now)).map_err(op_error)?;
        Ok(())
    }

    fn delete(&mut self, ns: &str, key: &str, actor: &Actor, cas: Option<u64>) -> Result<bool, HookStoreError> {
        let now = self.now;
        own_savepoint(&mut *self.lock()?, |txn| crate::ops::delete(txn, ns, key, cas, actor, now)).map_err(op_error)
    }

    fn keys(&mut self, ns: &str) -> Result<Vec<String>, HookStoreError> {
        let mut txn = self.lock()?;
        live_keys(txn.live_keys(ns))
    }
    /// Only while the executor is not using the transaction (`try_lock`), and only on
    /// SQLite, where a point get is a local B-tree lookup; a PostgreSQL get is a round trip.
    fn try_get(&mut self, ns: &str, key: &str) -> Option<Result<Option<HookValue>, HookStoreError>> {
        let mut txn = match self.txn.as_ref()?.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        if txn.is_remote() {
            return None;
        }
        let entry = txn.get(ns, key).map_err(store_error);
        Some(entry.and_then(|entry| hook_value(ns, key, entry, txn.keyring(), self.now)))
    }
}

/// Reads from the committed state, no write lock (`kvform health` runs beside an apply).
/// Writes are refused here as well as by the access table (`health_check` is read-only).
pub struct ReadOnlyStore {
    store: StateStore,
    now: i64,
}

impl ReadOnlyStore {
    /// `store` should carry the bucket's keyring so hooks can read their secrets.
    pub fn new(store: StateStore, now: i64) -> ReadOnlyStore {
        ReadOnlyStore { store, now }
    }
}

fn read_only() -> HookStoreError {
    HookStoreError::Rejected("this store is read-only (health checks cannot write)".into())
}

impl HookStore for ReadOnlyStore {
    fn get(&mut self, ns: &str, key: &str) -> Result<Option<HookValue>, HookStoreError> {
        let entry = self.store.get(ns, key).map_err(store_error)?;
        hook_value(ns, key, entry, self.store.keyring(), self.now)
    }

    fn put(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
        _: u64,
        _: &Actor,
        _: Option<&Typed>,
        _: Option<u64>,
    ) -> Result<(), HookStoreError> {
        Err(read_only())
    }

    fn delete(&mut self, _: &str, _: &str, _: &Actor, _: Option<u64>) -> Result<bool, HookStoreError> {
        Err(read_only())
    }

    fn keys(&mut self, ns: &str) -> Result<Vec<String>, HookStoreError> {
        live_keys(self.store.live_keys(ns))
    }
    /// SQLite reads never wait on the apply's writer (WAL); a PostgreSQL get is a round trip.
    fn try_get(&mut self, ns: &str, key: &str) -> Option<Result<Option<HookValue>, HookStoreError>> {
        (!self.store.is_remote()).then(|| self.get(ns, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::Bucket;
    use std::sync::{Arc, Mutex};

    fn hook() -> Actor {
        Actor::hook("api", "h", crate::workspace::types::Event::PostDeploy, "c")
    }

    fn setup() -> (tempfile::TempDir, SharedTxn) {
        let dir = tempfile::tempdir().unwrap();
        let b = Bucket::at(dir.path());
        Keyring::create(&b).unwrap();
        let (store, _) = StateStore::init(&b.default_state_file(), 1767323045).unwrap();
        let store = store.with_keyring(Keyring::load(&b).unwrap());
        let txn = store.begin_write("test", std::time::Duration::ZERO, 1767323045).unwrap();
        (dir, Arc::new(Mutex::new(txn)))
    }

    #[test]
    fn reads_writes_and_expiry_go_through_the_transaction() {
        let (_d, txn) = setup();
        let mut s = TxnStore::new(txn.clone(), 1000);
        s.put("vars/job/api", "b", "2", 0, &hook(), None, None).unwrap();
        s.put("vars/job/api", "a", " 1 ", 10, &hook(), None, None).unwrap();
        s.put("secrets/job/api", "pw", "hunter2", 0, &hook(), None, None).unwrap();
        assert_eq!(s.keys("vars/job/api").unwrap(), ["a", "b"]);
        // The hook's actor text is the row's writer.
        let b = txn.lock().unwrap().get("vars/job/api", "b").unwrap().unwrap();
        assert_eq!(b.writer, "api:h/post_deploy/c");
        let a = s.get("vars/job/api", "a").unwrap().unwrap();
        assert_eq!((a.value.as_str(), a.expired_at), ("1", None));
        let stored = txn.lock().unwrap().get("secrets/job/api", "pw").unwrap().unwrap();
        assert!(!stored.value.contains("hunter2"), "sealed at rest");
        assert_eq!(s.get("secrets/job/api", "pw").unwrap().unwrap().value.as_str(), "hunter2");
        assert!(s.delete("vars/job/api", "b", &hook(), None).unwrap());
        assert!(!s.delete("vars/job/api", "b", &hook(), None).unwrap());
        assert_eq!(s.get("vars/job/api", "b").unwrap(), None);
        assert_eq!(s.keys("vars/job/api").unwrap(), ["a"]);
        // Later: the ttl ran out at 1010; still readable, reported as expired.
        let mut later = TxnStore::new(txn.clone(), 1010);
        assert_eq!(later.get("vars/job/api", "a").unwrap().unwrap().expired_at, Some(1010));
        assert!(matches!(s.put("vars/job/api", " bad", "x", 0, &hook(), None, None), Err(HookStoreError::Rejected(_))));
        // A typed write goes through `Write::described`: stored with its type, refused when it does not fit.
        let typed = Typed::new(crate::kv::KvType::Number, "replicas");
        s.put("vars/job/api", "n", "3", 0, &hook(), Some(&typed), None).unwrap();
        let meta =
            crate::state::read_key_meta(txn.lock().unwrap().conn(), std::path::Path::new("t"), "vars/job/api", "n");
        assert_eq!(meta.unwrap().map(|m| (m.kv_type, m.description)), Some((typed.kv_type, "replicas".into())));
        assert!(matches!(
            s.put("vars/job/api", "n", "x", 0, &hook(), Some(&typed), None),
            Err(HookStoreError::Rejected(_))
        ));
        assert_eq!(s.get("vars/job/api", "n").unwrap().unwrap().value.as_str(), "3");
        let mut d = TxnStore::detached(0);
        assert!(matches!(d.get("vars/job/api", "a"), Err(HookStoreError::Backend(_))));
        d.attach(txn.clone());
        assert!(d.get("vars/job/api", "a").unwrap().is_some());
        assert!(d.detach().is_some());
    }
}
