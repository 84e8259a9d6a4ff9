//! A workspace file that exists but cannot be read is an error, never an absent file.
//!
//! Before, a job whose manifest.json was a dangling symlink, a directory, a FIFO or
//! `/dev/zero` was silently left out of the workspace: `validate` said valid and `plan`/
//! `apply` purged the job's `vars/job/<job>`. Each case here checks that `validate` fails
//! naming the path and the cause, and that `plan` and `apply` fail before touching the state.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Root reads files whatever their mode, so permission cases cannot be staged as root.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Two jobs, `web` with vars.hcl; applied, so the state holds `vars/job/web`.
fn applied_bucket() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for job in ["api", "web"] {
        std::fs::create_dir_all(dir.join(format!("workspace/jobs/{job}"))).unwrap();
        std::fs::write(dir.join(format!("workspace/jobs/{job}/manifest.json")), r#"{"version": "1.0.0"}"#).unwrap();
    }
    std::fs::write(dir.join("workspace/jobs/web/vars.hcl"), "color = \"blue\"\n").unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api", "web"]}]"#).unwrap();
    let out = kvform(dir, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&kvform(dir, &["kv", "get", "vars/job/web", "color"]).stdout), "blue\n");
    tmp
}

fn serial(root: &Path) -> u64 {
    let store = kvform::state::StateStore::open(&root.join("data/kvform.db")).unwrap();
    store.meta().unwrap().serial
}

/// `validate`, `plan` and `apply` all fail naming `rel` and `cause`; the state is unchanged
/// and `vars/job/web` still readable.
fn assert_refused(root: &Path, rel: &str, cause: &str) {
    let before = serial(root);
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let started = Instant::now();
        let out = kvform(root, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {stderr}{}", text(&out.stdout));
        assert!(stderr.contains(&format!("cannot read {rel}")), "{args:?}: {stderr}");
        assert!(stderr.contains(cause), "{args:?}: expected {cause:?} in {stderr}");
        assert!(!text(&out.stdout).contains("vars/job/web"), "{args:?} planned a purge");
        assert!(started.elapsed() < Duration::from_secs(60), "{args:?} took {:?}", started.elapsed());
    }
    assert_eq!(serial(root), before, "the state was written");
    assert_eq!(text(&kvform(root, &["kv", "get", "vars/job/web", "color"]).stdout), "blue\n");
}

fn manifest(root: &Path) -> std::path::PathBuf {
    root.join("workspace/jobs/web/manifest.json")
}

#[test]
fn a_dangling_manifest_symlink_is_an_error_not_an_absent_job() {
    let b = applied_bucket();
    std::fs::remove_file(manifest(b.path())).unwrap();
    symlink("manifest.json.orig", manifest(b.path())).unwrap();
    assert_refused(
        b.path(),
        "workspace/jobs/web/manifest.json",
        "it is a symlink to manifest.json.orig, which does not exist",
    );
}

#[test]
fn a_manifest_that_is_a_directory_is_an_error() {
    let b = applied_bucket();
    std::fs::remove_file(manifest(b.path())).unwrap();
    std::fs::create_dir(manifest(b.path())).unwrap();
    assert_refused(b.path(), "workspace/jobs/web/manifest.json", "it is a directory, not a regular file");
}

#[test]
fn a_manifest_that_is_a_fifo_is_an_error_and_does_not_hang() {
    let b = applied_bucket();
    std::fs::remove_file(manifest(b.path())).unwrap();
    let status = Command::new("mkfifo").arg(manifest(b.path())).status().unwrap();
    assert!(status.success());
    assert_refused(b.path(), "workspace/jobs/web/manifest.json", "it is a FIFO (named pipe), not a regular file");
}

#[test]
fn a_manifest_symlinked_to_dev_zero_is_an_error() {
    let b = applied_bucket();
    std::fs::remove_file(manifest(b.path())).unwrap();
    symlink("/dev/zero", manifest(b.path())).unwrap();
    assert_refused(b.path(), "workspace/jobs/web/manifest.json", "it is a character device, not a regular file");
}

