//! Typed values and metadata in the state (SPEC §9): validation before anything is written,
//! type/description on every version row, the key's first-version time, and the migration of
//! a schema-1 state. The typed writes run on both backends.

use kvform::kv::{KvType, Typed};
use kvform::state::Write;
use kvform::state::schema::{MIGRATIONS, SCHEMA_VERSION};
use kvform::state::{ApplyRecord, InitOutcome, Location, PgLocation, StateError, StateStore, WriteOutcome};
use std::time::Duration;

mod tf_support;

const NOW: i64 = 1_767_323_045;
const NS: &str = "vars/job/api";

#[test]
fn typed_writes_validate_and_keep_their_metadata() {
    let dir = tempfile::tempdir().unwrap();
    typed_writes_validate_and_keep_their_metadata_at(Location::Sqlite(dir.path().join("data/kvform.db")));
}

#[test]
fn typed_writes_validate_and_keep_their_metadata_on_postgres() {
    let test = "typed_writes_validate_and_keep_their_metadata_on_postgres";
    if tf_support::pg_url(test).is_none() {
        return;
    }
    // A registry schema of its own, as `TestBucket::new_on_postgres` makes one, dropped after.
    let schema = format!("kvs_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let _drop = tf_support::DropRegistry(schema.clone());
    let loc = PgLocation { url_env: "KVFORM_TEST_PG_URL".into(), schema, bucket_id: None };
    let (_, _, id) = Location::Postgres(loc.clone()).init(NOW).unwrap();
    typed_writes_validate_and_keep_their_metadata_at(Location::Postgres(PgLocation { bucket_id: id, ..loc }));
}

/// On the state at `loc` (initialised here when it is an SQLite file).
fn typed_writes_validate_and_keep_their_metadata_at(loc: Location) {
    loc.init(1_767_323_045).unwrap();
    let mut t = loc.open().unwrap().begin_write("t", Duration::ZERO, 1_767_323_045).unwrap();
    let number = Typed::new(KvType::Number, "  replicas wanted ");
    let err = t.put(Write::new(NS, "n", "abc", "t", NOW).described(&number)).unwrap_err();
    assert!(matches!(err, StateError::WrongType { .. }), "{err}");
    assert!(err.to_string().contains("vars/job/api n: \"abc\" is not a number"), "{err}");
    assert!(t.get(NS, "n").unwrap().is_none(), "nothing written");
    assert_eq!(
        t.put(Write::new(NS, "n", "3", "t", NOW).described(&number)).unwrap(),
        WriteOutcome::Created { version: 1 }
    );
    // Same value and metadata: not a change. A new description is.
    assert_eq!(
        t.put(Write::new(NS, "n", "3", "t", NOW + 1).described(&number)).unwrap(),
        WriteOutcome::Unchanged { version: 1 }
    );
    let described = Typed::new(KvType::Number, "replicas");
    assert_eq!(
        t.put(Write::new(NS, "n", "3", "t", NOW + 2).described(&described)).unwrap(),
        WriteOutcome::Updated { version: 2 }
    );
    // An untyped write is a string write that keeps the description.
    assert_eq!(t.put(Write::new(NS, "n", "three", "t", NOW + 3)).unwrap(), WriteOutcome::Updated { version: 3 });
    assert!(t.tombstone(NS, "n", "t", NOW + 4).unwrap());
    t.commit(ApplyRecord::new("t", NOW)).unwrap();

    // Read back over a new connection: what the backend stored, not what the transaction held.
    let s = loc.open().unwrap();
    let h: Vec<_> = s.history(NS, "n").unwrap().into_iter().map(|r| (r.version, r.kv_type, r.description)).collect();
    assert_eq!(
        h,
        vec![
            (1, KvType::Number, "replicas wanted".to_string()),
            (2, KvType::Number, "replicas".to_string()),
            (3, KvType::String, "replicas".to_string()),
            (4, KvType::String, "replicas".to_string()),
        ]
    );
    let meta = s.key_meta(NS, "n").unwrap().unwrap();
    assert_eq!(meta.key_created_at, NOW, "created = the first version's time");
    assert_eq!(s.get(NS, "n").unwrap().unwrap().created_at, NOW + 4, "updated = this version's time");
    assert!(kvform::state::check::check(&s).unwrap().ok());
}

// SQLite only: a schema-1 state is a file of kvform 0.1; a PostgreSQL bucket is created at the current schema in one step.
#[test]
fn a_schema_1_state_migrates_with_its_rows_typed_string() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/kvform.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let kvform::state::schema::Migration::Sql(first) = MIGRATIONS[0] else { unreachable!("0 -> 1 is SQL") };
        c.execute_batch(first).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO meta VALUES (1, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002', 3, 0);
             INSERT INTO latest (namespace, key, version, deleted, ttl, created_at, serial, writer, value)
                  VALUES ('vars/job/api', 'k', 3, 0, 0, 300, 3, 'apply', 'v3');
             INSERT INTO history (namespace, key, version, deleted, ttl, created_at, serial, writer, value)
                  VALUES ('vars/job/api', 'k', 2, 0, 0, 200, 2, 'apply', 'v2');",
        )
        .unwrap();
    }
    assert!(matches!(StateStore::open(&path), Err(StateError::OldSchema { found: 1, .. })));
    let (s, outcome) = StateStore::init(&path, 1_767_323_045).unwrap();
    assert!(matches!(outcome, InitOutcome::Migrated { from: 1, to, .. } if to == SCHEMA_VERSION), "{outcome:?}");
    let h: Vec<_> = s.history(NS, "k").unwrap().into_iter().map(|r| (r.version, r.value, r.kv_type)).collect();
    assert_eq!(h, vec![(2, "v2".into(), KvType::String), (3, "v3".into(), KvType::String)]);
    // The oldest kept version stands in for the first one.
    assert_eq!(s.key_meta(NS, "k").unwrap().unwrap().key_created_at, 200);
    assert!(kvform::state::check::check(&s).unwrap().ok(), "{:?}", kvform::state::check::check(&s).unwrap().problems);
    assert_eq!(s.meta().unwrap().serial, 3);
}

/// A PostgreSQL half without `KVFORM_TEST_PG_URL` says so in `cargo test`'s own output (the
/// harness captures `eprintln!`, so a skip used to read as a plain `ok`), and under `CI=true`
/// it fails instead. Runs this test binary again on the one PostgreSQL test.
#[test]
fn a_postgres_half_without_a_database_says_it_skipped() {
    let test = "typed_writes_validate_and_keep_their_metadata_on_postgres";
    let run = |ci: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([test, "--exact", "--test-threads=1"]).env_remove("KVFORM_TEST_PG_URL").env_remove("CI");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        cmd.output().unwrap()
    };
    let out = run(None);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("SKIPPED {test}: the PostgreSQL half did not run (KVFORM_TEST_PG_URL is not set")),
        "no visible skip line:\n{stdout}{stderr}"
    );
    let out = run(Some("true"));
    assert!(!out.status.success(), "under CI=true a missing database must fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CI=true but KVFORM_TEST_PG_URL is not set"));
}
