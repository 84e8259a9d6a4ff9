//! The state store through its library API: versions, tombstones, trimming, serials,
//! savepoints, locking, secrets at rest, file modes, schema refusal, GC, check, backup.

use kvform::kv::Entry;
use kvform::secrets::Keyring;
use kvform::state::Write;
use kvform::state::{
    ApplyRecord, ApplyStatus, InitOutcome, Location, PgLocation, StateError, StateStore, WriteOutcome, WriteTxn,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "tf_support/mod.rs"]
mod tf_support;

const NOW: i64 = 1_767_323_045; // 2026-01-02T03:04:05Z
const NS: &str = "vars/job/api";

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/kvform.db");
    let (_, outcome) = StateStore::init(&path, 1767323045).unwrap();
    assert_eq!(outcome, InitOutcome::Created);
    (dir, path)
}

/// A state to open: an SQLite path, or a [`Location`] (the tests that run on both backends).
trait Opens {
    fn location(&self) -> Location;
}
impl Opens for Path {
    fn location(&self) -> Location {
        Location::Sqlite(self.to_path_buf())
    }
}
impl Opens for PathBuf {
    fn location(&self) -> Location {
        Location::Sqlite(self.clone())
    }
}
impl Opens for Location {
    fn location(&self) -> Location {
        self.clone()
    }
}

fn open(at: &(impl Opens + ?Sized)) -> Result<StateStore, StateError> {
    at.location().open()
}

/// A new state on SQLite (the tempdir holds it).
fn fresh_sqlite() -> (tempfile::TempDir, Location) {
    let (d, path) = fresh();
    (d, Location::Sqlite(path))
}

/// A new state on PostgreSQL in a registry schema of its own, and the guard that drops it;
/// `None` without a database.
fn fresh_pg(test: &str) -> Option<(tf_support::DropRegistry, (tempfile::TempDir, Location))> {
    tf_support::pg_url(test)?;
    let schema = format!("kvs_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let registry = tf_support::DropRegistry(schema.clone());
    let loc = Location::Postgres(PgLocation { url_env: "KVFORM_TEST_PG_URL".into(), schema, bucket_id: None });
    let (_, outcome, id) = loc.init(1767323045).unwrap();
    assert_eq!(outcome, InitOutcome::Created);
    let Location::Postgres(pg) = loc else { unreachable!() };
    Some((registry, (tempfile::tempdir().unwrap(), Location::Postgres(PgLocation { bucket_id: id, ..pg }))))
}

/// `$body` as a test on SQLite and one on PostgreSQL.
macro_rules! both {
    ($sqlite:ident, $pg:ident, $body:ident) => {
        #[test]
        fn $sqlite() {
            $body(fresh_sqlite());
        }
        #[test]
        fn $pg() {
            // `_registry` lives until the body returned: the schemas go afterwards.
            if let Some((_registry, f)) = fresh_pg(stringify!($pg)) {
                $body(f);
            }
        }
    };
}

fn txn(path: &(impl Opens + ?Sized)) -> WriteTxn {
    open(path).unwrap().begin_write("test", Duration::ZERO, 1767323045).unwrap()
}

fn versions(path: &(impl Opens + ?Sized), ns: &str, key: &str) -> Vec<(u64, String, bool)> {
    open(path).unwrap().history(ns, key).unwrap().into_iter().map(|r| (r.version, r.value, r.deleted)).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn versions_tombstones_and_revival_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    assert_eq!(t.put(Write::new(NS, "a", " one ", "test", NOW)).unwrap(), WriteOutcome::Created { version: 1 });
    assert_eq!(t.put(Write::new(NS, "a", "two", "test", NOW)).unwrap(), WriteOutcome::Updated { version: 2 });
    assert_eq!(
        t.put(Write::new(NS, "a", "two ", "test", NOW)).unwrap(),
        WriteOutcome::Unchanged { version: 2 },
        "trimmed value is identical"
    );
    assert_eq!(
        t.put(Write::new(NS, "a", "two", "test", NOW).ttl(60)).unwrap(),
        WriteOutcome::Updated { version: 3 },
        "a ttl change is a change"
    );
    assert!(t.tombstone(NS, "a", "test", NOW).unwrap());
    assert!(!t.tombstone(NS, "a", "test", NOW).unwrap(), "already tombstoned");
    assert!(!t.tombstone(NS, "missing", "test", NOW).unwrap());
    assert!(t.get(NS, "a").unwrap().unwrap().deleted, "the transaction sees its own writes");
    assert_eq!(t.put(Write::new(NS, "a", "two", "test", NOW).ttl(60)).unwrap(), WriteOutcome::Revived { version: 5 });
    assert_eq!(t.commit(ApplyRecord::new("test", NOW)).unwrap(), 1);
    assert_eq!(
        versions(&path, NS, "a"),
        vec![
            (1, "one".into(), false),
            (2, "two".into(), false),
            (3, "two".into(), false),
            (4, "".into(), true),
            (5, "two".into(), false)
        ]
    );
    let s = open(&path).unwrap();
    let e = s.get(NS, "a").unwrap().unwrap();
    assert_eq!(
        e,
        Entry {
            value: "two".into(),
            version: 5,
            deleted: false,
            ttl: 60,
            created_at: NOW,
            serial: 1,
            writer: "test".into()
        }
    );
    let audit = s.audit(10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].serial, audit[0].added, audit[0].changed, audit[0].destroyed), (1, 2, 2, 1));
    assert!(kvform::state::check::check(&s).unwrap().ok());
}
both!(versions_tombstones_and_revival, versions_tombstones_and_revival_on_postgres, versions_tombstones_and_revival_on);

