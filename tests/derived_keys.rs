//! Derived peer keys (SPEC §4 "Peer keys are derived, not stored") end to end: they read as
//! before through every reader, have no rows, never appear in a plan, cannot be written,
//! and a schema-1 state that stored them is migrated by `kvform init`. Reading and writing
//! run on both backends.

use kvform::hooks::store::HookStore;
use kvform::hooks::txn_store::ReadOnlyStore;
use kvform::state::Write;
use kvform::state::{ApplyRecord, StateError};
use std::path::Path;

mod tf_support;
use tf_support::{BucketDir, count_rows, kvform, ok, state, write};

/// `$body(dir)` as a test on SQLite and one on PostgreSQL (skipped without a database
/// outside CI), each on an [`applied_on`] bucket.
macro_rules! both {
    ($sqlite:ident, $pg:ident, $body:ident) => {
        #[test]
        fn $sqlite() {
            $body(applied());
        }
        #[test]
        fn $pg() {
            if let Some(dir) = applied_on(stringify!($pg), true) {
                $body(dir);
            }
        }
    };
}

/// Rows of peer keys in the state's tables, counted in the database itself.
const STORED_PEER_ROWS: &str = "SELECT count(*) FROM (SELECT key FROM latest UNION ALL SELECT key FROM history) AS k
     WHERE key = 'peer_workers' OR key LIKE '%\\_peers' ESCAPE '\\'";

/// [`applied_on`] SQLite.
fn applied() -> BucketDir {
    applied_on("", false).unwrap()
}

/// Three `api` workers (10.0.0.1 also `db`), job `api` placed on all three with its
/// allocation on 10.0.0.2 disabled, applied; the state in the SQLite file or (`postgres`)
/// in a PostgreSQL registry schema of its own, dropped with the directory (`None`: no
/// database outside CI).
fn applied_on(test: &str, postgres: bool) -> Option<BucketDir> {
    let dir = if postgres {
        tf_support::pg_url(test)?;
        let block = tf_support::pg_state_block();
        let dir = BucketDir::on_postgres(tempfile::tempdir().unwrap(), &tf_support::registry_of(&block));
        write(dir.path(), "kvform.hcl", &block);
        dir
    } else {
        BucketDir::sqlite(tempfile::tempdir().unwrap())
    };
    let d = dir.path();
    write(
        d,
        "workspace/workers.json",
        r#"[{"host": "10.0.0.1", "labels": ["api", "db"]}, {"host": "10.0.0.2", "labels": ["api"]},
            {"host": "10.0.0.3", "labels": ["api"]}]"#,
    );
    write(d, "workspace/disabled.json", r#"{"jobs": {"api": {"allocations": ["10.0.0.2"]}}}"#);
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    ok(d, &["init"]);
    ok(d, &["apply", "--auto-approve"]);
    assert_eq!(d.join("data/kvform.db").exists(), !postgres, "the state is where kvform.hcl says");
    Some(dir)
}

both!(peer_keys_read_as_before_and_are_not_stored, peer_keys_read_as_before_and_are_not_stored_on_postgres, peer_keys);

fn peer_keys(dir: BucketDir) {
    let d = dir.path();
    // peer_workers: the other non-removed workers, the disabled allocation included.
    assert_eq!(ok(d, &["kv", "get", "maand/job/api/worker/10.0.0.1", "peer_workers"]), "10.0.0.2,10.0.0.3\n");
    assert_eq!(ok(d, &["kv", "get", "maand/job/api/worker/10.0.0.2", "peer_workers"]), "10.0.0.1,10.0.0.3\n");
    assert_eq!(ok(d, &["cat", "kv", "get", "maand/worker/10.0.0.3", "api_peers"]), "10.0.0.1,10.0.0.2\n");
    // The only `db` worker has no `db_peers`.
    assert_eq!(ok(d, &["kv", "get", "maand/worker/10.0.0.1", "db_peers"]), "");
    let keys = ok(d, &["kv", "keys", "maand/worker/10.0.0.1"]);
    assert!(keys.lines().any(|k| k == "api_peers") && !keys.contains("db_peers"), "{keys}");
    let keys = ok(d, &["kv", "keys", "maand/job/api/worker/10.0.0.3"]);
    assert_eq!(keys, "api_allocation_index\npeer_workers\nversion\n");

    // cat kv: JSON rows as readers see them (no versions of their own), table says derived.
    let rows: serde_json::Value = serde_json::from_str(&ok(d, &["cat", "kv", "--format", "json"])).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["namespace"] == "maand/job/api/worker/10.0.0.3" && r["key"] == "peer_workers")
        .expect("peer_workers listed");
    assert_eq!(
        (&row["value"], &row["version"], &row["writer"]),
        (&"10.0.0.1,10.0.0.2".into(), &0.into(), &"derived".into())
    );
    let table = ok(d, &["cat", "kv", "--workers", "10.0.0.2"]);
    let line = table.lines().find(|l| l.contains("api_peers")).expect("api_peers in the table");
    assert!(line.contains("10.0.0.1,10.0.0.3") && line.trim_end().ends_with("derived"), "{line}");
    let history = ok(d, &["kv", "history", "maand/worker/10.0.0.2", "api_peers"]);
    assert!(history.contains("derived from maand/worker api_workers"), "{history}");

    // Nothing stored, nothing to plan.
    let snap = state(d).snapshot().unwrap();
    let stored: Vec<String> = snap
        .entries
        .iter()
        .flat_map(|(ns, keys)| keys.keys().map(move |k| format!("{ns} {k}")))
        .filter(|k| k.ends_with("_peers") || k.ends_with("peer_workers"))
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
    // … nor in the database's own tables, where `placed_workers` (what they derive from) is.
    assert_eq!(count_rows(d, STORED_PEER_ROWS), 0);
    assert_eq!(count_rows(d, "SELECT count(*) FROM latest WHERE key = 'placed_workers'"), 1);
    assert_eq!(snap.get("maand/job/api", "placed_workers").unwrap().value, "10.0.0.1,10.0.0.2,10.0.0.3");
    assert!(ok(d, &["plan"]).contains("No changes."));

    // The hook store's read path.
    let mut hooks = ReadOnlyStore::new(state(d), 0);
    let v = hooks.get("maand/job/api/worker/10.0.0.2", "peer_workers").unwrap().unwrap();
    assert_eq!(v.value.as_str(), "10.0.0.1,10.0.0.3");
    assert!(hooks.keys("maand/worker/10.0.0.2").unwrap().contains(&"api_peers".to_string()));
    assert_eq!(hooks.get("maand/worker/10.0.0.1", "db_peers").unwrap(), None);
}

