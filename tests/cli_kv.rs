//! `kvform kv …`, `cat kv`, `state …`, `gc`, `secrets rotate-key` end to end through the binary.

mod quickstart_copy;

use kvform::bucket::Bucket;
use kvform::secrets::Keyring;
use kvform::state::StateStore;
use quickstart_copy::quickstart_copy;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SECRET: &str = "s3cr3t-PLAINTEXT-value";

/// Jobs `api` and `database` in `dir`'s workspace (operator writes must name a workspace job).
fn jobs(dir: &Path) {
    for job in ["api", "database"] {
        std::fs::create_dir_all(dir.join("workspace/jobs").join(job)).unwrap();
        std::fs::write(dir.join("workspace/jobs").join(job).join("manifest.json"), "{}").unwrap();
    }
}

/// A bucket with jobs `api` and `database`, a key and a fresh state (what `kvform init` and a
/// workspace would give).
fn bucket() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    jobs(dir.path());
    let b = Bucket::at(dir.path());
    Keyring::create(&b).unwrap();
    StateStore::init(&b.default_state_file(), 1767323045).unwrap();
    dir
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("data/kvform.db")
}

fn kvform(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    kvform_at(dir, "2026-01-02T03:04:05Z", args, stdin)
}

fn kvform_at(dir: &Path, now: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"));
    c.arg("-C").arg(dir).args(args).env("KVFORM_NOW", now).env("NO_COLOR", "1");
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args, None);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs, must fail with exit 1; returns stderr.
fn fails(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let o = kvform(dir, args, stdin);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail; stdout {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr).unwrap()
}

fn serial(dir: &Path) -> u64 {
    StateStore::open(&state_file(dir)).unwrap().meta().unwrap().serial
}

#[test]
fn set_get_delete_keys_history() {
    let d = bucket();
    let p = d.path();
    ok(p, &["kv", "set", "vars/job/api", "db_host", "10.0.0.5"]);
    ok(p, &["kv", "set", "vars/job/api", "db_host", "10.0.0.6"]);
    ok(p, &["kv", "set", "vars/job/api", "db_host", "10.0.0.6"]); // identical: no new serial
    ok(p, &["kv", "set", "vars/job/api", "db_port", "5432"]);
    assert_eq!(serial(p), 3);
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "db_host"]), "10.0.0.6\n");
    assert_eq!(ok(p, &["kv", "keys", "vars/job/api", "--prefix", "db_"]), "db_host\ndb_port\n");
    ok(p, &["kv", "delete", "vars/job/api", "db_port"]);
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "db_port"]), "");
    let err = fails(p, &["kv", "get", "vars/job/api", "db_port", "--error-on-missing"], None);
    assert!(err.contains("vars/job/api db_port does not exist"), "{err}");
    let err = fails(p, &["kv", "delete", "vars/job/api", "db_port", "--error-on-missing"], None);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(ok(p, &["kv", "keys", "vars/job/api"]), "db_host\n");
    let h = ok(p, &["kv", "history", "vars/job/api", "db_port"]);
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 3, "{h}");
    assert!(lines[0].starts_with("VERSION"));
    assert!(
        lines[1].contains("2026-01-02T03:04:05Z")
            && lines[1].contains(&kvform::state::actor())
            && lines[1].ends_with("5432"),
        "{h}"
    );
    assert!(lines[2].contains("(deleted)"), "{h}");
    // --no-overwrite
    let err = fails(p, &["kv", "set", "vars/job/api", "db_host", "x", "--no-overwrite"], None);
    assert!(err.contains("already exists (version 2)"), "{err}");
    ok(p, &["kv", "set", "vars/job/api", "db_port", "1", "--no-overwrite"]); // deleted -> allowed
    // value from stdin, trimmed
    let o = kvform(p, &["kv", "set", "vars/job/api", "motd", "-"], Some("  hello\n"));
    assert!(o.status.success());
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "motd"]), "hello\n");
}