#[test]
fn a_job_entry_that_is_a_dangling_symlink_is_an_error() {
    let b = applied_bucket();
    let web = b.path().join("workspace/jobs/web");
    std::fs::rename(&web, b.path().join("web-moved")).unwrap();
    symlink("../../web-elsewhere", &web).unwrap();
    assert_refused(b.path(), "workspace/jobs/web", "which does not exist");
}

#[test]
fn a_job_entry_that_is_a_fifo_is_an_error() {
    let b = applied_bucket();
    let web = b.path().join("workspace/jobs/web");
    std::fs::rename(&web, b.path().join("web-moved")).unwrap();
    assert!(Command::new("mkfifo").arg(&web).status().unwrap().success());
    assert_refused(b.path(), "workspace/jobs/web", "it is a FIFO (named pipe), not a directory");
}

#[test]
fn a_vars_hcl_that_is_a_fifo_is_an_error() {
    let b = applied_bucket();
    let vars = b.path().join("workspace/jobs/web/vars.hcl");
    std::fs::remove_file(&vars).unwrap();
    assert!(Command::new("mkfifo").arg(&vars).status().unwrap().success());
    assert_refused(b.path(), "workspace/jobs/web/vars.hcl", "it is a FIFO (named pipe), not a regular file");
}

#[test]
fn an_unreadable_job_directory_or_manifest_is_an_error() {
    // As root, mode 000 does not stop reading, so there is nothing to stage: the code path is
    // the same io::Error one the dangling and FIFO cases above exercise.
    if running_as_root() {
        eprintln!("skipped: running as root, a mode-000 directory is still readable");
        return;
    }
    let b = applied_bucket();
    let m = manifest(b.path());
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert_refused(b.path(), "workspace/jobs/web/manifest.json", "ermission denied");
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).unwrap();
    let web = b.path().join("workspace/jobs/web");
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert_refused(b.path(), "workspace/jobs/web", "ermission denied");
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn workers_json_symlinked_to_dev_zero_is_refused_at_once() {
    let b = applied_bucket();
    let workers = b.path().join("workspace/workers.json");
    std::fs::remove_file(&workers).unwrap();
    symlink("/dev/zero", &workers).unwrap();
    assert_refused(b.path(), "workspace/workers.json", "it is a character device, not a regular file");
}

#[test]
fn a_dangling_bucket_jobs_conf_is_an_error_not_an_absent_file() {
    let b = applied_bucket();
    symlink("nowhere.conf", b.path().join("workspace/bucket.jobs.conf")).unwrap();
    assert_refused(b.path(), "workspace/bucket.jobs.conf", "which does not exist");
}

#[test]
fn a_workspace_directory_that_is_a_dangling_symlink_is_an_error() {
    let b = applied_bucket();
    std::fs::rename(b.path().join("workspace"), b.path().join("ws-moved")).unwrap();
    symlink("ws-gone", b.path().join("workspace")).unwrap();
    // kvform.hcl keeps the directory a bucket without a workspace/.
    std::fs::write(b.path().join("kvform.hcl"), "").unwrap();
    assert_refused(b.path(), "workspace", "which does not exist");
}

#[test]
fn a_dangling_hook_script_is_an_error_not_a_missing_script() {
    let b = applied_bucket();
    let web = b.path().join("workspace/jobs/web");
    std::fs::write(
        web.join("manifest.json"),
        r#"{"version": "1.0.0", "commands": {"command_hello": {"executed_on": ["cli"]}}}"#,
    )
    .unwrap();
    std::fs::create_dir(web.join("_modules")).unwrap();
    std::fs::write(web.join("_modules/command_hello.sh"), "echo hi\n").unwrap();
    symlink("gone.py", web.join("_modules/command_hello.py")).unwrap();
    let out = kvform(b.path(), &["validate"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot use the script workspace/jobs/web/_modules/command_hello.py for `command_hello`: it is a symlink to gone.py, which does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_readme_next_to_the_job_directories_is_not_a_job() {
    let b = applied_bucket();
    std::fs::write(b.path().join("workspace/jobs/README.md"), "jobs live here\n").unwrap();
    let out = kvform(b.path(), &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
