//! The state on a real PostgreSQL (`KVFORM_TEST_PG_URL`; `.ci/run` starts one): the CLI
//! from `init` to `apply`, `plan`, `kv set|get|history`, `cat`, `gc`, `state check|info`;
//! the lock across processes and connections (8 × 50 concurrent `kv set`: state_concurrency); and `state
//! migrate` sqlite -> postgres -> sqlite. Each test has its own registry schema.

mod tf_support;

use std::process::Command;
use tf_support::{kvform, ok, pg_bucket, pg_url, stderr, stdout};

fn hcl(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("kvform.hcl")).unwrap()
}

fn state_info_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&ok(dir, &["state", "info", "--format", "json"])).unwrap()
}

#[test]
fn the_cli_works_on_a_postgres_state() {
    let Some(url) = pg_url("the_cli_works_on_a_postgres_state") else { return };
    let b = pg_bucket();
    let d = b.path();
    let text = hcl(d);
    assert!(text.contains("bucket_id = \""), "init records the bucket id in kvform.hcl:\n{text}");
    assert!(!d.join("data/kvform.db").exists(), "no SQLite file is made for a PostgreSQL state");

    let out = ok(d, &["apply", "--auto-approve"]);
    assert!(out.contains("Apply complete"), "{out}");
    let out = ok(d, &["plan"]);
    assert!(out.contains("No changes"), "a second plan is empty:\n{out}");
    let serial = state_info_json(d)["serial"].as_u64().unwrap();

    ok(d, &["kv", "set", "vars/job/web", "greeting2", "one"]);
    ok(d, &["kv", "set", "vars/job/web", "greeting2", "two"]);
    assert_eq!(ok(d, &["kv", "get", "vars/job/web", "greeting2"]).trim(), "two");
    let hist = ok(d, &["kv", "history", "vars/job/web", "greeting2"]);
    assert!(hist.contains("one") && hist.contains("two"), "{hist}");
    assert_eq!(state_info_json(d)["serial"].as_u64().unwrap(), serial + 2);
    assert!(ok(d, &["cat", "kv"]).contains("greeting2"));
    ok(d, &["kv", "delete", "vars/job/web", "greeting2"]);
    ok(d, &["gc"]);
    let check = ok(d, &["state", "check"]);
    assert!(check.starts_with("ok:"), "{check}");
    // A secret reaches PostgreSQL sealed only.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["kv", "set", "secrets/job/web", "password", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hunter2-plain").unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(d, &["kv", "get", "secrets/job/web", "password", "--reveal"]).trim(), "hunter2-plain");
    let loc = location(d);
    let kvform::state::Location::Postgres(pg) = &loc else { unreachable!() };
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let schema = kvform::state::postgres::bucket_schema(&pg.schema, pg.bucket_id.unwrap());
    let stored: String = db
        .query_one(&format!("SELECT value FROM {schema}.latest WHERE namespace = 'secrets/job/web'"), &[])
        .unwrap()
        .get(0);
    assert!(!stored.contains("hunter2"), "the database holds ciphertext only: {stored}");
    assert!(ok(d, &["state", "check"]).starts_with("ok:"));

    // `state backup` writes a portable SQLite file holding the same state.
    let backup = d.join("backup.db");
    ok(d, &["state", "backup", backup.to_str().unwrap()]);
    let meta = kvform::state::backup::verify(&backup).unwrap();
    assert_eq!(meta.serial, state_info_json(d)["serial"].as_u64().unwrap());
    assert_eq!(meta.lineage.to_string(), state_info_json(d)["lineage"].as_str().unwrap());
    let copy = kvform::state::StateStore::open(&backup).unwrap();
    assert_eq!(copy.history("vars/job/web", "greeting2").unwrap().len(), 3);

    // A fresh clone (kvform.hcl, no data/) finds the same state.
    let clone = tempfile::tempdir().unwrap();
    std::fs::write(clone.path().join("kvform.hcl"), hcl(d)).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&ok(clone.path(), &["state", "info", "--format", "json"])).unwrap();
    assert_eq!(info["serial"], state_info_json(d)["serial"]);
}