#[test]
fn ttl_is_recorded_and_expiry_is_reported() {
    let d = bucket();
    let p = d.path();
    ok(p, &["kv", "set", "vars/job/api", "a", "1", "--ttl", "1h"]);
    ok(p, &["kv", "set", "vars/job/api", "b", "1", "--ttl", "P30D"]);
    ok(p, &["kv", "set", "vars/job/api", "c", "1", "--ttl", "90"]);
    let s = StateStore::open(&state_file(p)).unwrap();
    assert_eq!(s.get("vars/job/api", "a").unwrap().unwrap().ttl, 3600);
    assert_eq!(s.get("vars/job/api", "b").unwrap().unwrap().ttl, 30 * 86400);
    assert_eq!(s.get("vars/job/api", "c").unwrap().unwrap().ttl, 90);
    let o = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(p)
        .args(["kv", "get", "vars/job/api", "a"])
        .env("KVFORM_NOW", "2026-01-02T05:00:00Z")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n", "an expired key stays readable");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("expired at 2026-01-02T04:04:05Z"), "{err}");
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let d = bucket();
    let p = d.path();
    let cases: &[(&[&str], &str)] = &[
        (&["kv", "set", "vars/jobs/api", "k", "v"], "unknown namespace \"vars/jobs/api\""),
        (
            &["kv", "set", "maand/job/api", "k", "v"],
            "owned by the workspace: change the workspace and run `kvform apply`",
        ),
        (&["kv", "set", "vars/bucket", "k", "v"], "owned by the workspace"),
        (&["kv", "set", "vars/job/api", ".bad", "v"], "invalid key \".bad\""),
        (&["kv", "set", "vars/job/api", "bad key", "v"], "invalid key"),
        (&["kv", "set", "vars/job/api", "k", "v", "--ttl", "soon"], "invalid --ttl \"soon\""),
        (&["kv", "set", "vars/job/api", "k", "v", "--ttl=-5"], "invalid --ttl"),
        (&["kv", "set", "vars/job/api", "k", "v", "--ttl", "1.5s"], "invalid --ttl"),
        (&["kv", "set", "vars/job/api", "k", "v", "--secret"], "--secret writes go to secrets/job/<job>"),
        (&["kv", "set", "secrets/job/api", "k", SECRET], "refusing a secret value on the command line"),
        (&["kv", "delete", "maand/bucket", "jobs"], "owned by the workspace"),
        (&["kv", "get", "nope", "k"], "unknown namespace"),
    ];
    for (args, want) in cases {
        let err = fails(p, args, None);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains(SECRET), "{err}");
    }
    assert_eq!(serial(p), 0);
    assert!(StateStore::open(&state_file(p)).unwrap().snapshot().unwrap().entries.is_empty());
}

/// Issue 22 item 3: the one write validation — what PostgreSQL could not store (a NUL
/// byte) or `created_at + ttl` could not hold is refused by `kv set` as by every door.
#[test]
fn kv_set_refuses_what_a_backend_could_not_store() {
    let d = bucket();
    let p = d.path();
    let err = fails(p, &["kv", "set", "vars/job/api", "k", "-"], Some("a\0b"));
    assert!(err.contains("contains a NUL byte") && err.contains("help:"), "{err}");
    let err = fails(p, &["kv", "set", "secrets/job/api", "pw", "-"], Some("s3cr3t\0"));
    assert!(err.contains("contains a NUL byte") && !err.contains("s3cr3t"), "{err}");
    for ttl in ["9223372036854775807", "9223372036854775808", "18446744073709551615", "P36501D"] {
        let err = fails(p, &["kv", "set", "vars/job/api", "k", "v", "--ttl", ttl], None);
        assert!(err.contains("more than 3153600000 seconds (100 years)"), "{ttl}: {err}");
        assert!(!err.contains("CHECK") && !err.contains("kvform.db"), "{err}");
    }
    assert_eq!(serial(p), 0);
    // The bound itself is accepted, and shown as a real date.
    ok(p, &["kv", "set", "vars/job/api", "k", "v", "--ttl", "P36500D"]);
    let got: serde_json::Value =
        serde_json::from_str(&ok(p, &["kv", "history", "vars/job/api", "k", "--format", "json"])).unwrap();
    assert_eq!(got[0]["expires_at"], "2125-12-09T03:04:05Z", "{got}");
}

