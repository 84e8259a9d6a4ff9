//! Safe operations on the state: damage named as damage, restores of another bucket
//! refused, a read-only filesystem and a full disk named, lock refusals naming the holder.
//!
//! The read-only and full-disk cases need a real filesystem in that condition: they mount
//! one (a read-only bind mount, a tiny tmpfs) inside `unshare --mount`, so the mount is
//! private to the test's shell and vanishes with it. Where that is not permitted (no
//! privileges), those two tests say so on stderr and pass without checking; the error
//! mapping itself is also covered by unit tests in `src/state/mod.rs`.
//!
//! Restores and lock refusals run on both backends; the damaged-file, read-only-filesystem
//! and full-disk cases are about the SQLite file and run on it only.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod tf_support;
use tf_support::BucketDir;

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

fn applied_bucket() -> BucketDir {
    applied_bucket_with("")
}

/// [`applied_bucket`] with its state on PostgreSQL, in a registry schema of its own; `None`
/// when no database is configured (outside CI).
fn applied_pg_bucket(test: &str) -> Option<BucketDir> {
    tf_support::pg_url(test)?;
    Some(applied_bucket_with(&tf_support::pg_state_block()))
}

/// A bucket with job `api` on one worker, applied, and `vars/job/api color` = blue; the state
/// where `kvform_hcl` puts it (empty: the SQLite file, no kvform.hcl; else a PostgreSQL
/// state block, its registry dropped with the bucket).
fn applied_bucket_with(kvform_hcl: &str) -> BucketDir {
    let tmp = match kvform_hcl {
        "" => BucketDir::sqlite(tempfile::tempdir().unwrap()),
        block => BucketDir::on_postgres(tempfile::tempdir().unwrap(), &tf_support::registry_of(block)),
    };
    let dir = tmp.path();
    if !kvform_hcl.is_empty() {
        std::fs::write(dir.join("kvform.hcl"), kvform_hcl).unwrap();
        let out = kvform(dir, &["init"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), "{}").unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
    let out = kvform(dir, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kvform(dir, &["kv", "set", "vars/job/api", "color", "blue"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(dir.join("data/kvform.db").exists(), kvform_hcl.is_empty(), "the state is where kvform.hcl says");
    tmp
}

/// What a refused restore must leave as it was: the state's identity, serial and every row,
/// read from its database.
fn state_as_stored(dir: &Path) -> (kvform::state::Meta, kvform::kv::Snapshot, i64) {
    let s = tf_support::state(dir);
    (s.meta().unwrap(), s.snapshot().unwrap(), tf_support::count_rows(dir, "SELECT count(*) FROM history"))
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

// SQLite only: flips bytes of the state file (a PostgreSQL state has none).
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

/// Issue 22 item 8: a write into a state SQLite reports damaged is refused with the
/// `state restore` hint and writes nothing. Before, in most of these cases `state check`
/// failed while `apply` and `kv set` exited 0 and committed (the damage was on pages the
/// write did not read: an index, another table, bytes inside a value that are no longer
/// UTF-8).
#[test]
fn a_write_into_a_damaged_state_is_refused_with_the_restore_hint() {
    let b = applied_bucket();
    // A change for `apply` to write.
    std::fs::write(b.path().join("workspace/jobs/api/manifest.json"), r#"{"version": "1.0.1"}"#).unwrap();
    let db = b.path().join("data/kvform.db");
    let good = std::fs::read(&db).unwrap();
    let (mut refused, mut value_only) = (0, 0);
    for offset in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[offset] ^= 0xff;
        std::fs::write(&db, &bad).unwrap();
        let check = kvform(b.path(), &["state", "check"]);
        if check.status.success() {
            continue;
        }
        let found = format!("{}{}", text(&check.stdout), text(&check.stderr));
        if found.contains("utf-8") {
            value_only += 1;
        }
        for args in [&["apply", "--auto-approve"][..], &["kv", "set", "vars/job/api", "flipped", "yes"]] {
            std::fs::write(&db, &bad).unwrap();
            let out = kvform(b.path(), args);
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "offset {offset} {args:?} wrote into a damaged state ({found})");
            assert!(stderr.contains("restore a backup"), "offset {offset} {args:?}: {stderr}");
            assert_eq!(std::fs::read(&db).unwrap(), bad, "offset {offset} {args:?} changed the file");
        }
        refused += 1;
    }
    std::fs::write(&db, &good).unwrap();
    assert!(refused >= 20, "{refused} damaged states refused");
    assert!(value_only >= 3, "{value_only} of them damaged inside a value only");
    assert!(kvform(b.path(), &["apply", "--auto-approve"]).status.success());
}

#[test]
fn restoring_a_backup_of_another_bucket_needs_force() {
    restore_of_another_bucket_needs_force(applied_bucket().path(), &applied_bucket());
}

/// On PostgreSQL, "another bucket" a restore can replace is one with the same bucket id (it
/// names the schema the rows go to) in another registry: another lineage, as a bucket
/// re-created since. A backup with another bucket id is refused even with `--force` (the
/// help says how: restore into SQLite, then `state migrate`).
#[test]
fn restoring_a_backup_of_another_bucket_needs_force_on_postgres() {
    let Some(a) = applied_pg_bucket("restoring_a_backup_of_another_bucket_needs_force_on_postgres") else { return };
    let hcl = std::fs::read_to_string(a.path().join("kvform.hcl")).unwrap();
    let schema = tf_support::registry_of(&hcl);
    assert!(hcl.contains("bucket_id"), "{hcl}");
    // The same bucket id in a registry of its own: `kvform init` creates it with a new lineage.
    let same_id = hcl.replace(&schema, &format!("{}x", &schema[..schema.len() - 1]));
    let other = applied_bucket_with(&same_id);
    restore_of_another_bucket_needs_force(a.path(), &other);

    // A backup of a bucket with another id: refused, --force or not, and nothing changed.
    let third = applied_pg_bucket("restoring_a_backup_of_another_bucket_needs_force_on_postgres").unwrap();
    let backup = third.path().join("third.db");
    assert!(kvform(third.path(), &["state", "backup", backup.to_str().unwrap()]).status.success());
    let before = state_as_stored(a.path());
    for force in [false, true] {
        let args: &[&str] = if force {
            &["state", "restore", "--auto-approve", "--force"]
        } else {
            &["state", "restore", "--auto-approve"]
        };
        let out = kvform(a.path(), &[args, &[backup.to_str().unwrap()]].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("this PostgreSQL bucket is"), "{stderr}");
        assert!(stderr.contains("the state was not changed"), "{stderr}");
        assert_eq!(state_as_stored(a.path()), before, "the state was changed");
    }
}

/// `a` refuses a backup of `other` (another lineage) without `--force`, changing nothing,
/// and takes it with `--force`: `other`'s lineage and rows, the serial past both.
fn restore_of_another_bucket_needs_force(a: &Path, other: &BucketDir) {
    let out = kvform(other.path(), &["kv", "set", "vars/job/api", "color", "green"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let backup = other.path().join("other.db");
    assert!(kvform(other.path(), &["state", "backup", backup.to_str().unwrap()]).status.success());
    let theirs = tf_support::state(other.path()).meta().unwrap();
    let before = state_as_stored(a);
    let file_before = std::fs::read(a.join("data/kvform.db")).ok();
    assert_ne!(before.0.lineage, theirs.lineage);

    let out = kvform(a, &["state", "restore", "--auto-approve", backup.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it comes from another bucket"), "{stderr}");
    assert!(stderr.contains("pass --force"), "{stderr}");
    assert_eq!(state_as_stored(a), before, "the state was changed");
    assert_eq!(std::fs::read(a.join("data/kvform.db")).ok(), file_before, "the state file was changed");
    assert!(kvform(a, &["state", "check"]).status.success());

    let out = kvform(a, &["state", "restore", "--auto-approve", "--force", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("restored with --force"), "{}", text(&out.stderr));
    let after = tf_support::state(a).meta().unwrap();
    assert_eq!(after.lineage, theirs.lineage, "the backup's lineage");
    assert_eq!(after.serial, before.0.serial.max(theirs.serial) + 1, "the serial moves past both");
    assert_eq!(text(&kvform(a, &["kv", "get", "vars/job/api", "color"]).stdout), "green\n");
}

// SQLite only: the SQLite file on a read-only mount (`immutable=1`).
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

// SQLite only: the SQLite file on a full filesystem (a PostgreSQL server's disk is not kvform's).
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
    lock_refusals_name_the_holder(&applied_bucket());
}

/// On PostgreSQL the lock is an advisory lock, its holder a lock record beside it.
#[test]
fn every_lock_refusal_names_the_holder_on_postgres() {
    if let Some(b) = applied_pg_bucket("every_lock_refusal_names_the_holder_on_postgres") {
        lock_refusals_name_the_holder(&b);
    }
}

fn lock_refusals_name_the_holder(b: &BucketDir) {
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
    assert!(!refusals.is_empty(), "150 writes with --lock-timeout 0 in 6 threads and no refusal: nothing was checked");
    for r in &refusals {
        assert!(r.contains("the state is locked by "), "{r}");
        assert!(!r.contains("another kvform process"), "a refusal without the holder: {r}");
        assert!(r.contains("`kv set`"), "{r}");
    }
}