fn serial_bumps_only_on_change_and_identical_writes_are_noops_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    t.put(Write::new(NS, "k", "v", "test", NOW)).unwrap();
    assert_eq!(t.commit(ApplyRecord::new("test", NOW)).unwrap(), 1);
    let mut t = txn(&path);
    assert!(!t.put(Write::new(NS, "k", "v", "test", NOW)).unwrap().changed());
    assert_eq!(t.commit(ApplyRecord::new("noop", NOW)).unwrap(), 1, "nothing changed, serial stays");
    let mut t = txn(&path);
    t.put(Write::new(NS, "k", "w", "test", NOW)).unwrap();
    assert_eq!(t.commit(ApplyRecord::new("test", NOW)).unwrap(), 2);
    // A failed apply that wrote nothing is still audited.
    let t = txn(&path);
    let mut rec = ApplyRecord::new("apply", NOW);
    rec.status = ApplyStatus::Failed;
    assert_eq!(t.commit(rec).unwrap(), 2);
    let s = open(&path).unwrap();
    assert_eq!(s.meta().unwrap().serial, 2);
    let audit = s.audit(10).unwrap();
    assert_eq!(
        audit.iter().map(|a| (a.serial, a.status.as_str())).collect::<Vec<_>>(),
        vec![(2, "failed"), (2, "success"), (1, "success")]
    );
}
both!(
    serial_bumps_only_on_change_and_identical_writes_are_noops,
    serial_bumps_only_on_change_and_identical_writes_are_noops_on_postgres,
    serial_bumps_only_on_change_and_identical_writes_are_noops_on
);

fn purge_tombstones_only_live_keys_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    for k in ["a", "b", "c"] {
        t.put(Write::new(NS, k, "v", "test", NOW)).unwrap();
    }
    t.put(Write::new("vars/job/other", "a", "v", "test", NOW)).unwrap();
    t.tombstone(NS, "b", "test", NOW).unwrap();
    assert_eq!(t.purge_namespace(NS, "test", NOW).unwrap(), 2);
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let s = open(&path).unwrap();
    assert_eq!(s.get(NS, "a").unwrap().unwrap().version, 2);
    assert_eq!(s.get(NS, "b").unwrap().unwrap().version, 2, "an already tombstoned key gets no second tombstone");
    assert_eq!(s.get(NS, "c").unwrap().unwrap().version, 2);
    assert!(s.get("vars/job/other", "a").unwrap().unwrap().is_live());
}
both!(purge_tombstones_only_live_keys, purge_tombstones_only_live_keys_on_postgres, purge_tombstones_only_live_keys_on);

fn history_is_trimmed_to_max_versions_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    t.set_max_versions(3);
    for i in 1..=7 {
        t.put(Write::new(NS, "k", &format!("v{i}"), "test", NOW)).unwrap();
    }
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let v: Vec<u64> = versions(&path, NS, "k").into_iter().map(|r| r.0).collect();
    assert_eq!(v, vec![5, 6, 7]);
    assert!(kvform::state::check::check(&open(&path).unwrap()).unwrap().ok());
}
both!(
    history_is_trimmed_to_max_versions,
    history_is_trimmed_to_max_versions_on_postgres,
    history_is_trimmed_to_max_versions_on
);

fn savepoints_undo_writes_and_counts_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    t.put(Write::new(NS, "keep", "v", "test", NOW)).unwrap();
    t.savepoint("wave_1").unwrap();
    t.put(Write::new(NS, "undo", "v", "test", NOW)).unwrap();
    t.put(Write::new(NS, "keep", "changed", "test", NOW)).unwrap();
    t.rollback_to("wave_1").unwrap();
    assert!(t.get(NS, "undo").unwrap().is_none());
    t.savepoint("wave_2").unwrap();
    t.put(Write::new(NS, "kept", "v", "test", NOW)).unwrap();
    t.release("wave_2").unwrap();
    assert!(t.savepoint("bad name;").is_err());
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let s = open(&path).unwrap();
    assert_eq!(s.get(NS, "keep").unwrap().unwrap().value, "v");
    assert!(s.get(NS, "kept").unwrap().is_some());
    assert_eq!(s.audit(1).unwrap()[0].added, 2);
    assert_eq!(s.audit(1).unwrap()[0].changed, 0);
}
both!(
    savepoints_undo_writes_and_counts,
    savepoints_undo_writes_and_counts_on_postgres,
    savepoints_undo_writes_and_counts_on
);