#[test]
fn missing_state_wrong_schema_and_not_a_bucket() {
    let d = tempfile::tempdir().unwrap();
    let err = fails(d.path(), &["kv", "get", "vars/job/api", "k"], None);
    assert!(err.contains("is not a kvform bucket"), "{err}");
    std::fs::create_dir_all(d.path().join("workspace")).unwrap();
    let err = fails(d.path(), &["kv", "set", "vars/job/api", "k", "v"], None);
    assert!(err.contains("no state at") && err.contains("run `kvform init`"), "{err}");
    assert!(!state_file(d.path()).exists(), "a failed command creates no state");
    let b = bucket();
    let c = rusqlite::Connection::open(state_file(b.path())).unwrap();
    c.pragma_update(None, "user_version", 42).unwrap();
    drop(c);
    let err = fails(b.path(), &["state", "info"], None);
    assert!(err.contains("schema version 42"), "{err}");
}

#[test]
fn secrets_never_show_without_reveal_and_never_hit_disk() {
    let d = bucket();
    let p = d.path();
    let o = kvform(p, &["kv", "set", "secrets/job/api", "token", "-"], Some(SECRET));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(p, &["kv", "set", "vars/job/api", "plain", "visible"]);
    let mut outputs = vec![
        ok(p, &["kv", "get", "secrets/job/api", "token"]),
        ok(p, &["cat", "kv"]),
        ok(p, &["cat", "kv", "--format", "json"]),
        ok(p, &["kv", "history", "secrets/job/api", "token"]),
        ok(p, &["kv", "history", "secrets/job/api", "token", "--format", "json"]),
        ok(p, &["cat", "kv", "get", "secrets/job/api", "token"]),
        ok(p, &["state", "info"]),
    ];
    let o = kvform(p, &["kv", "get", "secrets/job/api", "token"], None);
    outputs.push(String::from_utf8_lossy(&o.stderr).into_owned());
    for out in &outputs {
        assert!(!out.contains("s3cr3t"), "{out}");
    }
    assert_eq!(outputs[0], "(sensitive)\n");
    assert!(outputs[1].contains("(sensitive)") && outputs[1].contains("visible"), "{}", outputs[1]);
    let json: serde_json::Value = serde_json::from_str(&outputs[2]).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["namespace"], "secrets/job/api");
    assert_eq!(rows[0]["value"], "(sensitive)");
    let fields: Vec<&str> = rows[0].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        fields,
        [
            "namespace",
            "key",
            "value",
            "version",
            "deleted",
            "ttl",
            "created_at",
            "expires_at",
            "serial",
            "writer",
            "type",
            "description"
        ]
    );
    assert_eq!(rows[0]["created_at"], "2026-01-02T03:04:05Z");
    // --reveal prints plaintext.
    assert_eq!(ok(p, &["kv", "get", "secrets/job/api", "token", "--reveal"]), format!("{SECRET}\n"));
    assert!(ok(p, &["cat", "kv", "--reveal"]).contains(SECRET));
    // The raw files never hold the plaintext.
    for entry in std::fs::read_dir(p.join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"));
    }
    // Rotation: everything still opens, old key kept.
    let out = ok(p, &["secrets", "rotate-key"]);
    assert!(out.contains("re-encrypted 1 secret value(s)"), "{out}");
    assert!(p.join("secrets/kv.key.old").exists());
    assert_eq!(ok(p, &["kv", "get", "secrets/job/api", "token", "--reveal"]), format!("{SECRET}\n"));
    assert!(ok(p, &["state", "check"]).starts_with("ok:"));
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let d = bucket();
    let p = d.path();
    std::fs::set_permissions(p.join("secrets/kv.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(p, &["kv", "set", "secrets/job/api", "token", "-"], Some("x"));
    assert!(err.contains("readable by group or others (mode 0644)") && err.contains("chmod 600"), "{err}");
    assert_eq!(serial(p), 0);
}

#[test]
fn cat_kv_filters_and_truncates() {
    let d = bucket();
    let p = d.path();
    // Workspace-owned namespaces are written by apply; use the library as apply would.
    let s = StateStore::open(&state_file(p)).unwrap();
    let mut t = s.begin_write("apply", std::time::Duration::ZERO, 1767323045).unwrap();
    t.put(kvform::state::Write::new("maand/worker/10.0.0.1", "worker_ip", "10.0.0.1", "apply", 0)).unwrap();
    t.put(kvform::state::Write::new("maand/worker/10.0.0.2", "worker_ip", "10.0.0.2", "apply", 0)).unwrap();
    t.put(kvform::state::Write::new("maand/job/api/worker/10.0.0.1", "version", "1", "apply", 0)).unwrap();
    t.put(kvform::state::Write::new("maand/job/api/worker/10.0.0.2", "version", "1", "apply", 0)).unwrap();
    t.put(kvform::state::Write::new("vars/job/api", "long", &"x".repeat(200), "apply", 0)).unwrap();
    t.put(kvform::state::Write::new("vars/job/api", "gone", "v", "apply", 0)).unwrap();
    t.tombstone("vars/job/api", "gone", "apply", 0).unwrap();
    t.commit(kvform::state::ApplyRecord::new("apply", 0)).unwrap();

    let only1 = ok(p, &["cat", "kv", "--workers", "10.0.0.1", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&only1).unwrap();
    let ns: Vec<&str> = rows.iter().map(|r| r["namespace"].as_str().unwrap()).collect();
    assert_eq!(ns, ["maand/job/api/worker/10.0.0.1", "maand/worker/10.0.0.1"]);
    let table = ok(p, &["cat", "kv"]);
    assert!(table.contains("deleted"), "{table}");
    assert!(table.contains(&format!("{}…", "x".repeat(47))) && !table.contains(&"x".repeat(49)), "{table}");
    assert!(!ok(p, &["cat", "kv", "--active"]).contains("gone"));
    assert_eq!(ok(p, &["cat", "kv", "get", "vars/job/api", "long"]), format!("{}\n", "x".repeat(200)));
}

#[test]
fn state_info_check_backup_restore_gc_force_unlock() {
    let d = bucket();
    let p = d.path();
    ok(p, &["kv", "set", "vars/job/api", "a", "1"]);
    let info = ok(p, &["state", "info"]);
    assert!(info.contains("serial:         1"), "{info}");
    assert!(info.contains("vars/job/<job>") && info.contains("lock:           free"), "{info}");
    assert!(info.contains("kv set"), "{info}");
    assert!(ok(p, &["state", "check"]).starts_with("ok: 1 keys"));
    let backup = p.join("b.db");
    ok(p, &["state", "backup", backup.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    ok(p, &["kv", "set", "vars/job/api", "a", "2"]);
    let junk = p.join("junk.db");
    std::fs::write(&junk, "junk").unwrap();
    let err = fails(p, &["state", "restore", junk.to_str().unwrap()], None);
    assert!(err.contains("the state was not changed"), "{err}");
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "a"]), "2\n");
    // Without a terminal there is no one to say `yes`: refused, nothing changed.
    let err = fails(p, &["state", "restore", backup.to_str().unwrap()], None);
    assert!(
        err.contains("state restore needs confirmation, but stdin is not a terminal") && err.contains("--auto-approve"),
        "{err}"
    );
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "a"]), "2\n");
    ok(p, &["state", "restore", "-auto-approve", backup.to_str().unwrap()]);
    assert_eq!(ok(p, &["kv", "get", "vars/job/api", "a"]), "1\n");
    assert!(p.join("data/kvform.db.before-restore.2").exists());

    ok(p, &["kv", "delete", "vars/job/api", "a"]);
    let later = |args: &[&str]| {
        let o = kvform_at(p, "2026-01-03T00:00:00Z", args, None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let dry = later(&["gc", "--retain-days", "0", "--dry-run"]);
    assert!(dry.contains("would remove 2 row(s) of 1 key(s)"), "{dry}");
    assert!(StateStore::open(&state_file(p)).unwrap().get("vars/job/api", "a").unwrap().is_some());
    let real = later(&["gc", "--retain-days", "0"]);
    assert!(real.contains("removed 2 row(s)"), "{real}");
    assert!(StateStore::open(&state_file(p)).unwrap().get("vars/job/api", "a").unwrap().is_none());

    let err = fails(p, &["state", "force-unlock", "no-such-id"], None);
    assert!(err.contains("no lock with id no-such-id"), "{err}");
}

/// kvform.hcl's `state { path }` and `max_versions` hold for every state command.
#[test]
fn commands_use_the_state_and_history_limit_of_kvform_hcl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    jobs(d);
    std::fs::write(d.join("kvform.hcl"), "max_versions = 2\nstate {\n  path = \"elsewhere/main.db\"\n}\n").unwrap();
    let b = Bucket::at(d);
    Keyring::create(&b).unwrap();
    let session = kvform::cli::session::Session::for_bucket(b.clone()).unwrap();
    assert_eq!(session.state_file(), d.join("elsewhere/main.db"));
    // Only the configured state exists: a command that used the default would fail.
    StateStore::init(&d.join("elsewhere/main.db"), 1767323045).unwrap();
    for v in ["1", "2", "3"] {
        ok(d, &["kv", "set", "vars/job/api", "level", v]);
    }
    let o = kvform(d, &["kv", "set", "--secret", "secrets/job/api", "token", "-"], Some(SECRET));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!state_file(d).exists());
    let history = ok(d, &["kv", "history", "vars/job/api", "level"]);
    assert_eq!(history.lines().count(), 3, "a header and max_versions = 2 rows:\n{history}");
    let rows = StateStore::open(&d.join("elsewhere/main.db")).unwrap().history("vars/job/api", "level").unwrap();
    assert_eq!(rows.iter().map(|r| r.version).collect::<Vec<_>>(), [2, 3], "max_versions = 2 keeps two rows");
    assert!(ok(d, &["cat", "kv"]).contains("vars/job/api"));
    assert!(ok(d, &["state", "info"]).contains("elsewhere/main.db"));
    ok(d, &["gc", "--dry-run"]);
    ok(d, &["secrets", "rotate-key"]);
    assert_eq!(ok(d, &["kv", "get", "--reveal", "secrets/job/api", "token"]).trim(), SECRET);
}

