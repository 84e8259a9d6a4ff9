//! [`WriteTxn`]: the one write transaction of a change set.
//!
//! It owns the connection and the write lock, so it is `Send + 'static` and the apply
//! executor can share it with the hook API thread behind `Arc<Mutex<_>>`. Dropping it
//! without [`WriteTxn::commit`] rolls back.
//!
//! A write moves the key's latest row into `history` and writes the new one in `latest`;
//! history beyond `max_versions` rows per key is trimmed right there.

use super::backend::{Db, Held, NewRow, NextVersion, RowSink, vals};
use super::bulk;
use super::fingerprint::{self, PlanBasis, Staged};
use super::lean::Skip;
use super::lock::LockGuard;
use super::{StateError, check_name, read_key, read_snapshot, sql};
use crate::kv::{Entry, KvMap, KvType, LeanSnapshot, Snapshot, Typed, is_secret_key};
use crate::secrets::Keyring;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod commit;
mod write;

/// Page cache of a write transaction, in KiB (negative in the pragma: a size, not pages).
const WRITE_CACHE_KIB: i64 = -262_144;

/// What a [`WriteTxn::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The key had no row: version 1 written.
    Created { version: u64 },
    /// A tombstoned key was written again.
    Revived { version: u64 },
    /// A live key got a different value or ttl.
    Updated { version: u64 },
    /// Identical value and ttl: nothing written.
    Unchanged { version: u64 },
}

impl WriteOutcome {
    pub fn version(&self) -> u64 {
        match *self {
            WriteOutcome::Created { version }
            | WriteOutcome::Revived { version }
            | WriteOutcome::Updated { version }
            | WriteOutcome::Unchanged { version } => version,
        }
    }
    pub fn changed(&self) -> bool {
        !matches!(self, WriteOutcome::Unchanged { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyStatus {
    Success,
    /// Some jobs failed (rolled back) or were skipped; the rest committed.
    Partial,
    Failed,
}

impl ApplyStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplyStatus::Success => "success",
            ApplyStatus::Partial => "partial",
            ApplyStatus::Failed => "failed",
        }
    }
}

/// The audit record of a change set; counts are filled in by the transaction itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyRecord {
    /// `apply`, `kv set`, `gc`, `secrets rotate-key`, …
    pub operation: String,
    /// `user@host`.
    pub actor: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub status: ApplyStatus,
}

impl ApplyRecord {
    /// A successful record by this process's `user@host`, started and finished at `now`.
    pub fn new(operation: &str, now: i64) -> ApplyRecord {
        ApplyRecord {
            operation: operation.to_string(),
            actor: super::actor(),
            started_at: now,
            finished_at: now,
            status: ApplyStatus::Success,
        }
    }

    /// The same, recorded as done by `actor` rather than this process's user: `kvform serve`
    /// writes are by the API token (`token:<name>`), not the OS user running the server.
    pub fn by(mut self, actor: impl Into<String>) -> ApplyRecord {
        self.actor = actor.into();
        self
    }
}

/// Write counts, copied on each savepoint so `rollback_to` restores them exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub added: u64,
    pub changed: u64,
    pub destroyed: u64,
    pub removed: u64,
    pub resealed: u64,
    /// Jobs added to or dropped from the purged-jobs record (not in the audit counts: a
    /// record, not a key; but a change of the state, so it bumps the serial).
    pub records: u64,
}

impl Counts {
    fn any(&self) -> bool {
        *self != Counts::default()
    }
}

/// The metadata of a write: set both ([`Write::described`]), or set the type and keep the
/// key's description.
#[derive(Clone, Copy)]
enum Meta<'a> {
    Set(&'a Typed),
    Keep(KvType),
}

/// One write of a key, for [`WriteTxn::put`]: by default a `string` value without ttl that
/// keeps the key's description.
#[derive(Clone, Copy)]
pub struct Write<'a> {
    ns: &'a str,
    key: &'a str,
    value: &'a str,
    ttl: u64,
    writer: &'a str,
    now: i64,
    meta: Meta<'a>,
    expect_new: bool,
}

impl<'a> Write<'a> {
    /// `value` for `key` in `ns`, written by `writer` at `now`.
    pub fn new(ns: &'a str, key: &'a str, value: &'a str, writer: &'a str, now: i64) -> Write<'a> {
        Write { ns, key, value, ttl: 0, writer, now, meta: Meta::Keep(KvType::String), expect_new: false }
    }

    /// Seconds the value lives (0: for ever).
    pub fn ttl(self, ttl: u64) -> Write<'a> {
        Write { ttl, ..self }
    }

    /// A typed value that keeps the key's description: the apply's write of an HCL-typed
    /// key (the workspace owns the value and type, an operator the description).
    pub fn typed(self, kv_type: KvType) -> Write<'a> {
        Write { meta: Meta::Keep(kv_type), ..self }
    }

    /// Type and description both set (SPEC §9).
    pub fn described(self, typed: &'a Typed) -> Write<'a> {
        Write { meta: Meta::Set(typed), ..self }
    }

    /// The caller expects the key to have no row (a plan's create): written with one
    /// insert and no read where it can be (not in `secrets/*`, not with a description);
    /// a key that exists after all is written as any other.
    pub fn expect_new(self) -> Write<'a> {
        Write { expect_new: true, ..self }
    }
}

