//! Crash safety: a child process writing large change sets is killed with SIGKILL at random
//! moments, 20 times. After every kill the state passes `check`, its serial is the last
//! committed one or the next, and no partial change set is visible.
//!
//! The child is this same test binary re-run with `--ignored --exact crash_writer_child`
//! (no test-only command in the product). It runs on SQLite and, with `KVFORM_TEST_PG_URL`
//! set, on PostgreSQL (the writer's transaction and advisory lock die with its connection).

#[path = "tf_support/mod.rs"]
mod tf_support;

use kvform::state::Write;
use kvform::state::{ApplyRecord, Location, PgLocation, StateStore};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEYS: usize = 5_000;
const KILLS: usize = 20;
const NS: &str = "vars/job/crash";

/// The writer: forever, one change set per round that rewrites every key to `t<serial>`.
#[test]
#[ignore = "helper process for state_survives_sigkill_at_random_moments"]
fn crash_writer_child() {
    let Ok(path) = std::env::var("KVFORM_CRASH_STATE") else { return };
    let loc = decode(&path);
    loop {
        let store = loc.open().unwrap();
        let mut t = store.begin_write("crash-writer", Duration::from_secs(10), 1767323045).unwrap();
        let serial = t.next_serial();
        for k in 0..KEYS {
            t.put(Write::new(NS, &format!("k{k:05}"), &format!("t{serial}"), "crash", serial as i64)).unwrap();
        }
        let committed = t.commit(ApplyRecord::new("crash-writer", 0)).unwrap();
        assert_eq!(committed, serial);
        println!("committed {committed}");
    }
}

/// The state location passed to the child: a path, or `postgres:<schema>:<bucket id>`.
fn encode(loc: &Location) -> String {
    match loc {
        Location::Sqlite(p) => p.display().to_string(),
        Location::Postgres(pg) => format!("postgres:{}:{}", pg.schema, pg.bucket_id.unwrap()),
    }
}

fn decode(s: &str) -> Location {
    match s.strip_prefix("postgres:").and_then(|r| r.split_once(':')) {
        Some((schema, id)) => Location::Postgres(PgLocation {
            url_env: "KVFORM_TEST_PG_URL".into(),
            schema: schema.into(),
            bucket_id: Some(id.parse().unwrap()),
        }),
        None => Location::Sqlite(PathBuf::from(s)),
    }
}

fn random_ms(lo: u64, hi: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    lo + u64::from_le_bytes(b) % (hi - lo)
}

fn verify(loc: &Location, last_committed: u64) -> u64 {
    let s = loc.open().unwrap();
    let report = kvform::state::check::check(&s).unwrap();
    assert!(report.ok(), "state check after SIGKILL: {:?}", report.problems);
    let serial = s.meta().unwrap().serial;
    assert!(
        serial == last_committed || serial == last_committed + 1,
        "serial {serial}, last reported commit {last_committed}"
    );
    let snap = s.snapshot().unwrap();
    if serial == 0 {
        assert!(snap.entries.is_empty(), "writes visible without a commit");
        return serial;
    }
    let keys = &snap.entries[NS];
    assert_eq!(keys.len(), KEYS, "a change set is all or nothing");
    for (k, e) in keys {
        assert_eq!(e.value, format!("t{serial}"), "{k}: partial change set visible at serial {serial}");
        assert_eq!(e.serial, serial);
        assert_eq!(e.version, serial, "{k}: one version per committed change set");
    }
    assert_eq!(s.audit(1).unwrap()[0].serial, serial);
    serial
}

#[test]
fn state_survives_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/kvform.db");
    StateStore::init(&path, 1767323045).unwrap();
    sigkill_rounds(&Location::Sqlite(path), (50, 900));
}

/// The same on PostgreSQL: a killed writer's transaction rolls back and its advisory lock
/// is released by the server when the connection drops. Change sets take longer over a
/// socket, so the kills come later.
#[test]
fn state_survives_sigkill_at_random_moments_on_postgres() {
    if tf_support::pg_url("state_survives_sigkill_at_random_moments_on_postgres").is_none() {
        return;
    }
    let schema = format!("kvc_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    // Dropped here in the parent once every killed child was waited for (the children only
    // get `postgres:<schema>:<id>` and never drop anything).
    let _registry = tf_support::DropRegistry(schema.clone());
    let loc = Location::Postgres(PgLocation { url_env: "KVFORM_TEST_PG_URL".into(), schema, bucket_id: None });
    let (_, _, id) = loc.init(1767323045).unwrap();
    let Location::Postgres(pg) = loc else { unreachable!() };
    sigkill_rounds(&Location::Postgres(PgLocation { bucket_id: id, ..pg }), (200, 4000));
}

fn sigkill_rounds(loc: &Location, window_ms: (u64, u64)) {
    let mut last = 0;
    let mut progressed = 0;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
            .env("KVFORM_CRASH_STATE", encode(loc))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(last));
        let out = child.stdout.take().unwrap();
        let seen2 = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest may print "test crash_writer_child ... " on the same line first.
                if let Some(i) = line.find("committed ") {
                    *seen2.lock().unwrap() = line[i + 10..].trim().parse().unwrap();
                }
            }
        });
        std::thread::sleep(Duration::from_millis(random_ms(window_ms.0, window_ms.1)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let reported = *seen.lock().unwrap();
        // The OS (or the PostgreSQL server, on the closed connection) released the dead
        // writer's lock: no manual cleanup needed. The server notices the closed socket
        // asynchronously, so allow it a moment.
        let free_by = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let holder = loc.open().unwrap().lock_status().unwrap().0;
            if holder.is_none() {
                break;
            }
            assert!(std::time::Instant::now() < free_by, "lock still held after SIGKILL: {holder:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let serial = verify(loc, reported);
        if serial > last {
            progressed += 1;
        }
        eprintln!("round {round}: reported {reported}, state serial {serial}");
        last = serial;
    }
    assert!(progressed >= KILLS / 4, "the writer should commit in most rounds (got {progressed})");
}
