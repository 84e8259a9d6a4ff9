//! Safe operations on the state: damage named as damage, restores of another bucket
//! refused, a read-only filesystem and a full disk named, lock refusals naming the holder.
//!
//! The read-only and full-disk cases need a real filesystem in that condition: they mount
//! one (a read-only bind mount, a tiny tmpfs) inside `unshare --mount`, so the mount is
//! private to the test's shell and vanishes with it. Where that is not permitted (no
//! privileges), those two tests say so on stderr and pass without checking; the error
//! mapping itself is also covered by unit tests in `src/state/mod.rs`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-01-02T03:04:05Z";
const KVFORM: &str = env!("CARGO_BIN_EXE_kvform");

fn kvform(root: &Path, args: &[&str]) -> Output {
    Command::new(KVFORM)
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

fn applied_bucket() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), "{}").unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
    let out = kvform(dir, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kvform(dir, &["kv", "set", "vars/job/api", "color", "blue"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmp
}

/// Run `script` with `sh -c` in a private mount namespace; `None` when that is not allowed.
fn in_private_mounts(script: &str) -> Option<Output> {
    let probe = Command::new("unshare").args(["--mount", "--propagation", "private", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: `unshare --mount` is not permitted here");
        return None;
    }
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if text(&out.stdout).contains("MOUNT-FAILED") {
        eprintln!("skipped: mount is not permitted here: {}", text(&out.stderr));
        return None;
    }
    Some(out)
}

#[test]
fn a_flipped_byte_anywhere_gets_the_restore_a_backup_hint() {
    let b = applied_bucket();
    let db = b.path().join("data/kvform.db");
    // A clean close checkpoints the WAL: every row is in the main file.
    assert!(!b.path().join("data/kvform.db-wal").exists());
    let good = std::fs::read(&db).unwrap();
    let mut unhinted = Vec::new();
    for offset in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[offset] ^= 0xff;
        std::fs::write(&db, &bad).unwrap();
        for args in [&["cat", "kv"][..], &["state", "check"]] {
            let out = kvform(b.path(), args);
            let stderr = text(&out.stderr);
            if !out.status.success() && !stderr.contains("restore a backup") {
                unhinted.push(format!("offset {offset} {args:?}: {stderr}"));
            }
        }
    }
    std::fs::write(&db, &good).unwrap();
    assert!(
        unhinted.is_empty(),
        "{} errors without the hint, e.g. {:#?}",
        unhinted.len(),
        &unhinted[..unhinted.len().min(3)]
    );
}

#[test]
fn restoring_a_backup_of_another_bucket_needs_force() {
    let a = applied_bucket();
    let other = applied_bucket();
    let backup = other.path().join("other.db");
    assert!(kvform(other.path(), &["state", "backup", backup.to_str().unwrap()]).status.success());
    let before = std::fs::read(a.path().join("data/kvform.db")).unwrap();

    let out = kvform(a.path(), &["state", "restore", backup.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it comes from another bucket"), "{stderr}");
    assert!(stderr.contains("pass --force"), "{stderr}");
    assert_eq!(std::fs::read(a.path().join("data/kvform.db")).unwrap(), before, "the state was changed");
    assert!(kvform(a.path(), &["state", "check"]).status.success());

    let out = kvform(a.path(), &["state", "restore", "--force", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("restored with --force"), "{}", text(&out.stderr));
}

#[test]
fn on_a_read_only_filesystem_reads_work_and_writes_are_refused_by_name() {
    let b = applied_bucket();
    let root = b.path().display().to_string();
    let script = format!(
        "mount --bind -o ro '{root}' '{root}' || {{ echo MOUNT-FAILED; exit 0; }}
         for c in 'cat kv' 'kv get vars/job/api color' 'state info' 'plan'; do
           echo \"== $c\"; {KVFORM} -C '{root}' $c 2>&1; echo \"rc=$?\"
         done
         for c in 'kv set vars/job/api color red' 'apply --auto-approve' 'gc'; do
           echo \"== $c\"; {KVFORM} -C '{root}' $c 2>&1; echo \"rc=$?\"
         done"
    );
    let Some(out) = in_private_mounts(&script) else { return };
    let stdout = text(&out.stdout);
    let sections: Vec<&str> = stdout.split("== ").skip(1).collect();
    assert_eq!(sections.len(), 7, "{stdout}");
    for s in &sections[..4] {
        assert!(s.trim_end().ends_with("rc=0"), "a read failed on a read-only filesystem:\n{s}");
    }
    assert!(sections[1].contains("blue"), "{}", sections[1]);
    for s in &sections[4..] {
        assert!(s.trim_end().ends_with("rc=1"), "a write did not fail:\n{s}");
        assert!(s.contains("is on a read-only filesystem"), "{s}");
    }
    // Nothing changed.
    assert_eq!(text(&kvform(b.path(), &["kv", "get", "vars/job/api", "color"]).stdout), "blue\n");
}

#[test]
fn a_full_disk_says_no_space_left_on_device() {
    let b = applied_bucket();
    let root = b.path().display().to_string();
    let big = "x".repeat(60_000);
    let script = format!(
        "set -u
         cp -a '{root}/data' '{root}/data.orig'
         mount -t tmpfs -o size=256k tmpfs '{root}/data' || {{ echo MOUNT-FAILED; exit 0; }}
         cp -a '{root}/data.orig/.' '{root}/data/'
         dd if=/dev/zero of='{root}/data/filler' bs=4k 2>/dev/null
         {KVFORM} -C '{root}' kv set vars/job/api big '{big}' 2>&1; echo \"rc=$?\"
         rm '{root}/data/filler'
         {KVFORM} -C '{root}' state check 2>&1"
    );
    let Some(out) = in_private_mounts(&script) else { return };
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no space left on device"), "{stdout}");
    assert!(!stdout.contains("Error code"), "{stdout}");
    assert!(stdout.contains("rc=1"), "{stdout}");
    assert!(stdout.contains("ok: "), "the state must survive a full disk: {stdout}");
}

#[test]
fn every_lock_refusal_names_the_holder() {
    let b = applied_bucket();
    let root = b.path().to_path_buf();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut refusals = Vec::new();
                for j in 0..25 {
                    let out = kvform(
                        &root,
                        &["kv", "set", "vars/job/api", &format!("k{i}"), &format!("{j}"), "--lock-timeout", "0"],
                    );
                    if !out.status.success() {
                        refusals.push(text(&out.stderr));
                    }
                }
                refusals
            })
        })
        .collect();
    let refusals: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    eprintln!("{} refusals", refusals.len());
    for r in &refusals {
        assert!(r.contains("the state is locked by "), "{r}");
        assert!(!r.contains("another kvform process"), "a refusal without the holder: {r}");
        assert!(r.contains("`kv set`"), "{r}");
    }
}