/// `put_new` and savepoints together. On PostgreSQL both are held back and sent in bulk
/// (a savepoint only once something after it must reach the server), so this walks every
/// way held-back work can end: read while held, sent by a direct write, sent by the size
/// limit, rolled back while held or after being sent, released.
fn held_back_creates_and_savepoints_on((_d, path): (tempfile::TempDir, Location)) {
    let (web, db, gone, bulk) = ("vars/job/web", "vars/job/db", "vars/job/gone", "vars/job/bulk");
    let mut t = txn(&path);
    t.put(Write::new(NS, "before", "1", "test", NOW).expect_new()).unwrap();
    t.savepoint("job_0").unwrap();
    t.put(Write::new(web, "a", "1", "test", NOW).expect_new()).unwrap();
    t.put(Write::new(NS, "in_job0", "x", "test", NOW).expect_new()).unwrap();
    // A held-back key reads as written; another key reads from the state.
    let e = t.get(NS, "in_job0").unwrap().unwrap();
    assert_eq!((e.value.as_str(), e.version, e.deleted, e.writer.as_str()), ("x", 1, false, "test"));
    assert!(t.get(NS, "absent").unwrap().is_none());
    t.savepoint("job_1").unwrap();
    t.put(Write::new(web, "b", "2", "test", NOW).expect_new()).unwrap();
    // A direct write sends what is held, both savepoints included, in order.
    t.put(Write::new(web, "direct", "d", "test", NOW)).unwrap();
    t.put(Write::new(db, "c", "3", "test", NOW).expect_new()).unwrap();
    t.rollback_to("job_1").unwrap();
    assert!(t.get(web, "b").unwrap().is_none());
    assert!(t.get(web, "direct").unwrap().is_none());
    assert!(t.get(db, "c").unwrap().is_none());
    assert_eq!(t.get(web, "a").unwrap().unwrap().value, "1");
    t.release("job_0").unwrap();
    t.savepoint("job_2").unwrap();
    t.put(Write::new(db, "kept", "k", "test", NOW).expect_new()).unwrap();
    t.release("job_2").unwrap();
    // Rolled back while still held.
    t.savepoint("job_3").unwrap();
    t.put(Write::new(gone, "g", "g", "test", NOW).expect_new()).unwrap();
    t.rollback_to("job_3").unwrap();
    assert!(t.get(gone, "g").unwrap().is_none());
    // More than the held-back limit: sent part way, then rolled back.
    t.savepoint("job_4").unwrap();
    for i in 0..10_050 {
        t.put(Write::new(bulk, &format!("k{i}"), "v", "test", NOW).expect_new()).unwrap();
    }
    t.rollback_to("job_4").unwrap();
    // A typed create is held back too, with its type.
    t.savepoint("job_5").unwrap();
    t.put(Write::new(db, "port", "8080", "test", NOW).typed(kvform::kv::KvType::Number).expect_new()).unwrap();
    assert!(
        t.put(Write::new(db, "bad", "eighty", "test", NOW).typed(kvform::kv::KvType::Number).expect_new()).is_err()
    );
    t.release("job_5").unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();

    let s = open(&path).unwrap();
    for (ns, key, value) in
        [(NS, "before", "1"), (web, "a", "1"), (NS, "in_job0", "x"), (db, "kept", "k"), (db, "port", "8080")]
    {
        let e = s.get(ns, key).unwrap().unwrap_or_else(|| panic!("{ns}/{key} is missing"));
        assert_eq!((e.value.as_str(), e.version), (value, 1), "{ns}/{key}");
    }
    assert_eq!(s.key_meta(db, "port").unwrap().unwrap().kv_type, kvform::kv::KvType::Number);
    for (ns, key) in [(web, "b"), (web, "direct"), (db, "c"), (gone, "g"), (bulk, "k0"), (bulk, "k10049"), (db, "bad")]
    {
        assert!(s.get(ns, key).unwrap().is_none(), "{ns}/{key} should have been rolled back");
    }
    assert_eq!(s.audit(1).unwrap()[0].added, 5);
    assert_eq!(s.audit(1).unwrap()[0].changed, 0);
}
both!(
    held_back_creates_and_savepoints,
    held_back_creates_and_savepoints_on_postgres,
    held_back_creates_and_savepoints_on
);

fn rollback_and_drop_discard_everything_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    t.put(Write::new(NS, "a", "v", "test", NOW)).unwrap();
    t.rollback().unwrap();
    let mut t = txn(&path);
    t.put(Write::new(NS, "b", "v", "test", NOW)).unwrap();
    drop(t);
    let s = open(&path).unwrap();
    assert_eq!(s.snapshot().unwrap().entries.len(), 0);
    assert_eq!(s.meta().unwrap().serial, 0);
}
both!(
    rollback_and_drop_discard_everything,
    rollback_and_drop_discard_everything_on_postgres,
    rollback_and_drop_discard_everything_on
);

fn write_txn_can_move_to_another_thread_on((_d, path): (tempfile::TempDir, Location)) {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<WriteTxn>();
    let t = std::sync::Arc::new(std::sync::Mutex::new(txn(&path)));
    let t2 = t.clone();
    std::thread::spawn(move || t2.lock().unwrap().put(Write::new(NS, "from-thread", "v", "hook", NOW)).unwrap())
        .join()
        .unwrap();
    let t = std::sync::Arc::try_unwrap(t).unwrap().into_inner().unwrap();
    assert_eq!(t.commit(ApplyRecord::new("test", NOW)).unwrap(), 1);
}
both!(
    write_txn_can_move_to_another_thread,
    write_txn_can_move_to_another_thread_on_postgres,
    write_txn_can_move_to_another_thread_on
);

#[test]
fn second_writer_is_refused_with_the_holder_or_waits() {
    let (_d, path) = fresh();
    let holder = StateStore::open(&path).unwrap().begin_write("apply", Duration::ZERO, 1767323045).unwrap();
    let err = StateStore::open(&path).unwrap().begin_write("kv set", Duration::ZERO, 1767323045).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StateError::Locked { .. }), "{msg}");
    assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
    assert!(msg.contains("`apply`"), "{msg}");
    assert!(msg.contains(&holder.lock_holder().lock_id), "{msg}");
    // Readers are never blocked by the writer.
    StateStore::open(&path).unwrap().snapshot().unwrap();
    // A waiting writer gets the lock once the holder finishes.
    let p2 = path.clone();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        let t = StateStore::open(&p2).unwrap().begin_write("kv set", Duration::from_secs(20), 1767323045).unwrap();
        (start.elapsed(), t.commit(ApplyRecord::new("kv set", NOW)).unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut holder = holder;
    holder.put(Write::new(NS, "a", "v", "test", NOW)).unwrap();
    holder.commit(ApplyRecord::new("apply", NOW)).unwrap();
    let (waited, serial) = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert_eq!(serial, 1);
}

