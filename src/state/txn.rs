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

/// The metadata of a write: set both (`put_typed`), or set the type and keep the key's
/// description (`put`, `put_as`).
#[derive(Clone, Copy)]
enum Meta<'a> {
    Set(&'a Typed),
    Keep(KvType),
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

    /// Record what the plan being applied learned (`super::fingerprint`): `changed` are the
    /// namespaces the plan changes, `writer` the writer it applies them as. Rows of changed
    /// namespaces are marked unverified now (outside any savepoint) and written again as the
    /// writer writes them; rows of namespaces read unchanged are written at commit; a write
    /// by any other writer marks its namespace's row unverified.
    /// `workspace_digest`: the workspace the plan was made from (recorded with the base).
    pub fn stage_fingerprints<'a>(
        &mut self,
        basis: &PlanBasis,
        changed: impl IntoIterator<Item = &'a str>,
        writer: &str,
        workspace_digest: Option<&str>,
    ) -> Result<(), StateError> {
        self.flush()?;
        if basis.full {
            self.conn.execute("DELETE FROM fingerprints", &[]).map_err(sql(&self.path, "reset fingerprints"))?;
            self.sink.fingerprints_emptied();
        }
        // The marks of planned namespaces keep a live namespace's row from ending absent (or
        // stale) when the job that changes it rolls back. A state with no row at all (a
        // bucket's first apply) has no live namespace: a rolled-back one ends not live, and
        // `finish` drops the rows of those anyway, so the marks would only be overwritten.
        let nothing_live = basis.full
            && !self
                .conn
                .query_one("SELECT EXISTS (SELECT 1 FROM latest)", &[], |r| r.bool(0))
                .map_err(sql(&self.path, "read state"))?;
        self.fp_written.clear();
        let mut staged = Staged {
            writer: writer.to_string(),
            workspace_digest: workspace_digest.map(str::to_string),
            units: basis.units.clone(),
            ..Default::default()
        };
        let changed: std::collections::BTreeSet<&str> = changed.into_iter().collect();
        let mut unverified: Vec<&str> = Vec::new();
        for (ns, d) in &basis.read {
            if changed.contains(ns.as_str()) {
                self.fp_written.remove(ns.as_str());
                if !nothing_live {
                    unverified.push(ns);
                }
                staged.on_write.insert(ns.clone(), *d);
                staged.planned.insert(ns.clone(), *d);
            } else {
                staged.on_commit.insert(ns.clone(), *d);
            }
        }
        // Changes the basis does not cover (a targeted apply records none): what they
        // write is not verified against any fingerprint, so the next plan must read it.
        for ns in changed.into_iter().filter(|ns| !basis.read.contains_key(*ns)) {
            unverified.push(ns);
            staged.foreign.insert(ns.to_string());
        }
        if basis.full && self.sink.bulk_fingerprints() {
            // The table was just emptied, so these are new rows: one COPY, not upserts.
            let rows: BTreeMap<String, fingerprint::Digest> =
                unverified.iter().map(|ns| (ns.to_string(), fingerprint::UNVERIFIED)).collect();
            self.send_fingerprints(rows)?;
        } else {
            for ns in unverified {
                self.put_fp(ns, &fingerprint::UNVERIFIED)?;
            }
        }
        self.staged = Some(staged);
        Ok(())
    }

    /// Keep the fingerprint rows true after a write to `ns` by `writer` (see
    /// [`Self::stage_fingerprints`]); nothing to do when no apply is staged.
    fn note_write(&mut self, ns: &str, writer: &str) -> Result<(), StateError> {
        let Some(staged) = self.staged.as_mut() else { return Ok(()) };
        if writer == staged.writer {
            if let Some(d) = staged.on_write.get(ns)
                && self.fp_written.get(ns) != Some(d)
            {
                let d = *d;
                self.put_fp(ns, &d)?;
                self.fp_written.insert(ns.to_string(), d);
            }
        } else {
            staged.on_write.remove(ns);
            staged.on_commit.remove(ns);
            staged.foreign.insert(ns.to_string());
            self.fp_written.remove(ns);
            self.put_fp(ns, &fingerprint::UNVERIFIED)?;
        }
        Ok(())
    }

    /// Write a fingerprint row (unless the sink holds it back).
    fn put_fp(&mut self, ns: &str, d: &fingerprint::Digest) -> Result<(), StateError> {
        if !self.flushing && self.sink.hold_fingerprint(ns, d) {
            return Ok(());
        }
        self.sink.fingerprint_may_exist(ns);
        fingerprint::put_row(&self.conn, &self.path, ns, d)
    }

    /// Send the held-back writes and savepoints, in the order they were made. Every method
    /// that reads or writes the database otherwise calls this first, so nothing ever sees
    /// the state without them. A held-back first version whose key turns out to exist
    /// (written in this transaction before it was held back) is written as [`Self::put`]
    /// would have written it.
    fn flush(&mut self) -> Result<(), StateError> {
        if self.flushing || self.sink.is_empty() {
            return Ok(());
        }
        self.flushing = true;
        let sent = self.send_held();
        self.flushing = false;
        sent
    }

    fn send_held(&mut self) -> Result<(), StateError> {
        for held in self.sink.drain() {
            match held {
                Held::Rows(rows) => self.send_rows(&rows)?,
                Held::Fingerprints(rows) => self.send_fingerprints(rows)?,
                Held::Savepoint => {
                    let sp = self.savepoints.iter_mut().find(|s| s.held).expect("the sink held a savepoint back");
                    let q = savepoint_name(&sp.name)?;
                    self.conn.batch(&format!("SAVEPOINT {q}")).map_err(sql(&self.path, "savepoint"))?;
                    // What it restores: everything before it is sent now, so counted.
                    sp.held = false;
                    sp.counts = self.counts;
                }
            }
        }
        Ok(())
    }

    fn send_rows(&mut self, rows: &[NewRow]) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let conflicts = bulk::insert_first(&self.conn, &self.path, rows, self.next_serial() as i64)?;
        for r in rows {
            self.sink.touch(&r.namespace);
        }
        self.counts.added += (rows.len() - conflicts.len()) as u64;
        for i in conflicts {
            let r = &rows[i];
            self.write(&r.namespace, &r.key, &r.value, r.ttl as u64, &r.writer, r.now, Meta::Keep(r.kv_type))?;
        }
        Ok(())
    }

    /// Fingerprint rows known absent go in by one bulk insert, the others by upsert.
    fn send_fingerprints(&mut self, rows: BTreeMap<String, fingerprint::Digest>) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (mut again, mut new) = (Vec::new(), Vec::new());
        for (n, d) in &rows {
            if self.sink.fingerprint_may_exist(n) {
                again.push((n.as_str(), d));
            } else {
                new.push((n.as_str(), d));
            }
        }
        bulk::insert_fingerprints(&self.conn, &self.path, &new)?;
        bulk::put_fingerprints(&self.conn, &self.path, &again)
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
        // `put_new`'s caller vouched that it had none (the apply's plan, read under this
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

    /// Append a version unless identical (value and ttl) to the live latest row. Revives a
    /// tombstone. The value is trimmed. In `secrets/*` namespaces `value` is plaintext and
    /// is sealed here for the new version. An untyped write is a `string` write that keeps
    /// the key's description ([`Self::put_typed`] sets both).
    pub fn put(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(ns, key, value, ttl, writer, now, Meta::Keep(KvType::String))
    }

    /// [`Self::put`] with a type, keeping the key's description: the apply's write of an
    /// HCL-typed key (the workspace owns the value and type, an operator the description).
    #[allow(clippy::too_many_arguments)]
    pub fn put_as(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        kv_type: KvType,
    ) -> Result<WriteOutcome, StateError> {
        check_type(kv_type, ns, key, value)?;
        self.write(ns, key, value, ttl, writer, now, Meta::Keep(kv_type))
    }

    /// [`Self::put`] with a type and description (SPEC §9). The value is validated against
    /// the type first; nothing is written when it does not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn put_typed(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        typed: &Typed,
    ) -> Result<WriteOutcome, StateError> {
        check_type(typed.kv_type, ns, key, value)?;
        self.write(ns, key, value, ttl, writer, now, Meta::Set(typed))
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        typed: Meta<'_>,
    ) -> Result<WriteOutcome, StateError> {
        self.flush()?;
        check_name("namespace", ns)?;
        check_name("key", key)?;
        refuse_derived(ns, key)?;
        // What both backends can store, whoever writes (the doors check more, first).
        let description = match typed {
            Meta::Set(t) => t.description.as_str(),
            Meta::Keep(_) => "",
        };
        crate::kv::validate::check_storable(ns, key, value, ttl, description).map_err(StateError::Refused)?;
        self.touch(ns);
        let value = value.trim();
        let secret = is_secret_key(ns, key);
        let head = self.head(ns, key)?;
        let meta = match (typed, &head) {
            (Meta::Set(t), _) => t.clone(),
            (Meta::Keep(kv_type), Some(h)) => Typed { kv_type, description: h.description.clone() },
            (Meta::Keep(kv_type), None) => Typed { kv_type, description: String::new() },
        };
        if let Some(h) = &head
            && !h.deleted
            && h.ttl == ttl
            && h.kv_type == meta.kv_type
            && h.description == meta.description
        {
            let same = if secret {
                // A stored value that does not open (a damaged row) equals nothing: writing
                // over it is its repair (SPEC §8 re-issues such a certificate key).
                self.need_keyring(ns, key)?.open(ns, key, h.version, &h.value).is_ok_and(|p| p.as_str() == value)
            } else {
                h.value == value
            };
            if same {
                self.note_write(ns, writer)?;
                return Ok(WriteOutcome::Unchanged { version: h.version });
            }
        }
        let version = head.as_ref().map_or(1, |h| h.version + 1);
        let sealed;
        let stored = if secret {
            sealed = self.need_keyring(ns, key)?.seal(ns, key, version, value)?;
            sealed.as_str()
        } else {
            value
        };
        self.note_write(ns, writer)?;
        let outcome = match head {
            None => {
                self.insert_first(ns, key, stored, ttl, writer, now, &meta)?;
                WriteOutcome::Created { version }
            }
            Some(h) => {
                self.append(ns, key, version, stored, false, ttl, writer, now, &meta)?;
                if h.deleted {
                    self.counts.added += 1;
                    WriteOutcome::Revived { version }
                } else {
                    self.counts.changed += 1;
                    WriteOutcome::Updated { version }
                }
            }
        };
        Ok(outcome)
    }

    /// [`Self::put`] for a key the caller expects to be absent (a plan's create of a key
    /// with no row): one insert instead of a read then an insert, which halves the B-tree
    /// work of a first apply. If the key exists after all (a hook wrote it meanwhile), or
    /// the namespace holds secrets, this is exactly `put`.
    pub fn put_new(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.put_new_as(ns, key, value, ttl, writer, now, KvType::String)
    }

    /// [`Self::put_new`] with a type, as [`Self::put_as`] is `put` with one.
    #[allow(clippy::too_many_arguments)]
    pub fn put_new_as(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        kv_type: KvType,
    ) -> Result<WriteOutcome, StateError> {
        if is_secret_key(ns, key) {
            return self.put_as(ns, key, value, ttl, writer, now, kv_type);
        }
        check_type(kv_type, ns, key, value)?;
        check_name("namespace", ns)?;
        check_name("key", key)?;
        refuse_derived(ns, key)?;
        crate::kv::validate::check_storable(ns, key, value, ttl, "").map_err(StateError::Refused)?;
        if self.sink.would_hold(ns, key) {
            // Held back and sent in bulk: one statement per few thousand keys instead of a
            // round trip per key, in a namespace this transaction has not written yet (the
            // caller's "no row" holds there unless the key existed before the transaction:
            // then `flush` writes it as `put` does and the audit counts say so, but this
            // returns `Created`).
            let value = value.trim();
            self.forget_head(ns, key);
            self.sink.hold(NewRow {
                namespace: ns.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                ttl: ttl as i64,
                writer: writer.to_string(),
                now,
                kv_type,
            });
            self.note_write(ns, writer)?;
            if self.sink.full() {
                self.flush()?;
            }
            return Ok(WriteOutcome::Created { version: 1 });
        }
        self.flush()?;
        let meta = Typed { kv_type, description: String::new() };
        if !self.insert_first(ns, key, value.trim(), ttl, writer, now, &meta)? {
            return self.put_as(ns, key, value, ttl, writer, now, kv_type);
        }
        self.note_write(ns, writer)?;
        Ok(WriteOutcome::Created { version: 1 })
    }

    /// Version 1 of a key that has no row; `false` (nothing written) when it has one.
    #[allow(clippy::too_many_arguments)]
    fn insert_first(
        &mut self,
        ns: &str,
        key: &str,
        stored: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        meta: &Typed,
    ) -> Result<bool, StateError> {
        self.forget_head(ns, key);
        let serial = self.next_serial() as i64;
        let inserted = self
            .conn
            .execute(
                "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                                     type, description, key_created_at)
                 VALUES (?1, ?2, 1, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?5) ON CONFLICT (namespace, key) DO NOTHING",
                vals![ns, key, stored, ttl as i64, now, serial, writer, meta.kv_type.as_str(), &meta.description],
            )
            .map_err(sql(&self.path, "write key"))?;
        if inserted > 0 {
            self.counts.added += 1;
        }
        Ok(inserted > 0)
    }

    /// Tombstone a live key (a new version with `deleted = 1`). `false` if the key was
    /// absent or already tombstoned.
    pub fn tombstone(&mut self, ns: &str, key: &str, writer: &str, now: i64) -> Result<bool, StateError> {
        self.flush()?;
        self.touch(ns);
        match self.head(ns, key)? {
            Some(h) if !h.deleted => {
                self.note_write(ns, writer)?;
                // A tombstone keeps the key's type and description (a revival shows them).
                let meta = Typed { kv_type: h.kv_type, description: h.description };
                self.append(ns, key, h.version + 1, "", true, 0, writer, now, &meta)?;
                self.counts.destroyed += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
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

    /// Tombstone every live key of a namespace. Returns how many keys were tombstoned.
    pub fn purge_namespace(&mut self, ns: &str, writer: &str, now: i64) -> Result<usize, StateError> {
        self.flush()?;
        let keys: Vec<String> = self
            .conn
            .query_map("SELECT key FROM latest WHERE namespace = ?1 AND deleted = 0 ORDER BY key", vals![ns], |r| {
                r.text(0)
            })
            .map_err(sql(&self.path, "list namespace"))?;
        for key in &keys {
            self.tombstone(ns, key, writer, now)?;
        }
        Ok(keys.len())
    }

    /// Re-seal every secret row (all versions) under the keyring's current key; the keyring
    /// must also hold the key(s) the rows were sealed with. Used by `secrets rotate-key`.
    pub fn reseal_secrets(&mut self) -> Result<u64, StateError> {
        self.flush()?;
        self.heads.clear();
        let mut n = 0;
        for table in ["latest", "history"] {
            let rows: Vec<(String, String, i64, String)> = self
                .conn
                .query_map(
                    &format!(
                        "SELECT namespace, key, version, value FROM {table} WHERE {} AND deleted = 0",
                        self.conn.secret_rows()
                    ),
                    &[],
                    |r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?, r.text(3)?)),
                )
                .map_err(sql(&self.path, "read secrets"))?;
            let update = format!("UPDATE {table} SET value = ?4 WHERE namespace = ?1 AND key = ?2 AND version = ?3");
            for (ns, key, version, stored) in rows {
                let ring = self.need_keyring(&ns, &key)?;
                let plain = ring.open(&ns, &key, version as u64, &stored)?;
                let sealed = ring.seal(&ns, &key, version as u64, &plain)?;
                self.conn
                    .execute(&update, vals![&ns, &key, version, sealed.as_str()])
                    .map_err(sql(&self.path, "reseal secret"))?;
                n += 1;
            }
        }
        self.counts.resealed += n;
        Ok(n)
    }

    pub fn savepoint(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        // Read-ahead rows live within one step of the executor (a batch, a job's own
        // namespaces); dropping them at every savepoint keeps them from outliving it.
        self.heads.clear();
        let held = self.sink.hold_savepoint();
        if !held {
            self.conn.batch(&format!("SAVEPOINT {q}")).map_err(sql(&self.path, "savepoint"))?;
        }
        self.savepoints.push(Savepoint { name: name.to_string(), counts: self.counts, held });
        Ok(())
    }

    pub fn release(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        self.heads.clear();
        let Some(i) = self.savepoints.iter().rposition(|s| s.name == name) else {
            // Not ours: the server says what is wrong with it.
            self.flush()?;
            return self.conn.batch(&format!("RELEASE {q}")).map_err(sql(&self.path, "release savepoint"));
        };
        let released = self.savepoints.split_off(i);
        let held = released.iter().filter(|s| s.held).count();
        if held > 0 {
            self.sink.release_held(held);
        }
        if !released[0].held {
            self.conn.batch(&format!("RELEASE {q}")).map_err(sql(&self.path, "release savepoint"))?;
        }
        Ok(())
    }

    /// Undo everything since the savepoint `name`, and release it.
    pub fn rollback_to(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        let Some(i) = self.savepoints.iter().rposition(|s| s.name == name) else {
            self.flush()?;
            return self
                .conn
                .batch(&format!("ROLLBACK TO {q}; RELEASE {q}"))
                .map_err(sql(&self.path, "roll back to savepoint"));
        };
        let mut undone = self.savepoints.split_off(i);
        let held = undone.iter().filter(|s| s.held).count();
        let sp = undone.swap_remove(0);
        if sp.held {
            // Nothing since it reached the server: drop what was held back after it.
            self.sink.rollback_held(held);
        } else {
            // Everything held back now came after it (a flush sends all savepoints).
            self.sink.discard();
            self.conn
                .batch(&format!("ROLLBACK TO {q}; RELEASE {q}"))
                .map_err(sql(&self.path, "roll back to savepoint"))?;
        }
        // What the fingerprint rows and read-ahead heads hold after the rollback is not
        // tracked: forget all.
        self.fp_written.clear();
        self.heads.clear();
        self.counts = sp.counts;
        Ok(())
    }

    /// Commit. When anything was written or removed: serial + 1, the audit record, and the
    /// lock record. A failed apply that wrote nothing still leaves its audit record. Commits
    /// with `synchronous=FULL`. Returns the state's serial after the commit.
    pub fn commit(mut self, record: ApplyRecord) -> Result<u64, StateError> {
        // Interrupted (`super::interrupt`): refuse, and the drop rolls back.
        let _gate = super::interrupt::commit_gate().map_err(|signal| StateError::Interrupted { signal })?;
        self.flush()?;
        let changed = self.counts.any();
        let serial = if changed { self.next_serial() } else { self.base_serial };
        if let Some(staged) = self.staged.take() {
            fingerprint::finish(&self.conn, &self.path, staged, serial)?;
        }
        if changed {
            self.conn
                .execute("UPDATE meta SET serial = ?1 WHERE id = 1", vals![serial as i64])
                .map_err(sql(&self.path, "bump serial"))?;
            let h = &self.lock.holder;
            self.conn
                .execute(
                    "INSERT INTO lock (id, lock_id, actor, pid, operation, since) VALUES (1, ?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET lock_id = excluded.lock_id, actor = excluded.actor,
                        pid = excluded.pid, operation = excluded.operation, since = excluded.since",
                    vals![&h.lock_id, &h.actor, h.pid as i64, &h.operation, h.since],
                )
                .map_err(sql(&self.path, "write lock record"))?;
        }
        if changed || record.status != ApplyStatus::Success {
            let c = self.counts;
            self.conn
                .execute(
                    "INSERT INTO applies (serial, operation, actor, tool_version, started_at, finished_at, duration_ms,
                                          added, changed, destroyed, removed, resealed, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    vals![
                        serial as i64,
                        &record.operation,
                        &record.actor,
                        env!("CARGO_PKG_VERSION"),
                        record.started_at,
                        record.finished_at,
                        self.began.elapsed().as_millis() as i64,
                        c.added as i64,
                        c.changed as i64,
                        c.destroyed as i64,
                        c.removed as i64,
                        c.resealed as i64,
                        record.status.as_str(),
                    ],
                )
                .map_err(sql(&self.path, "write audit record"))?;
        }
        if !self.lock.still_held() {
            // The lock's connection died (PostgreSQL released the lock with it): another
            // writer may be in; committing now could interleave two change sets.
            return Err(StateError::Config(format!(
                "state {}: the write lock was lost (its database connection closed); nothing was committed\n  help: run the command again",
                self.path.display()
            )));
        }
        self.conn.batch("COMMIT").map_err(sql(&self.path, "commit"))?;
        self.finished = true;
        super::interrupt::note_commit(serial);
        Ok(serial)
    }

    /// Discard every write of this transaction and release the lock.
    pub fn rollback(mut self) -> Result<(), StateError> {
        self.finished = true;
        self.conn.batch("ROLLBACK").map_err(sql(&self.path, "roll back"))
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

    /// Move the latest row of an existing key to history, write `version` as the latest and
    /// trim history to `max_versions` rows in all.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        ns: &str,
        key: &str,
        version: u64,
        stored: &str,
        deleted: bool,
        ttl: u64,
        writer: &str,
        now: i64,
        meta: &Typed,
    ) -> Result<(), StateError> {
        self.forget_head(ns, key);
        let v = NextVersion {
            ns,
            key,
            version: version as i64,
            stored,
            deleted,
            ttl: ttl as i64,
            now,
            serial: self.next_serial() as i64,
            writer,
            kv_type: meta.kv_type.as_str(),
            description: &meta.description,
            max_versions: self.max_versions,
        };
        self.sink.append(&self.conn, &v).map_err(sql(&self.path, "write key"))
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
