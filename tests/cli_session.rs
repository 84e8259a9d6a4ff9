//! One clock read per command, by the CLI session: a `KVFORM_NOW` that does not parse is an
//! error before anything is created or written (before, `init` and the lock record fell
//! back to time 0), and the records of a command carry that one `now`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kvform(root: &Path, now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("KVFORM_NOW", now)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), "{}").unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
}

#[test]
fn a_bad_kvform_now_is_an_error_and_nothing_is_created() {
    for args in [&["init"][..], &["apply", "--auto-approve"]] {
        let tmp = tempfile::tempdir().unwrap();
        workspace(tmp.path());
        let out = kvform(tmp.path(), "yesterday", args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("KVFORM_NOW=\"yesterday\" is not a time"), "{args:?}: {stderr}");
        assert!(!tmp.path().join("data/kvform.db").exists(), "{args:?} created a state");
        assert!(!tmp.path().join("secrets/kv.key").exists(), "{args:?} created a key");
    }
}

#[test]
fn a_command_records_its_one_now() {
    let tmp = tempfile::tempdir().unwrap();
    workspace(tmp.path());
    let out = kvform(tmp.path(), "2026-01-02T03:04:05Z", &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kvform(tmp.path(), "2026-03-04T05:06:07Z", &["kv", "set", "vars/job/api", "k", "v"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = kvform::state::StateStore::open(&tmp.path().join("data/kvform.db")).unwrap();
    let audit = store.audit(10).unwrap();
    let times: Vec<(String, i64, i64)> =
        audit.iter().map(|a| (a.operation.clone(), a.started_at, a.finished_at)).collect();
    assert_eq!(times, [("kv set".to_string(), 1772600767, 1772600767), ("apply".to_string(), 1767323045, 1767323045)]);
    let row = store.get("vars/job/api", "k").unwrap().unwrap();
    assert_eq!(row.created_at, 1772600767);
}