/// A broken kvform.hcl is reported, not papered over with the default state path.
#[test]
fn an_invalid_kvform_hcl_is_an_error_not_the_default_state() {
    let dir = bucket();
    let d = dir.path();
    std::fs::write(d.join("kvform.hcl"), "state {\n  path = 42\n}\n").unwrap();
    let e = fails(d, &["kv", "get", "vars/job/api", "x"], None);
    assert!(e.contains("kvform.hcl is invalid, so kvform cannot tell where the state is"), "{e}");
    assert!(e.contains("kvform.hcl:2:10"), "{e}");
    assert!(e.contains("kvform validate"), "{e}");
}

/// The quickstart with a hand-made state, as an apply would leave it: api on 10.0.0.1 and
/// 10.0.0.2, database on 10.0.0.1, frontend on 10.0.0.2, and api's old allocation on
/// 10.0.0.3 removed (its namespace tombstoned).
fn quickstart_with_state() -> tempfile::TempDir {
    let dir = quickstart_copy();
    let d = dir.path();
    let b = Bucket::at(d);
    Keyring::create(&b).unwrap();
    let (store, _) = StateStore::init(&b.default_state_file(), 1767323045).unwrap();
    let mut txn =
        store.with_keyring(Keyring::load(&b).unwrap()).begin_write("test", Default::default(), 1767323045).unwrap();
    let mut put = |ns: &str, key: &str| {
        txn.put(kvform::state::Write::new(ns, key, "x", "apply", 1)).unwrap();
    };
    for ns in [
        "maand/bucket",
        "maand/worker",
        "vars/bucket",
        "maand/worker/10.0.0.1",
        "maand/worker/10.0.0.1/tags",
        "maand/worker/10.0.0.2",
        "maand/worker/10.0.0.3",
        "maand/job/api",
        "maand/job/database",
        "maand/job/frontend",
        "maand/job/api/worker/10.0.0.1",
        "maand/job/api/worker/10.0.0.2",
        "maand/job/api/worker/10.0.0.3",
        "maand/job/database/worker/10.0.0.1",
        "maand/job/frontend/worker/10.0.0.2",
        "vars/bucket/job/api",
        "vars/job/api",
        "vars/job/database",
        "vars/job/frontend",
        "secrets/job/api",
        "secrets/job/database",
        "secrets/job/frontend",
    ] {
        put(ns, "k");
    }
    txn.tombstone("maand/job/api/worker/10.0.0.3", "k", "apply", 1).unwrap();
    txn.commit(kvform::state::ApplyRecord::new("test", 1)).unwrap();
    dir
}