pub struct WriteTxn {
    conn: Db,
    path: PathBuf,
    keyring: Option<Arc<Keyring>>,
    lock: LockGuard,
    base_serial: u64,
    max_versions: u32,
    pub(crate) counts: Counts,
    savepoints: Vec<Savepoint>,
    began: Instant,
    finished: bool,
    /// Fingerprints of the plan being applied (`super::fingerprint`).
    staged: Option<Staged>,
    /// Fingerprint rows this transaction wrote and still holds (forgotten on any rollback
    /// to a savepoint): a write to a namespace whose row already says so writes nothing.
    /// Every write of an apply re-stated its namespace's row, one statement per key —
    /// a round trip per key on PostgreSQL.
    fp_written: std::collections::HashMap<String, fingerprint::Digest>,
    /// Where rows go: at once, or held back and sent in bulk ([`Self::flush`]) where
    /// every statement is a round trip (see [`RowSink`]).
    sink: Box<dyn RowSink>,
    /// Latest rows read ahead by [`Self::prefetch`] (where the sink reads ahead) (`None`: no row), so
    /// a batch of writes does not read its keys one round trip at a time. An entry is
    /// dropped when its key is written; all are dropped on a rollback.
    heads: HashMap<String, HashMap<String, Option<Head>>>,
    /// Set while [`Self::flush`] sends: what its conflict writes do goes straight to the
    /// server, in order, instead of being held back again.
    flushing: bool,
    /// Counts this transaction as open until it and its lock are gone (declared last, so
    /// it drops after them; [`super::interrupt::open_transactions`]).
    _open: super::interrupt::Open,
}

/// A savepoint of the transaction. The sink may hold it back with the writes (`held`) and
/// have it sent only when something after it has to reach the server.
struct Savepoint {
    name: String,
    /// The counts a rollback restores: those of everything before the savepoint that has
    /// been sent (held-back rows are counted when they are sent).
    counts: Counts,
    held: bool,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("path", &self.path)
            .field("lock", &self.lock.holder)
            .field("base_serial", &self.base_serial)
            .field("counts", &self.counts)
            .finish()
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

impl WriteTxn {
    pub(super) fn begin(
        conn: Db,
        path: PathBuf,
        keyring: Option<Arc<Keyring>>,
        lock: LockGuard,
    ) -> Result<WriteTxn, StateError> {
        // A change set can write every key of the state (a first apply: 574k rows, 1.7 GB on
        // a 10,000-worker fleet). With SQLite's default 2 MB page cache such a transaction
        // spills dirty pages to the WAL over and over and then searches the WAL for them;
        // a larger cache (grown only as pages are touched) keeps the working set in memory.
        if let Some(c) = conn.lite() {
            c.pragma_update(None, "cache_size", WRITE_CACHE_KIB).map_err(sql(&path, "size the page cache"))?;
        }
        conn.begin_write().map_err(sql(&path, "begin the write transaction"))?;
        let sink = conn.row_sink();
        let mut txn = WriteTxn {
            conn,
            path,
            keyring,
            lock,
            base_serial: 0,
            max_versions: super::DEFAULT_MAX_VERSIONS,
            counts: Counts::default(),
            savepoints: Vec::new(),
            began: Instant::now(),
            finished: false,
            staged: None,
            fp_written: std::collections::HashMap::new(),
            sink,
            heads: HashMap::new(),
            flushing: false,
            _open: super::interrupt::Open::new(),
        };
        txn.base_serial = super::read_meta(&txn.conn, &txn.path)?.serial;
        Ok(txn)
    }

    /// Rows kept per key (`kvform.hcl` `max_versions`, >= 1). Default 10.
    pub fn set_max_versions(&mut self, max_versions: u32) {
        self.max_versions = max_versions.max(1);
    }

    /// The serial this change set commits as (if it changes anything).
    pub fn next_serial(&self) -> u64 {
        self.base_serial + 1
    }