both!(derived_keys_cannot_be_written, derived_keys_cannot_be_written_on_postgres, derived_keys_refused);

fn derived_keys_refused(dir: BucketDir) {
    let d = dir.path();
    let mut txn = state(d).begin_write("test", Default::default(), 1_767_323_045).unwrap();
    let e = txn.put(Write::new("maand/job/api/worker/10.0.0.1", "peer_workers", "x", "apply", 1)).unwrap_err();
    assert!(matches!(e, StateError::Derived { .. }), "{e}");
    assert!(e.to_string().contains("derived from maand/job/api placed_workers"), "{e}");
    let e = txn.put(Write::new("maand/worker/10.0.0.1", "api_peers", "x", "apply", 1).expect_new()).unwrap_err();
    assert!(matches!(e, StateError::Derived { .. }), "{e}");
    // Committing after the refusals stores none of them.
    txn.commit(ApplyRecord::new("test", 1_767_323_045)).unwrap();
    assert_eq!(count_rows(d, STORED_PEER_ROWS), 0);
}

// SQLite only: schema-1 states that stored peer keys are SQLite files of kvform 0.1; a
// PostgreSQL bucket is created at the current schema.
#[test]
fn init_migrates_a_state_that_stored_peer_keys() {
    let dir = applied();
    let d = dir.path();
    let path = d.join("data/kvform.db");
    // Make it a schema-1 state, as kvform 0.1 left it: peer lists stored, no placed_workers.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        // (`key_created_at` is schema 5's; migrating 4 -> 5 again rebuilds the tables from these rows.)
        let insert = "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer, key_created_at)
                      VALUES (?1, ?2, 1, ?3, 0, 0, 0, 1, 'apply', 0)";
        for (ns, key, value) in [
            ("maand/job/api/worker/10.0.0.1", "peer_workers", "10.0.0.2,10.0.0.3"),
            ("maand/job/api/worker/10.0.0.2", "peer_workers", "10.0.0.1,10.0.0.3"),
            ("maand/job/api/worker/10.0.0.3", "peer_workers", "10.0.0.1,10.0.0.2"),
            ("maand/worker/10.0.0.1", "api_peers", "10.0.0.2,10.0.0.3"),
            ("maand/worker/10.0.0.1", "worker_peers", "stale"),
        ] {
            c.execute(insert, [ns, key, value]).unwrap();
        }
        c.execute("DELETE FROM latest WHERE key = 'placed_workers'", []).unwrap();
        c.execute_batch(
            "DROP TABLE fingerprints; DROP TABLE plan_base; DROP INDEX latest_serial; DROP INDEX latest_expiry; DROP TABLE purged_jobs; DROP TABLE api_tokens;",
        )
        .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
    }
    let o = kvform(d, &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("run `kvform init` to upgrade it"));
    let serial = state_serial_raw(&path);

    ok(d, &["init"]);
    let store = state(d);
    assert_eq!(store.meta().unwrap().schema_version, kvform::state::schema::SCHEMA_VERSION);
    assert_eq!(store.meta().unwrap().serial, serial + 1, "the migration is one change set");
    let snap = store.snapshot().unwrap();
    assert!(snap.get("maand/worker/10.0.0.1", "api_peers").is_none());
    assert!(snap.get("maand/job/api/worker/10.0.0.1", "peer_workers").is_none());
    assert!(snap.get("maand/worker/10.0.0.1", "worker_peers").is_none());
    // placed_workers rebuilt in allocation-index order, so readers see the same lists.
    assert_eq!(snap.get("maand/job/api", "placed_workers").unwrap().value, "10.0.0.1,10.0.0.2,10.0.0.3");
    assert_eq!(ok(d, &["kv", "get", "maand/job/api/worker/10.0.0.2", "peer_workers"]), "10.0.0.1,10.0.0.3\n");
    // The only changes: bucket.conf's numbers, typed since this state was written (SPEC §9).
    let plan = ok(d, &["plan"]);
    let changes: Vec<&str> = plan.lines().filter(|l| l.trim_start().starts_with(['+', '~', '-'])).collect();
    assert!(!changes.is_empty() && changes.iter().all(|l| l.contains("# type: string → number")), "{plan}");
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["plan"]).contains("No changes."));
    let backups: Vec<_> = std::fs::read_dir(d.join("data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".schema-v1.bak"))
        .collect();
    assert_eq!(backups.len(), 1, "the old file is backed up first");
}

fn state_serial_raw(path: &Path) -> u64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT serial FROM meta", [], |r| r.get::<_, i64>(0)).unwrap() as u64
}