#[test]
fn force_unlock_refuses_a_live_holder_and_unknown_ids() {
    let (_d, path) = fresh();
    let t = txn(&path);
    let id = t.lock_holder().lock_id.clone();
    let err = kvform::state::lock::force_unlock(&path, &id).unwrap_err();
    assert!(matches!(err, StateError::LockHeldByLiveProcess { .. }), "{err}");
    let err = kvform::state::lock::force_unlock(&path, "nope").unwrap_err();
    assert!(matches!(err, StateError::NoSuchLock { .. }), "{err}");
    drop(t);
    assert_eq!(kvform::state::lock::status(&path).unwrap().0, None, "released on drop");
}

fn secret_store(dir: &Path) -> (PathBuf, kvform::bucket::Bucket) {
    let b = kvform::bucket::Bucket::at(dir);
    Keyring::create(&b).unwrap();
    (dir.join("data/kvform.db"), b)
}

#[test]
fn secrets_are_sealed_at_rest_and_bound_to_their_row() {
    let (dir, _) = fresh();
    let (path, b) = secret_store(dir.path());
    let plaintext = "PLAINTEXT-hunter2-should-never-hit-disk";
    let open = || StateStore::open(&path).unwrap().with_keyring(Keyring::load(&b).unwrap());
    let mut t = open().begin_write("test", Duration::ZERO, 1767323045).unwrap();
    t.put(Write::new("secrets/job/api", "token", plaintext, "test", NOW)).unwrap();
    t.put(Write::new("secrets/job/api", "other", "x", "test", NOW)).unwrap();
    assert_eq!(
        t.put(Write::new("secrets/job/api", "token", plaintext, "test", NOW)).unwrap(),
        WriteOutcome::Unchanged { version: 1 }
    );
    t.put(Write::new("secrets/job/api", "token", &format!("{plaintext}-2"), "test", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();

    let s = open();
    let e = s.get("secrets/job/api", "token").unwrap().unwrap();
    assert!(!e.value.contains("hunter2"));
    let ring = s.keyring().unwrap();
    assert_eq!(ring.open("secrets/job/api", "token", e.version, &e.value).unwrap().as_str(), format!("{plaintext}-2"));
    let old = &s.history("secrets/job/api", "token").unwrap()[0];
    assert_eq!(ring.open("secrets/job/api", "token", 1, &old.value).unwrap().as_str(), plaintext);
    // Copied to another key or version: refused, naming the key.
    let other = s.get("secrets/job/api", "other").unwrap().unwrap();
    let err = ring.open("secrets/job/api", "token", other.version, &other.value).unwrap_err().to_string();
    assert!(err.contains("secrets/job/api token") && !err.contains("hunter2"), "{err}");
    assert!(ring.open("secrets/job/api", "token", 1, &e.value).is_err());
    assert!(kvform::state::check::check(&s).unwrap().ok());
    assert!(!format!("{s:?} {e:?}").contains("hunter2"));
    drop(s);
    // Not in any file of the state.
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"));
    }
    // Writing a secret without the keyring is refused, not stored in the clear.
    let mut t = StateStore::open(&path).unwrap().begin_write("test", Duration::ZERO, 1767323045).unwrap();
    assert!(matches!(t.put(Write::new("secrets/job/api", "x", "y", "t", NOW)), Err(StateError::NoKeyring { .. })));
}

#[test]
fn rotation_reseals_every_version() {
    let (dir, _) = fresh();
    let (path, b) = secret_store(dir.path());
    let mut t = StateStore::open(&path)
        .unwrap()
        .with_keyring(Keyring::load(&b).unwrap())
        .begin_write("t", Duration::ZERO, 1767323045)
        .unwrap();
    t.put(Write::new("secrets/job/api", "token", "v1", "t", NOW)).unwrap();
    t.put(Write::new("secrets/job/api", "token", "v2", "t", NOW)).unwrap();
    t.tombstone("secrets/job/api", "token", "t", NOW).unwrap();
    t.commit(ApplyRecord::new("t", NOW)).unwrap();
    let old_id = Keyring::load(&b).unwrap().current_key_id().to_string();

    let (rot, ring) = kvform::secrets::Rotation::prepare(&b).unwrap();
    let new_id = rot.new_key_id().to_string();
    let mut t =
        StateStore::open(&path).unwrap().with_keyring(ring).begin_write("rotate", Duration::ZERO, 1767323045).unwrap();
    assert_eq!(t.reseal_secrets().unwrap(), 2);
    t.commit(ApplyRecord::new("secrets rotate-key", NOW)).unwrap();
    rot.finish().unwrap();
    let s = StateStore::open(&path).unwrap();
    let h = s.history("secrets/job/api", "token").unwrap();
    for row in h.iter().filter(|r| !r.deleted) {
        assert!(row.value.contains(&new_id) && !row.value.contains(&old_id), "{}", row.value);
    }
    let only_new = Keyring::load(&b).unwrap();
    std::fs::remove_file(b.old_key_file()).unwrap();
    assert_eq!(only_new.open("secrets/job/api", "token", 1, &h[0].value).unwrap().as_str(), "v1");
}

#[test]
fn files_are_private() {
    let (dir, path) = fresh();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let mut t = txn(&path);
    t.put(Write::new(NS, "a", "v", "t", NOW)).unwrap();
    t.commit(ApplyRecord::new("t", NOW)).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    assert_eq!(mode(&kvform::state::lock::lock_path(&path)), 0o600);
    let backup = dir.path().join("b.db");
    kvform::state::backup::backup(&StateStore::open(&path).unwrap(), &backup).unwrap();
    assert_eq!(mode(&backup), 0o600);
}

#[test]
fn missing_foreign_and_old_states_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("data/kvform.db");
    let err = StateStore::open(&missing).unwrap_err().to_string();
    assert!(err.contains("no state at") && err.contains("kvform init"), "{err}");
    assert!(!missing.exists(), "open never creates");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not sqlite, not even close............................................").unwrap();
    let err = StateStore::open(&junk).unwrap_err().to_string();
    assert!(err.contains("not a kvform state"), "{err}");

    let (_d, path) = fresh();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 0).unwrap();
    drop(c);
    let err = StateStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("not a kvform state"), "{err}");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = StateStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer than this kvform"), "{err}");
}