/// Namespaces of `cat kv --format json`, deduplicated, in order.
fn listed(d: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["cat", "kv", "--format", "json"];
    all.extend_from_slice(args);
    let rows: serde_json::Value = serde_json::from_str(&ok(d, &all)).unwrap();
    let mut out: Vec<String> =
        rows.as_array().unwrap().iter().map(|r| r["namespace"].as_str().unwrap().into()).collect();
    out.dedup();
    out
}

#[test]
fn cat_kv_jobs_shows_what_the_jobs_hooks_can_read() {
    let dir = quickstart_with_state();
    let d = dir.path();
    // api demands database: its own namespaces, both of its allocations' workers, and
    // database's job-level namespaces — never frontend's, nor database's allocations, nor
    // the removed allocation's worker.
    assert_eq!(
        listed(d, &["--jobs", "api"]),
        [
            "maand/bucket",
            "maand/job/api",
            "maand/job/api/worker/10.0.0.1",
            "maand/job/api/worker/10.0.0.2",
            "maand/job/database",
            "maand/worker",
            "maand/worker/10.0.0.1",
            "maand/worker/10.0.0.1/tags",
            "maand/worker/10.0.0.2",
            "secrets/job/api",
            "secrets/job/database",
            "vars/bucket",
            "vars/bucket/job/api",
            "vars/job/api",
            "vars/job/database",
        ]
    );
    // --workers narrows the allocations, not the bucket-wide namespaces.
    assert_eq!(
        listed(d, &["--jobs", "api", "--workers", "10.0.0.2"]),
        [
            "maand/bucket",
            "maand/job/api",
            "maand/job/api/worker/10.0.0.2",
            "maand/job/database",
            "maand/worker",
            "maand/worker/10.0.0.2",
            "secrets/job/api",
            "secrets/job/database",
            "vars/bucket",
            "vars/bucket/job/api",
            "vars/job/api",
            "vars/job/database",
        ]
    );
    // A union over jobs: database demands nothing; frontend demands api, so it sees api's
    // job-level namespaces (secrets included) but not api's allocations or vars/bucket/job/api.
    assert_eq!(
        listed(d, &["--jobs", "database,frontend"]),
        [
            "maand/bucket",
            "maand/job/api",
            "maand/job/database",
            "maand/job/database/worker/10.0.0.1",
            "maand/job/frontend",
            "maand/job/frontend/worker/10.0.0.2",
            "maand/worker",
            "maand/worker/10.0.0.1",
            "maand/worker/10.0.0.1/tags",
            "maand/worker/10.0.0.2",
            "secrets/job/api",
            "secrets/job/database",
            "secrets/job/frontend",
            "vars/bucket",
            "vars/job/api",
            "vars/job/database",
            "vars/job/frontend",
        ]
    );
    // No allocation on that worker: nothing, with a note.
    let o = kvform(d, &["cat", "kv", "--jobs", "database", "--workers", "10.0.0.2"], None);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no allocation of database on the given workers"));
    // Unknown job: an error with a hint.
    let e = fails(d, &["cat", "kv", "--jobs", "apj"], None);
    assert!(e.contains("no job `apj` in the workspace") && e.contains("did you mean `api`?"), "{e}");
}

