//! The secret key's permissions are checked by `plan` as by `apply`, the `secrets/`
//! directory must be private, and `rotate-key` says what became of `kv.key.old`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kvform(root: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("KVFORM_NOW", "2026-01-02T03:04:05Z")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn applied_bucket() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), "{}").unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
    let out = kvform(dir, &["apply", "--auto-approve"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kvform(dir, &["kv", "set", "secrets/job/api", "token", "-", "--secret"], Some("s3cr3t"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmp
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn plan_refuses_a_key_readable_by_others_like_apply() {
    let b = applied_bucket();
    chmod(&b.path().join("secrets/kv.key"), 0o644);
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = kvform(b.path(), args, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("readable by group or others (mode 0644)") && stderr.contains("chmod 600"), "{stderr}");
    }
}

#[test]
fn a_secrets_directory_others_can_enter_is_refused() {
    let b = applied_bucket();
    chmod(&b.path().join("secrets"), 0o755);
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["kv", "get", "secrets/job/api", "token", "--reveal"]] {
        let out = kvform(b.path(), args, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("secrets is accessible by group or others (mode 0755)"), "{args:?}: {stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
        assert!(!text(&out.stdout).contains("s3cr3t"));
    }
}

#[test]
fn rotate_key_verifies_and_reports_or_removes_the_old_key() {
    let b = applied_bucket();
    let out = kvform(b.path(), &["secrets", "rotate-key"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("verified all 1 secret version(s) open with it alone"), "{stdout}");
    assert!(stdout.contains("it is kept only for backups taken before now"), "{stdout}");
    assert!(b.path().join("secrets/kv.key.old").exists());

    let out = kvform(b.path(), &["secrets", "rotate-key", "--remove-old-key"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("removed the previous key"), "{stdout}");
    assert!(!b.path().join("secrets/kv.key.old").exists());
    let out = kvform(b.path(), &["kv", "get", "secrets/job/api", "token", "--reveal"], None);
    assert_eq!(text(&out.stdout), "s3cr3t\n", "{}", text(&out.stderr));
    assert!(kvform(b.path(), &["state", "check"], None).status.success());
}
