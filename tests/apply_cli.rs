//! `kvform plan/apply/show` end to end: saved plans refused when stale (serial, lineage,
//! workspace, applied twice) with the state untouched, the write lock held by another
//! process, a bucket without state, confirmation without a terminal, exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-01-02T03:04:05Z";

fn kvform(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A bucket with one worker and one job, and no state yet.
fn bucket(dir: &Path) {
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), r#"{"version": "1.0.0"}"#).unwrap();
    std::fs::write(dir.join("workspace/bucket.conf"), "region = \"eu\"\n").unwrap();
}

fn serial(root: &Path) -> u64 {
    let store = kvform::state::StateStore::open(&root.join("data/kvform.db")).unwrap();
    store.meta().unwrap().serial
}

/// A bucket whose state holds the applied workspace.
fn applied_bucket() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    bucket(tmp.path());
    let out = kvform(tmp.path(), &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with("Apply complete! Resources: 44 added, 0 changed, 0 destroyed.\n"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Created the state"), "{stderr}");
    assert!(stderr.contains("Created the secret key"), "{stderr}");
    tmp
}

fn change_workspace(root: &Path) {
    std::fs::write(root.join("workspace/bucket.conf"), "region = \"us\"\n").unwrap();
}

#[test]
fn plan_without_state_plans_against_an_empty_state_and_cannot_be_saved() {
    let tmp = tempfile::tempdir().unwrap();
    bucket(tmp.path());
    let out = kvform(tmp.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("planning against an empty state"));
    // The CA `apply` makes with the state is one of them, `(known after apply)`, and so is
    // every job's `job_name` (maand writes it for every job).
    assert!(text(&out.stdout).contains("Plan: 44 to add, 0 to change, 0 to destroy."), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("certs/ca.crt = (known after apply)"), "{}", text(&out.stdout));
    let out = kvform(tmp.path(), &["plan", "--out", "p.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("a saved plan must name the state"), "{}", text(&out.stderr));
    assert!(!tmp.path().join("data/kvform.db").exists(), "plan never creates the state");
    // apply adds what plan announced.
    let out = kvform(tmp.path(), &["apply", "--auto-approve"]);
    assert!(text(&out.stdout).contains("Apply complete! Resources: 44 added"), "{}", text(&out.stdout));
}

#[test]
fn detailed_exitcode_is_0_without_changes() {
    let tmp = applied_bucket();
    let out = kvform(tmp.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "No changes. Your state matches the workspace.\n");
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    let before = serial(tmp.path());
    let out = kvform(tmp.path(), &["apply"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("stdin is not a terminal"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--auto-approve"));
    assert_eq!(serial(tmp.path()), before);
}

#[test]
fn saved_plan_applies_once_then_is_stale() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    let out = kvform(tmp.path(), &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = kvform(tmp.path(), &["show", "plan.json"]);
    assert_eq!(text(&shown.stdout), text(&out.stdout), "show prints what plan printed");
    let before = serial(tmp.path());

    let plan_file = tmp.path().join("plan.json");
    let p = plan_file.to_str().unwrap();
    let out = kvform(tmp.path(), &["apply", p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("Apply complete! Resources: 0 added, 1 changed, 0 destroyed.\n"));
    assert_eq!(serial(tmp.path()), before + 1);

    let out = kvform(tmp.path(), &["apply", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("Saved plan is stale: the state changed after this plan was made; run `kvform plan` again"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serial(tmp.path()), before + 1);
}

#[test]
fn saved_plan_is_refused_after_a_kv_write() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    assert!(kvform(tmp.path(), &["plan", "--out", "plan.json"]).status.success());
    let out = kvform(tmp.path(), &["kv", "set", "vars/job/api", "note", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = serial(tmp.path());
    let out = kvform(tmp.path(), &["apply", tmp.path().join("plan.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Saved plan is stale: the state changed"), "{}", text(&out.stderr));
    assert_eq!(serial(tmp.path()), before);
}

#[test]
fn saved_plan_is_refused_when_the_workspace_changed() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    assert!(kvform(tmp.path(), &["plan", "--out", "plan.json"]).status.success());
    std::fs::write(tmp.path().join("workspace/bucket.conf"), "region = \"ap\"\n").unwrap();
    let before = serial(tmp.path());
    let out = kvform(tmp.path(), &["apply", tmp.path().join("plan.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("Saved plan is stale: the workspace changed after this plan was made; run `kvform plan` again"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serial(tmp.path()), before);
}

#[test]
fn saved_plan_of_another_bucket_is_refused() {
    let a = applied_bucket();
    let b = applied_bucket();
    change_workspace(a.path());
    change_workspace(b.path());
    assert!(kvform(a.path(), &["plan", "--out", "plan.json"]).status.success());
    let before = serial(b.path());
    let out = kvform(b.path(), &["apply", a.path().join("plan.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Saved plan does not match this state (lineage"), "{}", text(&out.stderr));
    assert_eq!(serial(b.path()), before);
}

#[test]
fn apply_fails_at_once_naming_the_lock_holder() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    let store = kvform::state::StateStore::open(&tmp.path().join("data/kvform.db")).unwrap();
    let held = store.begin_write("test holder", std::time::Duration::ZERO, 1767323045).unwrap();
    let started = std::time::Instant::now();
    let out = kvform(tmp.path(), &["apply", "--auto-approve"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("the state is locked by"), "{err}");
    assert!(err.contains("`test holder`"), "{err}");
    assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
    held.rollback().unwrap();
    let out = kvform(tmp.path(), &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn invalid_workspace_fails_before_touching_the_state() {
    let tmp = applied_bucket();
    std::fs::write(tmp.path().join("workspace/workers.json"), "[{\"host\": 1}]").unwrap();
    let before = serial(tmp.path());
    let out = kvform(tmp.path(), &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("workers.json:1:"), "{err}");
    assert!(err.contains("the state was not touched"), "{err}");
    assert_eq!(serial(tmp.path()), before);
}

#[test]
fn an_edited_saved_plan_is_refused() {
    let tmp = applied_bucket();
    change_workspace(tmp.path());
    assert!(kvform(tmp.path(), &["plan", "--out", "plan.json"]).status.success());
    // Point the change somewhere else: lineage, serial and workspace still match.
    let path = tmp.path().join("plan.json");
    let edited = std::fs::read_to_string(&path).unwrap().replace("\"us\"", "\"evil\"").replace("us", "evil");
    std::fs::write(&path, edited).unwrap();
    let before = serial(tmp.path());
    let out = kvform(tmp.path(), &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("Saved plan does not match"), "{}", text(&out.stderr));
    assert_eq!(serial(tmp.path()), before, "nothing applied");
    let out = kvform(tmp.path(), &["kv", "get", "vars/bucket", "region"]);
    assert_eq!(text(&out.stdout), "eu\n");
}
