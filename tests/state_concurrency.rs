//! 8 processes × 50 `kvform kv set` (a shared key and one key per process) at once: every
//! write lands, versions per key are consecutive, nobody sees "database is locked". On
//! SQLite and, with `KVFORM_TEST_PG_URL`, on PostgreSQL (the advisory lock serialises them).

mod tf_support;

use kvform::bucket::Bucket;
use kvform::state::Location;
use std::process::Command;

const PROCS: usize = 8;
const WRITES: usize = 50;

#[test]
fn concurrent_kv_set_processes_all_land() {
    let dir = bucket();
    let loc = Location::Sqlite(Bucket::at(dir.path()).default_state_file());
    loc.init(1767323045).unwrap();
    storm(dir.path(), &loc);
}

#[test]
fn concurrent_kv_set_processes_all_land_on_postgres() {
    if tf_support::pg_url("concurrent_kv_set_processes_all_land_on_postgres").is_none() {
        return;
    }
    let dir = bucket();
    let block = tf_support::pg_state_block();
    let _drop = tf_support::DropRegistry(tf_support::registry_of(&block));
    std::fs::write(dir.path().join("kvform.hcl"), block).unwrap();
    let session = kvform::cli::session::Session::for_bucket(Bucket::at(dir.path())).unwrap();
    let (_, _, id) = session.state_location().init(1767323045).unwrap();
    let id = id.unwrap().to_string();
    kvform::workspace::hcl_files::set_state_attributes(dir.path(), &[("bucket_id", Some(id))]).unwrap();
    let session = kvform::cli::session::Session::for_bucket(Bucket::at(dir.path())).unwrap();
    storm(dir.path(), &session.state_location());
}

/// A bucket whose workspace has the job `load` (operator writes must name a job).
fn bucket() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workspace/jobs/load")).unwrap();
    std::fs::write(dir.path().join("workspace/jobs/load/manifest.json"), "{}").unwrap();
    dir
}

fn storm(root: &std::path::Path, loc: &Location) {
    let root = root.to_path_buf();
    let handles: Vec<_> = (0..PROCS)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for j in 0..WRITES {
                    let key = if j % 2 == 0 { "shared".to_string() } else { format!("own-{i}") };
                    let o = Command::new(env!("CARGO_BIN_EXE_kvform"))
                        .arg("-C")
                        .arg(&root)
                        .args(["kv", "set", "--lock-timeout", "2m", "vars/job/load", &key, &format!("p{i}-w{j}")])
                        .output()
                        .unwrap();
                    let err = String::from_utf8_lossy(&o.stderr).into_owned();
                    if !o.status.success() || err.contains("locked") {
                        failures.push(format!("p{i} w{j}: {err}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(failures.is_empty(), "{failures:#?}");

    let s = loc.open().unwrap();
    assert_eq!(s.meta().unwrap().serial, (PROCS * WRITES) as u64);
    let audit = s.audit(usize::MAX >> 1).unwrap();
    assert_eq!(audit.len(), PROCS * WRITES);
    let mut serials: Vec<u64> = audit.iter().map(|a| a.serial).collect();
    serials.sort();
    assert_eq!(serials, (1..=(PROCS * WRITES) as u64).collect::<Vec<_>>(), "one serial per write");
    assert!(audit.iter().all(|a| a.added + a.changed == 1));
    assert_eq!(s.get("vars/job/load", "shared").unwrap().unwrap().version, (PROCS * WRITES / 2) as u64);
    for i in 0..PROCS {
        let e = s.get("vars/job/load", &format!("own-{i}")).unwrap().unwrap();
        assert_eq!(e.version, (WRITES / 2) as u64);
        assert_eq!(e.value, format!("p{i}-w{}", WRITES - 1));
    }
    let report = kvform::state::check::check(&s).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