#[test]
fn init_keeps_ids_and_is_idempotent() {
    let (_d, path) = fresh();
    let before = StateStore::open(&path).unwrap().meta().unwrap();
    let (s, outcome) = StateStore::init(&path, 1767323045).unwrap();
    assert_eq!(outcome, InitOutcome::UpToDate);
    assert_eq!(s.meta().unwrap(), before);
    assert_ne!(before.bucket_id, before.lineage);
}

fn gc_removes_old_tombstones_history_and_dead_allocations_but_never_latest_live_on(
    (_d, path): (tempfile::TempDir, Location),
) {
    let day = 86_400;
    let old = NOW - 40 * day;
    let alloc = "maand/job/api/worker/10.0.0.1";
    let mut t = txn(&path);
    t.put(Write::new(NS, "live", "v1", "t", old)).unwrap();
    t.put(Write::new(NS, "live", "v2", "t", old)).unwrap();
    t.put(Write::new(NS, "ancient-live", "v", "t", old)).unwrap();
    t.put(Write::new(NS, "dead", "v", "t", old)).unwrap();
    t.tombstone(NS, "dead", "t", old).unwrap();
    t.put(Write::new(NS, "recently-dead", "v", "t", old)).unwrap();
    t.tombstone(NS, "recently-dead", "t", NOW - day).unwrap();
    t.put(Write::new(alloc, "version", "1", "t", NOW)).unwrap();
    t.purge_namespace(alloc, "t", NOW).unwrap();
    t.put(Write::new("maand/job/api/worker/10.0.0.2", "version", "1", "t", NOW)).unwrap();
    t.commit(ApplyRecord::new("t", NOW)).unwrap();

    // Dry run: report, then roll back.
    let mut t = txn(&path);
    let dry = t.gc(30, NOW).unwrap();
    t.rollback().unwrap();
    assert_eq!(open(&path).unwrap().meta().unwrap().serial, 1);

    let mut t = txn(&path);
    let report = t.gc(30, NOW).unwrap();
    assert_eq!(report, dry);
    assert_eq!(t.commit(ApplyRecord::new("gc", NOW)).unwrap(), 2);
    let got: Vec<(String, String, u64)> =
        report.items.iter().map(|i| (i.namespace.clone(), i.key.clone(), i.rows)).collect();
    assert_eq!(
        got,
        vec![
            (alloc.to_string(), "version".to_string(), 2),
            (NS.to_string(), "dead".to_string(), 2),
            (NS.to_string(), "live".to_string(), 1),
            // History older than the window goes too; the tombstone itself stays.
            (NS.to_string(), "recently-dead".to_string(), 1),
        ]
    );
    let s = open(&path).unwrap();
    assert_eq!(s.get(NS, "live").unwrap().unwrap().value, "v2");
    assert!(s.get(NS, "ancient-live").unwrap().unwrap().is_live(), "the latest live version is never removed");
    assert!(s.get(NS, "recently-dead").unwrap().is_some());
    assert!(s.get(NS, "dead").unwrap().is_none());
    assert!(s.get("maand/job/api/worker/10.0.0.2", "version").unwrap().is_some());
    assert!(kvform::state::check::check(&s).unwrap().ok());
}
both!(
    gc_removes_old_tombstones_history_and_dead_allocations_but_never_latest_live,
    gc_removes_old_tombstones_history_and_dead_allocations_but_never_latest_live_on_postgres,
    gc_removes_old_tombstones_history_and_dead_allocations_but_never_latest_live_on
);

#[test]
fn check_reports_broken_invariants() {
    let (_d, path) = fresh();
    let mut t = txn(&path);
    for v in ["a", "b", "c"] {
        t.put(Write::new(NS, "k", v, "t", NOW)).unwrap();
    }
    t.commit(ApplyRecord::new("t", NOW)).unwrap();
    assert!(kvform::state::check::check(&StateStore::open(&path).unwrap()).unwrap().ok());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("DELETE FROM history WHERE version = 2", []).unwrap();
    c.execute(
        "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer, key_created_at)
         VALUES ('secrets/job/api', 'plain', 1, 'oops', 0, 0, 0, 1, 't', 0)",
        [],
    )
    .unwrap();
    drop(c);
    let report = kvform::state::check::check(&StateStore::open(&path).unwrap()).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems[0].contains("vars/job/api k: versions 1..3 have gaps"), "{:?}", report.problems);
    assert!(report.problems[1].contains("unsealed"), "{:?}", report.problems);
}