#[test]
fn cat_kv_jobs_needs_a_valid_workspace() {
    let dir = quickstart_with_state();
    let d = dir.path();
    std::fs::write(d.join("workspace/workers.json"), "[{\"host\": \"10.0.0.1\", \"memroy\": \"1 gb\"}]").unwrap();
    let e = fails(d, &["cat", "kv", "--jobs", "api"], None);
    assert!(e.contains("workspace/workers.json:1:23") && e.contains("did you mean `memory`?"), "{e}");
    assert!(e.contains("the workspace is invalid"), "{e}");
    // Without --jobs the state is listed as always.
    assert!(ok(d, &["cat", "kv"]).contains("maand/job/api"));
}

#[test]
fn set_refuses_a_job_the_workspace_does_not_have() {
    let dir = bucket();
    for (ns, needle) in [("vars/job/apii", "no job `apii` in the workspace"), ("vars/job/API", "is not a job name")] {
        let out = kvform(dir.path(), &["kv", "set", ns, "k", "v"], None);
        assert_eq!(out.status.code(), Some(1), "{ns}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let serial = StateStore::open(&state_file(dir.path())).unwrap().meta().unwrap().serial;
    assert_eq!(serial, 0, "nothing written");
}

#[test]
fn state_check_fails_when_a_secret_cannot_be_opened_with_the_key_files() {
    let dir = bucket();
    let out = kvform(dir.path(), &["kv", "set", "secrets/job/api", "token", "-", "--secret"], Some("s3cret"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(kvform(dir.path(), &["state", "check"], None).status.success());
    // Another bucket's key: the state is intact on disk, but its secrets are lost to hooks.
    std::fs::write(dir.path().join("secrets/kv.key"), [7u8; 32]).unwrap();
    let out = kvform(dir.path(), &["state", "check"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secrets/job/api token") && err.contains("sealed with key"), "{err}");
    assert!(!err.contains("s3cret"));
}

#[test]
fn kv_set_types_are_validated_and_shown_in_history() {
    let dir = bucket();
    let d = dir.path();
    let o = kvform(d, &["kv", "set", "--type", "number", "vars/job/api", "x", "abc"], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("vars/job/api x: \"abc\" is not a number"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert_eq!(ok(d, &["kv", "get", "vars/job/api", "x"]), "", "nothing was written");
    let o = kvform(d, &["kv", "set", "--type", "int", "vars/job/api", "x", "1"], None);
    assert!(String::from_utf8_lossy(&o.stderr).contains("number"), "the error lists the types");
    ok(d, &["kv", "set", "--type", "number", "--description", "replica count", "vars/job/api", "x", "3"]);
    let h = ok(d, &["kv", "history", "vars/job/api", "x"]);
    assert!(h.contains("TYPE") && h.contains("number") && h.contains("replica count"), "{h}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(d, &["kv", "history", "vars/job/api", "x", "--format", "json"])).unwrap();
    assert_eq!((j[0]["type"].as_str(), j[0]["description"].as_str()), (Some("number"), Some("replica count")));
}

#[test]
fn cat_kv_and_history_show_type_and_description() {
    let d = bucket();
    let p = d.path();
    ok(p, &["kv", "set", "vars/job/api", "replicas", "3", "--type", "number", "--description", "pods wanted"]);
    ok(p, &["kv", "set", "vars/job/api", "plain", "x"]);
    let table = ok(p, &["cat", "kv"]);
    let header = table.lines().next().unwrap();
    assert!(header.contains("VALUE") && header.contains("TYPE") && header.ends_with("DESCRIPTION"), "{table}");
    let row = |key: &str| table.lines().find(|l| l.contains(key)).unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(row("replicas")[..4], ["vars/job/api", "replicas", "3", "number"], "{table}");
    assert!(table.lines().find(|l| l.contains("replicas")).unwrap().ends_with("pods wanted"), "{table}");
    assert_eq!(row("plain")[..4], ["vars/job/api", "plain", "x", "string"], "{table}");
    let rows: serde_json::Value = serde_json::from_str(&ok(p, &["cat", "kv", "--format", "json"])).unwrap();
    let find = |key: &str| rows.as_array().unwrap().iter().find(|r| r["key"] == key).unwrap().clone();
    assert_eq!(
        (find("replicas")["type"].clone(), find("replicas")["description"].clone()),
        ("number".into(), "pods wanted".into())
    );
    assert_eq!((find("plain")["type"].clone(), find("plain")["description"].clone()), ("string".into(), "".into()));
    // kv history: every version's own type and description (a set that names them changes
    // them; one that does not keeps them, see cas_patch_version_read_restore_undelete).
    ok(p, &["kv", "set", "vars/job/api", "replicas", "three", "--type", "string", "--description", ""]);
    let h: serde_json::Value =
        serde_json::from_str(&ok(p, &["kv", "history", "vars/job/api", "replicas", "--format", "json"])).unwrap();
    let types: Vec<_> = h.as_array().unwrap().iter().map(|r| (r["type"].clone(), r["description"].clone())).collect();
    assert_eq!(types, [("number".into(), "pods wanted".into()), ("string".into(), "".into())]);
    let text = ok(p, &["kv", "history", "vars/job/api", "replicas"]);
    assert!(text.lines().next().unwrap().contains("TYPE") && text.contains("number"), "{text}");
}

/// The one operations layer from the CLI (issue 24): compare-and-set, an edit that keeps what
/// it does not name, a version read, restore and undelete.
#[test]
fn cas_patch_version_read_restore_undelete() {
    let d = bucket();
    let p = d.path();
    let ns = "vars/job/api";
    ok(p, &["kv", "set", ns, "replicas", "3", "--type", "number", "--description", "how many", "--cas", "0"]);
    // Create-only again: refused, naming the current version; nothing written.
    let err = fails(p, &["kv", "set", ns, "replicas", "4", "--cas", "0"], None);
    assert!(err.contains("vars/job/api replicas is at version 1, not 0"), "{err}");
    // A stale version is refused too; the right one wins.
    let err = fails(p, &["kv", "set", ns, "replicas", "4", "--cas", "7"], None);
    assert!(err.contains("is at version 1, not 7") && err.contains("--cas 1"), "{err}");
    ok(p, &["kv", "set", ns, "replicas", "5", "--cas", "1"]);
    // Type and description were kept by a set that did not name them.
    let json: serde_json::Value =
        serde_json::from_str(&ok(p, &["kv", "get", ns, "replicas", "--format", "json"])).unwrap();
    assert_eq!(
        (json["type"].as_str(), json["description"].as_str(), json["version"].as_u64()),
        (Some("number"), Some("how many"), Some(2))
    );
    // ... so a non-number is still refused.
    fails(p, &["kv", "set", ns, "replicas", "five"], None);
    // A version read.
    assert_eq!(ok(p, &["kv", "get", ns, "replicas", "--version", "1"]), "3\n");
    let err = fails(p, &["kv", "get", ns, "replicas", "--version", "9"], None);
    assert!(err.contains("has no version 9"), "{err}");
    // Delete with a stale version: refused; with the current one: done.
    assert!(fails(p, &["kv", "delete", ns, "replicas", "--cas", "1"], None).contains("is at version 2"));
    ok(p, &["kv", "delete", ns, "replicas", "--cas", "2"]);
    assert_eq!(ok(p, &["kv", "get", ns, "replicas"]), "");
    // Undelete: restore version 1 (value, type, description) as version 4.
    let o = kvform(p, &["kv", "restore", ns, "replicas", "1", "--cas", "0"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("version 1 restored as version 4"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(p, &["kv", "get", ns, "replicas", "--format", "json"])).unwrap();
    assert_eq!(
        (json["value"].as_str(), json["type"].as_str(), json["version"].as_u64()),
        (Some("3"), Some("number"), Some(4))
    );
    // A tombstone has nothing to restore.
    assert!(fails(p, &["kv", "restore", ns, "replicas", "3"], None).contains("is a deletion"));
    // Secrets restore their plaintext, sealed again for the new version.
    let o = kvform(p, &["kv", "set", "secrets/job/api", "token", "-"], Some("first"));
    assert!(o.status.success());
    assert!(kvform(p, &["kv", "set", "secrets/job/api", "token", "-"], Some("second")).status.success());
    ok(p, &["kv", "restore", "secrets/job/api", "token", "1"]);
    assert_eq!(ok(p, &["kv", "get", "secrets/job/api", "token", "--reveal"]), "first\n");
    assert_eq!(ok(p, &["kv", "get", "secrets/job/api", "token", "--reveal", "--version", "2"]), "second\n");
}

/// A write to a key the workspace declares (a `vars.hcl` attribute) says that the next apply
/// reverts it, naming the file and line (issue 24); other keys get no warning.
#[test]
fn a_write_to_a_workspace_declared_key_warns() {
    let dir = quickstart_copy();
    let d = dir.path();
    let o = kvform(d, &["apply", "--auto-approve"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = kvform(d, &["kv", "set", "vars/job/api", "base_path", "/v2"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("vars/job/api base_path is declared by the workspace (workspace/jobs/api/vars.hcl:2)"),
        "{err}"
    );
    assert!(err.contains("the next apply writes the workspace's value back"), "{err}");
    let o = kvform(d, &["kv", "set", "vars/job/api", "not_declared", "x"], None);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("declared by the workspace"));
    // ... and the next plan does revert it.
    let plan = String::from_utf8(kvform(d, &["plan"], None).stdout).unwrap();
    assert!(plan.contains("base_path") && plan.contains("\"/v2\" -> \"/api/v1\""), "{plan}");
}