    /// Who holds the lock (this transaction).
    pub fn lock_holder(&self) -> &super::LockHolder {
        &self.lock.holder
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// Latest row of every key; sees this transaction's own writes.
    pub fn snapshot(&mut self) -> Result<Snapshot, StateError> {
        self.flush()?;
        read_snapshot(&self.conn, &self.path)
    }

    /// [`super::StateStore::read_for_plan`] inside this transaction.
    pub fn read_for_plan<D, E: From<StateError>>(
        &mut self,
        desire: impl FnOnce(&LeanSnapshot) -> Result<D, E>,
        kv: impl FnOnce(&D) -> &KvMap,
    ) -> Result<(LeanSnapshot, D), E> {
        self.flush()?;
        super::lean::read_for_plan(&self.conn, &self.path, false, desire, kv)
    }

    /// [`super::StateStore::read_for_plan_with`] inside this transaction.
    pub fn read_for_plan_with<D, E: From<StateError>>(
        &mut self,
        how: super::PlanRead<'_>,
        desire: impl Fn(&LeanSnapshot, Skip<'_>) -> Result<D, E>,
        view: impl Fn(&D) -> (&KvMap, &crate::kv::KvTypes, &crate::kv::inputs::Units),
        purged: impl Fn(&D, &LeanSnapshot) -> std::collections::BTreeSet<String>,
    ) -> Result<(LeanSnapshot, Option<D>, PlanBasis), E> {
        self.flush()?;
        super::lean::read_for_plan_with(&self.conn, &self.path, false, how, desire, view, purged)
    }

    /// Read the latest rows of `keys` ahead, in one statement on PostgreSQL (nothing on
    /// SQLite, where a read is a function call): the writes that follow compare against
    /// them without a round trip each.
    pub fn prefetch(&mut self, keys: &[(&str, &str)]) -> Result<(), StateError> {
        if !self.sink.reads_ahead() || keys.is_empty() {
            return Ok(());
        }
        // No flush: held-back rows are first versions of their own keys, so they change no
        // other key's latest row. Their keys are left out; a write of one sends them first
        // and then reads its row.
        let keys: Vec<(&str, &str)> = keys.iter().copied().filter(|k| self.sink.held_row(k.0, k.1).is_none()).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let mut found = HashMap::new();
        bulk::latest_rows(
            &self.conn,
            &self.path,
            &keys,
            "l.version, l.value, l.deleted, l.ttl, l.type, l.description",
            |r| {
                found.insert((r.text(0)?, r.text(1)?), Head::from_row(r, 3)?);
                Ok(())
            },
        )?;
        for (ns, key) in &keys {
            let head = found.get(&(ns.to_string(), key.to_string())).cloned();
            self.heads.entry(ns.to_string()).or_default().insert(key.to_string(), head);
        }
        Ok(())
    }

    /// `ns` has been written in this transaction (see [`RowSink::touch`]).
    fn touch(&mut self, ns: &str) {
        self.sink.touch(ns);
    }

    /// The read-ahead row of a key is no longer its latest.
    fn forget_head(&mut self, ns: &str, key: &str) {
        if let Some(m) = self.heads.get_mut(ns) {
            m.remove(key);
        }
    }

    /// [`super::StateStore::live_values`]; sees this transaction's own writes.
    pub fn live_values(&mut self, keys: &[(String, String)]) -> Result<super::LiveValues, StateError> {
        self.flush()?;
        bulk::live_values(&self.conn, &self.path, keys)
    }

    /// The latest row of every key without values (only `maand/bucket`'s are read): enough
    /// for `Prior::from_current`, not for a plan (use `read_for_plan`).
    pub fn lean_snapshot(&mut self) -> Result<LeanSnapshot, StateError> {
        self.flush()?;
        super::lean::read_lean_snapshot(&self.conn, &self.path)
    }

    /// Latest row of one key (a derived key as readers see it); sees this transaction's
    /// own writes.
    pub fn get(&mut self, ns: &str, key: &str) -> Result<Option<Entry>, StateError> {
        // Held-back writes can change only their own keys' rows (and the derived keys read
        // from them), so other reads need not send them, and a held-back key is its row:
        // `Write::expect_new`'s caller vouched that it had none (the apply's plan, read under this
        // lock), so it is version 1 as written. (Were that wrong, the flush would write the
        // value as `put` does: the same value, a later version.)
        if crate::kv::derived::derivation(ns, key).is_some() {
            self.flush()?;
        } else if let Some(r) = self.sink.held_row(ns, key) {
            return Ok(Some(Entry {
                value: r.value.clone(),
                version: 1,
                deleted: false,
                ttl: r.ttl as u64,
                created_at: r.now,
                serial: self.next_serial(),
                writer: r.writer.clone(),
            }));
        }
        read_key(&self.conn, &self.path, ns, key)
    }

    /// Every kept version of a key, by version (type and description included); sees this
    /// transaction's writes. What a compare-and-set, a patch and a restore read under the lock.
    pub fn history(&mut self, ns: &str, key: &str) -> Result<Vec<super::VersionRow>, StateError> {
        self.flush()?;
        super::read_history(&self.conn, &self.path, ns, key)
    }

    /// Live keys of a namespace (derived keys included), sorted; sees this transaction's writes.
    pub fn live_keys(&mut self, ns: &str) -> Result<Vec<String>, StateError> {
        self.flush()?;
        super::live_keys(&self.conn, &self.path, ns)
    }

    /// The jobs recorded as purged; sees this transaction's own changes.
    pub fn purged_jobs(&mut self) -> Result<BTreeSet<String>, StateError> {
        self.flush()?;
        super::read_purged_jobs(&self.conn, &self.path)
    }

    /// Make the purged-jobs record exactly `jobs` (see `Current::purged_jobs`). Returns
    /// whether it changed.
    pub fn set_purged_jobs(&mut self, jobs: &BTreeSet<String>) -> Result<bool, StateError> {
        let old = self.purged_jobs()?;
        let serial = self.next_serial() as i64;
        let mut n = 0;
        for job in old.difference(jobs) {
            self.conn
                .execute("DELETE FROM purged_jobs WHERE job = ?1", vals![job])
                .map_err(sql(&self.path, "unrecord purged job"))?;
            n += 1;
        }
        for job in jobs.difference(&old) {
            check_name("job", job)?;
            self.conn
                .execute("INSERT INTO purged_jobs (job, serial) VALUES (?1, ?2)", vals![job, serial])
                .map_err(sql(&self.path, "record purged job"))?;
            n += 1;
        }
        self.counts.records += n;
        Ok(n > 0)
    }

    /// [`super::StateStore::is_remote`] for the transaction's connection.
    pub fn is_remote(&self) -> bool {
        self.conn.is_remote()
    }

    /// The connection, for the state's own modules (gc, copy, tokens), which never hold
    /// writes back. Held-back writes would be invisible through it, hence the check.
    pub(crate) fn conn(&self) -> &Db {
        assert!(
            self.sink.is_empty(),
            "WriteTxn::conn with held-back writes: call a WriteTxn method (they send them) first"
        );
        &self.conn
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(crate) fn max_versions(&self) -> u32 {
        self.max_versions
    }

    fn need_keyring(&self, ns: &str, key: &str) -> Result<&Keyring, StateError> {
        self.keyring.as_deref().ok_or_else(|| StateError::NoKeyring { ns: ns.into(), key: key.into() })
    }

    /// What a write compares against: the latest row.
    fn head(&self, ns: &str, key: &str) -> Result<Option<Head>, StateError> {
        if let Some(h) = self.heads.get(ns).and_then(|m| m.get(key)) {
            return Ok(h.clone());
        }
        self.conn
            .query_opt(
                "SELECT version, value, deleted, ttl, type, description FROM latest WHERE namespace = ?1 AND key = ?2",
                vals![ns, key],
                |r| Head::from_row(r, 0),
            )
            .map_err(sql(&self.path, "read key"))
    }
}

/// A typed write's value must fit its type (SPEC §9); nothing is written when it does not.
fn check_type(kv_type: KvType, ns: &str, key: &str, value: &str) -> Result<(), StateError> {
    kv_type.validate_for(ns, key, value.trim()).map_err(|e| StateError::WrongType {
        ns: ns.into(),
        key: key.into(),
        error: e,
    })
}

/// Derived keys (`crate::kv::derived`) have no rows: writing one would store what is
/// computed when read, and readers would never see it.
fn refuse_derived(ns: &str, key: &str) -> Result<(), StateError> {
    match crate::kv::derived::derivation(ns, key) {
        Some(d) => Err(StateError::Derived { ns: ns.into(), key: key.into(), from: d.source() }),
        None => Ok(()),
    }
}

/// Savepoint names are identifiers we quote ourselves; refuse anything else.
fn savepoint_name(name: &str) -> Result<String, StateError> {
    let ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("\"{name}\""))
    } else {
        Err(StateError::Invalid { what: "savepoint name", value: name.into(), reason: "use letters, digits and _" })
    }
}

/// The latest row of a key as a write sees it.
#[derive(Clone)]
struct Head {
    version: u64,
    value: String,
    deleted: bool,
    ttl: u64,
    kv_type: KvType,
    description: String,
}

impl Head {
    /// `version, value, deleted, ttl, type, description` from column `at` on.
    fn from_row(r: &super::backend::Row<'_, '_>, at: usize) -> Result<Head, super::backend::DbError> {
        Ok(Head {
            version: r.u64(at)?,
            value: r.text(at + 1)?,
            deleted: r.bool(at + 2)?,
            ttl: r.u64(at + 3)?,
            kv_type: KvType::parse(r.str(at + 4)?).unwrap_or_default(),
            description: r.text(at + 5)?,
        })
    }
}