#[test]
fn backup_restore_round_trip_and_corrupt_restore_is_refused() {
    let (dir, path) = fresh();
    let mut t = txn(&path);
    t.put(Write::new(NS, "k", "before-backup", "t", NOW)).unwrap();
    t.commit(ApplyRecord::new("t", NOW)).unwrap();
    let backup = dir.path().join("backup.db");
    kvform::state::backup::backup(&StateStore::open(&path).unwrap(), &backup).unwrap();
    let mut t = txn(&path);
    t.put(Write::new(NS, "k", "after-backup", "t", NOW)).unwrap();
    t.commit(ApplyRecord::new("t", NOW)).unwrap();
    let before = StateStore::open(&path).unwrap().meta().unwrap();

    // A corrupt backup is refused and the state is untouched.
    let corrupt = dir.path().join("corrupt.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    // Break the header of every B-tree page after the first.
    for page in 1..bytes.len() / 4096 {
        for b in &mut bytes[page * 4096..page * 4096 + 16] {
            *b = 0xAB;
        }
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    assert!(kvform::state::backup::restore(&path, &corrupt, Duration::ZERO, NOW, false).is_err());
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"garbage").unwrap();
    assert!(kvform::state::backup::restore(&path, &garbage, Duration::ZERO, NOW, false).is_err());
    let s = StateStore::open(&path).unwrap();
    assert_eq!(s.meta().unwrap(), before);
    assert_eq!(s.get(NS, "k").unwrap().unwrap().value, "after-backup");
    drop(s);

    let out = kvform::state::backup::restore(&path, &backup, Duration::ZERO, NOW, false).unwrap();
    // Serials never go back: the backup was taken at 1, the replaced state was at 2.
    assert_eq!(out.restored.serial, 3);
    assert_eq!(out.previous.as_ref().unwrap().serial, 2);
    let kept = out.kept_as.unwrap();
    assert_eq!(mode(&kept), 0o600);
    let s = StateStore::open(&path).unwrap();
    assert_eq!(s.meta().unwrap().serial, 3);
    assert_eq!(s.audit(1).unwrap()[0].operation, "state restore");
    assert_eq!(s.meta().unwrap().lineage, before.lineage);
    assert_eq!(s.get(NS, "k").unwrap().unwrap().value, "before-backup");
    assert!(kvform::state::check::check(&s).unwrap().ok());
    assert_eq!(StateStore::open(&kept).unwrap().get(NS, "k").unwrap().unwrap().value, "after-backup");
}

#[test]
fn restoring_twice_keeps_every_safety_copy_and_backup_refuses_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/kvform.db");
    StateStore::init(&path, 1767323045).unwrap();
    let backup = dir.path().join("backup.db");
    kvform::state::backup::backup(&StateStore::open(&path).unwrap(), &backup).unwrap();
    for value in ["first", "second"] {
        let mut t = txn(&path);
        t.put(Write::new(NS, "k", value, "t", NOW)).unwrap();
        t.commit(ApplyRecord::new("t", NOW)).unwrap();
        kvform::state::backup::restore(&path, &backup, Duration::ZERO, NOW, false).unwrap();
    }
    let kept: Vec<String> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("before-restore"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let store = StateStore::open(&path).unwrap();
    assert!(kvform::state::backup::backup(&store, &path).is_err(), "backing up onto the live state must be refused");
    assert!(kvform::state::backup::backup(&store, &dir.path().join("data/../data/kvform.db-wal")).is_err());
    assert!(kvform::state::check::check(&store).unwrap().ok());
}

fn put_new_inserts_once_and_falls_back_to_put_for_an_existing_key_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    assert_eq!(
        t.put(Write::new(NS, "a", " one ", "test", NOW).expect_new()).unwrap(),
        WriteOutcome::Created { version: 1 }
    );
    assert_eq!(
        t.put(Write::new(NS, "a", "one", "test", NOW).expect_new()).unwrap(),
        WriteOutcome::Unchanged { version: 1 }
    );
    assert_eq!(
        t.put(Write::new(NS, "a", "two", "test", NOW).expect_new()).unwrap(),
        WriteOutcome::Updated { version: 2 }
    );
    assert!(t.tombstone(NS, "a", "test", NOW).unwrap());
    assert_eq!(
        t.put(Write::new(NS, "a", "three", "test", NOW).expect_new()).unwrap(),
        WriteOutcome::Revived { version: 4 }
    );
    assert!(t.put(Write::new(NS, " bad", "x", "test", NOW).expect_new()).is_err());
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    assert_eq!(
        versions(&path, NS, "a"),
        [(1, "one".into(), false), (2, "two".into(), false), (3, "".into(), true), (4, "three".into(), false)]
    );
}
both!(
    put_new_inserts_once_and_falls_back_to_put_for_an_existing_key,
    put_new_inserts_once_and_falls_back_to_put_for_an_existing_key_on_postgres,
    put_new_inserts_once_and_falls_back_to_put_for_an_existing_key_on
);