#[test]
fn a_connection_string_in_kvform_hcl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kvform.hcl"),
        "state {\n  backend = \"postgres\"\n  url = \"postgres://u:secret@db/kvform\"\n}\n",
    )
    .unwrap();
    let o = kvform(dir.path(), &["state", "info"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("`url` is not allowed in kvform.hcl") && err.contains("url_env"), "{err}");
    let o = kvform(dir.path(), &["validate"]);
    assert!(!o.status.success() && stderr(&o).contains("url_env"), "{}", stderr(&o));
}

#[test]
fn a_held_lock_names_its_holder_and_a_dropped_connection_releases_it() {
    let Some(url) = pg_url("a_held_lock_names_its_holder_and_a_dropped_connection_releases_it") else { return };
    let b = pg_bucket();
    let d = b.path();
    // Hold the lock from a second process: `kvform kv set` waiting on stdin is not
    // possible, so take it from this process through the library, as a running apply would.
    let loc = location(d);
    let store = loc.open().unwrap();
    let txn = store.begin_write("apply", std::time::Duration::ZERO, 1767323045).unwrap();
    let lock_id = txn.lock_holder().lock_id.clone();

    let o = kvform(d, &["kv", "set", "--lock-timeout", "0", "vars/job/web", "k", "v"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("locked by") && err.contains(&lock_id) && err.contains("`apply`"), "{err}");
    // Waiting: released within the timeout, the waiter goes on.
    let waiter = std::thread::spawn({
        let d = d.to_path_buf();
        move || kvform(&d, &["kv", "set", "--lock-timeout", "20s", "vars/job/web", "k", "v"])
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(txn);
    let o = waiter.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // A holder whose connection drops (a vanished runner) frees the lock at once; its
    // record is stale and replaced by the next holder.
    let store = loc.open().unwrap();
    let mut txn = store.begin_write("apply", std::time::Duration::ZERO, 1767323045).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let n = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
            &[&((advisory_key(&loc) as u64 >> 32) as i64), &((advisory_key(&loc) as u64 & 0xffff_ffff) as i64)],
        )
        .unwrap();
    assert_eq!(n, 1, "the holder's advisory lock was found");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = kvform(d, &["kv", "set", "--lock-timeout", "5s", "vars/job/web", "k", "w"]);
    assert!(o.status.success(), "the lock was released with the connection: {}", stderr(&o));
    // The old holder cannot commit without its lock.
    txn.put(kvform::state::Write::new("vars/job/web", "k", "lost", "test", 1767323045)).unwrap();
    let err = txn.commit(kvform::state::ApplyRecord::new("apply", 1767323045)).unwrap_err();
    assert!(err.to_string().contains("lock was lost"), "{err}");
    assert_eq!(ok(d, &["kv", "get", "vars/job/web", "k"]).trim(), "w");
}

fn location(d: &std::path::Path) -> kvform::state::Location {
    let text = hcl(d);
    let field = |name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
        line.split('"').nth(1).unwrap().to_string()
    };
    kvform::state::Location::Postgres(kvform::state::PgLocation {
        url_env: "KVFORM_TEST_PG_URL".into(),
        schema: field("schema"),
        bucket_id: Some(field("bucket_id").parse().unwrap()),
    })
}

fn advisory_key(loc: &kvform::state::Location) -> i64 {
    let kvform::state::Location::Postgres(pg) = loc else { unreachable!() };
    kvform::state::postgres::lock::pg_key(&pg.schema, pg.bucket_id.unwrap())
}

#[test]
fn migrate_sqlite_to_postgres_and_back_keeps_every_version_row() {
    if pg_url("migrate_sqlite_to_postgres_and_back_keeps_every_version_row").is_none() {
        return;
    }
    let b = tf_support::applied_bucket();
    let d = b.path();
    for v in ["a", "b", "c"] {
        ok(d, &["kv", "set", "vars/job/web", "multi", v]);
    }
    // What COPY's text format must escape, a NULL column (a token that never expires),
    // bytes (the fingerprints) and a sealed secret all go over.
    let tricky = "tab\there\\back\nline\rcr\\N";
    ok(d, &["kv", "set", "vars/job/web", "tricky", tricky]);
    ok(d, &["token", "create", "ci", "--role", "reader"]);
    let before = state_info_json(d);
    let hist_before = ok(d, &["kv", "history", "vars/job/web", "multi"]);
    let cat_before = ok(d, &["cat", "kv"]);
    // Point the migration at this test's own registry schema.
    let block = tf_support::pg_state_block();
    let schema = block.lines().find(|l| l.contains("schema")).unwrap().split('"').nth(1).unwrap().to_string();
    let _drop = tf_support::DropRegistry(schema.clone());
    let out = ok(d, &["state", "migrate", "--to", "postgres", "--url-env", "KVFORM_TEST_PG_URL", "--schema", &schema]);
    assert!(out.contains("verified"), "{out}");
    // `=` aligned across the block, as `kvform fmt` lays it out.
    assert!(hcl(d).contains("  backend   = \"postgres\"\n"), "{}", hcl(d));
    let on_pg = state_info_json(d);
    for f in ["serial", "lineage", "bucket_id"] {
        assert_eq!(on_pg[f], before[f], "{f}");
    }
    assert_eq!(ok(d, &["kv", "history", "vars/job/web", "multi"]), hist_before);
    assert_eq!(ok(d, &["cat", "kv"]), cat_before);
    assert_eq!(ok(d, &["kv", "get", "vars/job/web", "tricky"]).trim_end_matches('\n'), tricky);
    assert!(ok(d, &["token", "list"]).contains("ci\treader"), "{}", ok(d, &["token", "list"]));
    assert!(ok(d, &["plan"]).contains("No changes"));
    // Again: the target holds this bucket now.
    std::fs::write(d.join("kvform.hcl"), "").unwrap();
    let o =
        kvform(d, &["state", "migrate", "--to", "postgres", "--url-env", "KVFORM_TEST_PG_URL", "--schema", &schema]);
    assert!(!o.status.success() && stderr(&o).contains("--force"), "{}", stderr(&o));
    ok(d, &["state", "migrate", "--to", "postgres", "--url-env", "KVFORM_TEST_PG_URL", "--schema", &schema, "--force"]);
    // From the PostgreSQL state onto itself: refused even with --force, which would drop
    // the bucket being copied from (issue 23: the target is compared by registry and id).
    let o = kvform(
        d,
        &["state", "migrate", "--to", "postgres", "--url-env", "KVFORM_TEST_PG_URL", "--schema", &schema, "--force"],
    );
    assert!(!o.status.success() && stderr(&o).contains("already there"), "{}", stderr(&o));
    assert_eq!(ok(d, &["cat", "kv"]), cat_before);

    // And back: the SQLite file is there from before, so --force.
    let o = kvform(d, &["state", "migrate", "--to", "sqlite"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    ok(d, &["state", "migrate", "--to", "sqlite", "--force"]);
    assert!(!hcl(d).contains("postgres\""), "{}", hcl(d));
    let back = state_info_json(d);
    for f in ["serial", "lineage", "bucket_id"] {
        assert_eq!(back[f], before[f], "{f}");
    }
    assert_eq!(ok(d, &["kv", "history", "vars/job/web", "multi"]), hist_before);
    assert!(ok(d, &["state", "check"]).starts_with("ok:"));
}

/// Issue 22 item 3: a SQLite state holding a NUL byte (stored before the one write
/// validation refused it) is refused up front, naming the key — never a raw encoding error
/// mid-copy, and no bucket schema is made.
#[test]
fn migrate_refuses_a_value_postgres_cannot_store_naming_the_key() {
    let Some(url) = pg_url("migrate_refuses_a_value_postgres_cannot_store_naming_the_key") else { return };
    let b = tf_support::applied_bucket();
    let d = b.path();
    ok(d, &["kv", "set", "vars/job/web", "binary", "clean"]);
    let c = rusqlite::Connection::open(d.join("data/kvform.db")).unwrap();
    c.execute(
        "UPDATE latest SET value = 'a' || char(0) || 'b' WHERE namespace = 'vars/job/web' AND key = 'binary'",
        [],
    )
    .unwrap();
    drop(c);
    let before = state_info_json(d);
    let block = tf_support::pg_state_block();
    let schema = block.lines().find(|l| l.contains("schema")).unwrap().split('"').nth(1).unwrap().to_string();
    let _drop = tf_support::DropRegistry(schema.clone());
    let o =
        kvform(d, &["state", "migrate", "--to", "postgres", "--url-env", "KVFORM_TEST_PG_URL", "--schema", &schema]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(err.contains("NUL byte") && err.contains("\"vars/job/web\" \"binary\" (latest version 1)"), "{err}");
    assert!(err.contains("help:") && !err.contains("invalid byte sequence"), "{err}");
    assert!(!hcl(d).contains("postgres"), "kvform.hcl still names the SQLite state:\n{}", hcl(d));
    assert_eq!(state_info_json(d)["serial"], before["serial"]);
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let made: i64 = db
        .query_one("SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, $1 || '_b_')", &[&schema])
        .unwrap()
        .get(0);
    assert_eq!(made, 0, "no bucket schema is made for a refused migration");
}

/// Issue 22 item 5: with `state { backend = "postgres" }` and no `bucket_id`, `plan` and
/// `apply` refuse before creating anything (no schema, no key), saying to run `kvform init` —
/// an apply used to make a bucket kvform.hcl never named, a new one on every run.
#[test]
fn plan_and_apply_before_init_on_postgres_create_nothing() {
    let Some(url) = pg_url("plan_and_apply_before_init_on_postgres_create_nothing") else { return };
    let b = tf_support::bucket();
    let d = b.path();
    std::fs::remove_dir_all(d.join("data")).unwrap();
    std::fs::remove_dir_all(d.join("secrets")).unwrap();
    let block = tf_support::pg_state_block();
    let registry = tf_support::registry_of(&block);
    let _drop = tf_support::DropRegistry(registry.clone());
    std::fs::write(d.join("kvform.hcl"), &block).unwrap();
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["apply", "--auto-approve"]] {
        let o = kvform(d, args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        assert!(err.contains("names no bucket (`bucket_id`); nothing was created"), "{args:?}: {err}");
        assert!(err.contains("help: run `kvform init`"), "{args:?}: {err}");
        assert!(!stdout(&o).contains("Apply complete"), "{}", stdout(&o));
    }
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let made: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1 OR starts_with(nspname, $1 || '_b_')",
            &[&registry],
        )
        .unwrap()
        .get(0);
    assert_eq!(made, 0, "no registry or bucket schema is made before `kvform init`");
    assert!(!d.join("secrets").exists() && !d.join("data").exists(), "no key, no state file");
    assert_eq!(hcl(d), block, "kvform.hcl is left as it was");
    // `init` then makes the bucket and names it; apply works.
    ok(d, &["init"]);
    assert!(hcl(d).contains("bucket_id = \""), "{}", hcl(d));
    assert!(ok(d, &["apply", "--auto-approve"]).contains("Apply complete"));
}

#[test]
fn two_appliers_in_parallel_one_applies_the_other_waits_or_names_the_holder() {
    if pg_url("two_appliers_in_parallel_one_applies_the_other_waits_or_names_the_holder").is_none() {
        return;
    }
    let run_both = |d: &std::path::Path, timeout: &str| {
        let spawn = |d: std::path::PathBuf, t: String| {
            std::thread::spawn(move || kvform(&d, &["apply", "--auto-approve", "--lock-timeout", &t]))
        };
        let (a, b) = (spawn(d.to_path_buf(), timeout.into()), spawn(d.to_path_buf(), timeout.into()));
        (a.join().unwrap(), b.join().unwrap())
    };
    // Without waiting: each either applied or was refused naming the other as holder.
    let b = pg_bucket();
    let (x, y) = run_both(b.path(), "0");
    assert!(x.status.success() || y.status.success(), "{}\n{}", stderr(&x), stderr(&y));
    for o in [&x, &y] {
        if !o.status.success() {
            let err = stderr(o);
            assert!(err.contains("locked by") && err.contains("lock id"), "{err}");
        }
    }
    // Waiting: both finish; the second one found nothing left to do.
    let b = pg_bucket();
    let (x, y) = run_both(b.path(), "2m");
    assert!(x.status.success() && y.status.success(), "{}\n{}", stderr(&x), stderr(&y));
    let outs = [stdout(&x), stdout(&y)];
    assert!(outs.iter().any(|o| o.contains("Apply complete")), "{outs:?}");
    assert!(ok(b.path(), &["plan"]).contains("No changes"));
}

#[test]
fn restore_onto_a_postgres_state_keeps_the_replaced_one_and_moves_the_serial_on() {
    if pg_url("restore_onto_a_postgres_state_keeps_the_replaced_one_and_moves_the_serial_on").is_none() {
        return;
    }
    let b = pg_bucket();
    let d = b.path();
    ok(d, &["apply", "--auto-approve"]);
    ok(d, &["kv", "set", "vars/job/web", "k", "one"]);
    let backup = d.join("backup.db");
    ok(d, &["state", "backup", backup.to_str().unwrap()]);
    ok(d, &["kv", "set", "vars/job/web", "k", "two"]);
    ok(d, &["kv", "set", "vars/job/web", "only_after", "x"]);
    let before = state_info_json(d)["serial"].as_u64().unwrap();

    let out = kvform(d, &["state", "restore", "--auto-approve", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("kept the previous state as"), "{}", stderr(&out));
    assert_eq!(ok(d, &["kv", "get", "vars/job/web", "k"]).trim(), "one");
    assert!(!kvform(d, &["kv", "get", "--error-on-missing", "vars/job/web", "only_after"]).status.success());
    assert_eq!(state_info_json(d)["serial"].as_u64().unwrap(), before + 1, "the serial never goes back");
    assert!(ok(d, &["state", "check"]).starts_with("ok"));

    // The replaced state was saved as an SQLite backup, private, and holds "two".
    let aside: Vec<_> = std::fs::read_dir(d.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".before-restore."))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&aside[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let c = rusqlite::Connection::open(&aside[0]).unwrap();
    let v: String = c
        .query_row("SELECT value FROM latest WHERE namespace = 'vars/job/web' AND key = 'k'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "two");

    // A backup of another bucket is refused, naming both buckets; nothing changes.
    let other = tf_support::bucket_with_settings("");
    ok(other.path(), &["apply", "--auto-approve"]);
    let foreign = other.path().join("other.db");
    ok(other.path(), &["state", "backup", foreign.to_str().unwrap()]);
    let serial = state_info_json(d)["serial"].as_u64().unwrap();
    let out = kvform(d, &["state", "restore", "--auto-approve", "--force", foreign.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is of bucket") && stderr(&out).contains("the state was not changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state_info_json(d)["serial"].as_u64().unwrap(), serial);
}

/// `kvform` in `dir` with `KVFORM_SECRET_KEY` set to `key` (or unset), `stdin` piped in.
fn kvform_with_key(dir: &std::path::Path, args: &[&str], key: Option<&str>, stdin: &[u8]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvform"));
    cmd.arg("-C").arg(dir).args(args).env("NO_COLOR", "1").env_remove("KVFORM_SECRET_KEY");
    if let Some(k) = key {
        cmd.env("KVFORM_SECRET_KEY", k);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin).unwrap();
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A CI runner has the workspace from git and the state on PostgreSQL, but not `secrets/`:
/// `init` there must not mint a second key or CA (secrets sealed with it would be unreadable
/// everywhere else), and the bucket's key can come from `KVFORM_SECRET_KEY`.
#[test]
fn a_runner_takes_the_bucket_key_from_the_environment_and_init_mints_none() {
    use base64::Engine as _;
    if pg_url("a_runner_takes_the_bucket_key_from_the_environment_and_init_mints_none").is_none() {
        return;
    }
    let b = pg_bucket();
    let laptop = b.path();
    let o = kvform_with_key(laptop, &["kv", "set", "secrets/job/web", "password", "-"], None, b"hunter2-plain");
    assert!(o.status.success(), "{}", stderr(&o));
    let key = base64::engine::general_purpose::STANDARD.encode(std::fs::read(laptop.join("secrets/kv.key")).unwrap());

    let runner_dir = tempfile::tempdir().unwrap();
    let runner = runner_dir.path();
    std::fs::copy(laptop.join("kvform.hcl"), runner.join("kvform.hcl")).unwrap();
    copy_tree(&laptop.join("workspace"), &runner.join("workspace"));

    // The database out of reach: init cannot tell a new bucket from one made elsewhere, so it
    // makes nothing (before, it minted a key first and failed afterwards).
    let o = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(runner)
        .arg("init")
        .env("KVFORM_TEST_PG_URL", "host=/nonexistent port=1 user=nobody dbname=none connect_timeout=2")
        .env_remove("KVFORM_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing was created"), "{}", stderr(&o));
    assert!(!runner.join("secrets").exists(), "init made secrets/ with the database out of reach");

    let o = kvform_with_key(runner, &["init"], None, b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("missing  secrets/kv.key"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("made on another machine") && stderr(&o).contains("KVFORM_SECRET_KEY"),
        "{}",
        stderr(&o)
    );
    for f in ["secrets/kv.key", "secrets/ca.crt", "secrets/ca.key"] {
        assert!(!runner.join(f).exists(), "init made {f} for a bucket made elsewhere");
    }

    let get = ["kv", "get", "secrets/job/web", "password", "--reveal"];
    let o = kvform_with_key(runner, &get, None, b"");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("KVFORM_SECRET_KEY is not set"), "{}", stderr(&o));
    let o = kvform_with_key(runner, &get, Some(&key), b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "hunter2-plain");
    // A write on the runner is sealed with the bucket's key: the laptop reads it.
    let o = kvform_with_key(runner, &["kv", "set", "secrets/job/web", "token", "-"], Some(&key), b"from-ci");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kvform_with_key(laptop, &["kv", "get", "secrets/job/web", "token", "--reveal"], None, b"");
    assert_eq!(stdout(&o).trim(), "from-ci", "{}", stderr(&o));

    let o = kvform_with_key(runner, &get, Some("not-a-key"), b"");
    assert!(stderr(&o).contains("KVFORM_SECRET_KEY is not a kvform key"), "{}", stderr(&o));
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let o = kvform_with_key(laptop, &get, Some(&other), b"");
    assert!(stderr(&o).contains("hold different keys"), "{}", stderr(&o));
    let o = kvform_with_key(runner, &["secrets", "rotate-key"], Some(&key), b"");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("rotate the key on the machine that holds secrets/kv.key"), "{}", stderr(&o));
    assert_eq!(
        kvform_with_key(runner, &get, Some(&key), b"").status.code(),
        Some(0),
        "the refused rotation changed nothing"
    );
}

/// A PostgreSQL state at schema 5 (before the recorded render) is brought to 6 when opened:
/// `render_files` is created and the version recorded, its rows untouched.
#[test]
fn a_schema_5_postgres_state_gains_the_render_table() {
    let Some(url) = pg_url("a_schema_5_postgres_state_gains_the_render_table") else { return };
    let b = pg_bucket();
    let d = b.path();
    ok(d, &["apply", "--auto-approve"]);
    let text = hcl(d);
    let field = |name: &str| {
        let line = text.lines().find_map(|l| l.trim().strip_prefix(name)).expect(name);
        line.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string()
    };
    let schema = kvform::state::postgres::bucket_schema(&field("schema"), field("bucket_id").parse().unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "SET search_path TO \"{schema}\"; DROP TABLE render_files; UPDATE schema_info SET version = 5 WHERE id = 1;"
    ))
    .unwrap();
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("No changes"), "{plan}");
    let version: i64 = c.query_one("SELECT version FROM schema_info WHERE id = 1", &[]).unwrap().get(0);
    assert_eq!(version, 6);
    let rows: i64 = c.query_one("SELECT count(*) FROM render_files", &[]).unwrap().get(0);
    assert_eq!(rows, 0);
}