/// On PostgreSQL `put_new` holds first versions back and sends them in bulk: every read,
/// savepoint and commit must see them, a rollback must undo them, a key that exists (from
/// before the transaction) is written as `put` would, and values survive COPY's escaping.
fn put_new_is_seen_undone_and_counted_like_put_on((_d, path): (tempfile::TempDir, Location)) {
    const PRE: &str = "vars/job/pre";
    let mut t = txn(&path);
    t.put(Write::new(PRE, "old", "before", "test", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();

    let mut t = txn(&path);
    let odd = "tab\there\nnew line\\ back\\slash \r é \\N";
    assert_eq!(
        t.put(Write::new(NS, "odd", odd, "test", NOW).expect_new()).unwrap(),
        WriteOutcome::Created { version: 1 }
    );
    assert_eq!(t.get(NS, "odd").unwrap().map(|e| e.value).as_deref(), Some(odd.trim()));
    assert_eq!(t.live_keys(NS).unwrap(), ["odd"]);
    t.savepoint("job").unwrap();
    t.put(Write::new("vars/job/undone", "k", "x", "test", NOW).expect_new()).unwrap();
    // Written before the transaction, in a namespace this one has not touched: held back
    // as new, then found to exist when sent (by the rollback, which must undo it too).
    t.put(Write::new(PRE, "old", "after", "test", NOW).expect_new()).unwrap();
    t.rollback_to("job").unwrap();
    assert_eq!(t.get("vars/job/undone", "k").unwrap(), None);
    assert_eq!(t.get(PRE, "old").unwrap().map(|e| e.value).as_deref(), Some("before"));
    t.put(Write::new(PRE, "old", "after", "test", NOW).expect_new()).unwrap();
    for i in 0..25_000 {
        t.put(Write::new("vars/job/many", &format!("k{i:05}"), &i.to_string(), "test", NOW).expect_new()).unwrap();
    }
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let store = open(&path).unwrap();
    assert_eq!(versions(&path, PRE, "old"), [(1, "before".into(), false), (2, "after".into(), false)]);
    assert_eq!(store.get(NS, "odd").unwrap().map(|e| e.value).as_deref(), Some(odd.trim()));
    assert_eq!(store.get("vars/job/many", "k24999").unwrap().map(|e| e.value).as_deref(), Some("24999"));
    let last = &store.audit(1).unwrap()[0];
    assert_eq!((last.added, last.changed), (25_001, 1), "{last:?}");
    let report = kvform::state::check::check(&store).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
both!(
    put_new_is_seen_undone_and_counted_like_put,
    put_new_is_seen_undone_and_counted_like_put_on_postgres,
    put_new_is_seen_undone_and_counted_like_put_on
);

#[test]
fn purged_jobs_are_a_record_of_the_state_that_gc_keeps() {
    use std::collections::BTreeSet;
    let (_d, path) = fresh();
    let set = |jobs: &[&str]| jobs.iter().map(|j| j.to_string()).collect::<BTreeSet<String>>();
    let mut t = txn(&path);
    assert!(t.set_purged_jobs(&set(&["api", "db"])).unwrap());
    assert!(!t.set_purged_jobs(&set(&["api", "db"])).unwrap(), "the same record is no change");
    let serial = t.commit(ApplyRecord::new("test", NOW)).unwrap();
    assert_eq!(serial, 1, "a record change is a change of the state");
    let mut t = txn(&path);
    assert!(t.set_purged_jobs(&set(&["db"])).unwrap());
    t.gc(0, NOW + 86_400 * 400).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.snapshot().unwrap().purged_jobs, set(&["db"]));
    assert_eq!(store.lean_snapshot().unwrap().purged_jobs, set(&["db"]));
}

#[test]
fn migrating_a_schema_1_state_infers_purged_jobs_from_its_rows() {
    let (_d, path) = fresh();
    let mut t = txn(&path);
    // `lost`: every allocation tombstoned and no live catalog -> purged.
    t.put(Write::new("maand/job/lost/worker/10.0.0.1", "version", "1", "apply", NOW)).unwrap();
    t.tombstone("maand/job/lost/worker/10.0.0.1", "version", "apply", NOW).unwrap();
    // `live`: one live allocation -> not purged. `disabled`: catalog live -> not purged.
    t.put(Write::new("maand/job/live/worker/10.0.0.1", "version", "1", "apply", NOW)).unwrap();
    t.put(Write::new("maand/job/live/worker/10.0.0.2", "version", "1", "apply", NOW)).unwrap();
    t.tombstone("maand/job/live/worker/10.0.0.2", "version", "apply", NOW).unwrap();
    t.put(Write::new("maand/job/kept/worker/10.0.0.1", "version", "1", "apply", NOW)).unwrap();
    t.tombstone("maand/job/kept/worker/10.0.0.1", "version", "apply", NOW).unwrap();
    t.put(Write::new("maand/job/kept", "workers", "", "apply", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    // Schema 3 (purged_jobs is migration 3 -> 4).
    c.execute_batch("DROP TABLE purged_jobs; DROP TABLE api_tokens; DROP TABLE render_files; PRAGMA user_version = 3;")
        .unwrap();
    drop(c);
    assert!(StateStore::open(&path).unwrap_err().to_string().contains("run `kvform init`"));
    let (store, outcome) = StateStore::init(&path, NOW).unwrap();
    assert!(matches!(outcome, InitOutcome::Migrated { from: 3, to: 6, .. }), "{outcome:?}");
    let purged: Vec<String> = store.snapshot().unwrap().purged_jobs.into_iter().collect();
    assert_eq!(purged, ["lost"]);
}

/// Writes after `prefetch` compare against the rows read ahead, and a key written since is
/// read again (a stale read-ahead row would write a version twice or miss a change).
fn prefetched_rows_are_forgotten_once_written_on((_d, path): (tempfile::TempDir, Location)) {
    let mut t = txn(&path);
    t.put(Write::new(NS, "a", "1", "test", NOW)).unwrap();
    t.put(Write::new(NS, "b", "1", "test", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();

    let mut t = txn(&path);
    t.prefetch(&[(NS, "a"), (NS, "b"), (NS, "new")]).unwrap();
    assert_eq!(t.put(Write::new(NS, "a", "1", "test", NOW)).unwrap(), WriteOutcome::Unchanged { version: 1 });
    assert_eq!(t.put(Write::new(NS, "a", "2", "test", NOW)).unwrap(), WriteOutcome::Updated { version: 2 });
    assert_eq!(t.put(Write::new(NS, "a", "3", "test", NOW)).unwrap(), WriteOutcome::Updated { version: 3 });
    assert!(t.tombstone(NS, "b", "test", NOW).unwrap());
    assert!(!t.tombstone(NS, "b", "test", NOW).unwrap());
    assert_eq!(t.put(Write::new(NS, "new", "x", "test", NOW)).unwrap(), WriteOutcome::Created { version: 1 });
    assert_eq!(t.put(Write::new(NS, "new", "y", "test", NOW)).unwrap(), WriteOutcome::Updated { version: 2 });
    t.savepoint("s").unwrap();
    t.prefetch(&[(NS, "a")]).unwrap();
    t.put(Write::new(NS, "a", "4", "test", NOW)).unwrap();
    t.rollback_to("s").unwrap();
    assert_eq!(t.put(Write::new(NS, "a", "4", "test", NOW)).unwrap(), WriteOutcome::Updated { version: 4 });
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let v = |k| versions(&path, NS, k);
    assert_eq!(v("a").last().unwrap(), &(4, "4".to_string(), false));
    assert_eq!(v("a").len(), 4);
    assert_eq!(v("b"), [(1, "1".into(), false), (2, "".into(), true)]);
    assert_eq!(v("new"), [(1, "x".into(), false), (2, "y".into(), false)]);
}
both!(
    prefetched_rows_are_forgotten_once_written,
    prefetched_rows_are_forgotten_once_written_on_postgres,
    prefetched_rows_are_forgotten_once_written_on
);

/// Whether the last apply recorded its plan base as verified (`plan_base.verified`).
fn plan_base_verified(loc: &Location) -> bool {
    match loc {
        Location::Sqlite(p) => {
            rusqlite::Connection::open(p)
                .unwrap()
                .query_row("SELECT verified FROM plan_base", [], |r| r.get::<_, i64>(0))
                .unwrap()
                == 1
        }
        Location::Postgres(pg) => {
            let url = std::env::var("KVFORM_TEST_PG_URL").unwrap();
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let schema = kvform::state::postgres::bucket_schema(&pg.schema, pg.bucket_id.unwrap());
            let row = c.query_one(&format!("SELECT verified::bigint FROM {schema}.plan_base"), &[]).unwrap();
            row.get::<_, i64>(0) == 1
        }
    }
}

/// A hook writes a namespace the plan changes, then its job rolls back: the namespace (not
/// live before) ends with no row, and the base must still say unverified, or the next plan
/// takes the workspace as applied and says "No changes" (found in review).
fn a_hook_write_in_a_rolled_back_job_leaves_the_base_unverified_on((_d, loc): (tempfile::TempDir, Location)) {
    let basis = kvform::state::PlanBasis { full: false, read: [(NS.to_string(), [1u8; 16])].into(), units: None };
    let mut t = txn(&loc);
    t.stage_fingerprints(&basis, [NS], "apply", Some("workspace")).unwrap();
    t.savepoint("job_0").unwrap();
    t.put(Write::new(NS, "log_level", "info", "apply", NOW).expect_new()).unwrap();
    t.put(Write::new(NS, "from_hook", "x", "hook:api/check@10.0.0.1", NOW)).unwrap();
    t.rollback_to("job_0").unwrap();
    t.commit(ApplyRecord::new("apply", NOW)).unwrap();
    assert!(!plan_base_verified(&loc), "a rolled-back planned namespace left the base verified");
}
both!(
    a_hook_write_in_a_rolled_back_job_leaves_the_base_unverified,
    a_hook_write_in_a_rolled_back_job_leaves_the_base_unverified_on_postgres,
    a_hook_write_in_a_rolled_back_job_leaves_the_base_unverified_on
);

/// A key read ahead twice still has its row: the second copy once cached "no row", and the
/// write that followed was dropped on PostgreSQL (found in review).
fn a_key_prefetched_twice_is_still_written_on((_d, loc): (tempfile::TempDir, Location)) {
    let mut t = txn(&loc);
    t.put(Write::new(NS, "k", "old", "test", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    let mut t = txn(&loc);
    t.prefetch(&[(NS, "k"), (NS, "k")]).unwrap();
    t.put(Write::new(NS, "k", "new", "test", NOW)).unwrap();
    t.commit(ApplyRecord::new("test", NOW)).unwrap();
    assert_eq!(open(&loc).unwrap().get(NS, "k").unwrap().unwrap().value, "new");
}
both!(
    a_key_prefetched_twice_is_still_written,
    a_key_prefetched_twice_is_still_written_on_postgres,
    a_key_prefetched_twice_is_still_written_on
);
