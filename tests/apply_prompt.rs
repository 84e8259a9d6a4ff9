//! `kvform apply` at a terminal: the confirmation prompt. A pseudo-terminal comes from
//! util-linux's `script` (Debian's essential bsdutils package), which forwards our stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Run `kvform -C dir apply` on a pseudo-terminal, answering `answer` at the prompt.
fn apply_answering(dir: &Path, answer: &str) -> String {
    let cmd = format!("{} --no-color -C {} apply", env!("CARGO_BIN_EXE_kvform"), dir.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bucket(dir: &Path) {
    std::fs::create_dir_all(dir.join("workspace/jobs/api")).unwrap();
    std::fs::write(dir.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["api"]}]"#).unwrap();
    std::fs::write(dir.join("workspace/jobs/api/manifest.json"), r#"{"version": "1.0.0"}"#).unwrap();
}

#[test]
fn declining_the_first_apply_leaves_no_state_and_yes_applies() {
    let tmp = tempfile::tempdir().unwrap();
    bucket(tmp.path());
    let out = apply_answering(tmp.path(), "no");
    assert!(out.contains("Only 'yes' will be accepted"), "{out}");
    assert!(out.contains("Apply cancelled."), "{out}");
    assert!(!tmp.path().join("data/kvform.db").exists(), "a declined first apply must not leave a state");
    assert!(!tmp.path().join("secrets/kv.key").exists(), "nor the key it created");

    let out = apply_answering(tmp.path(), "yes");
    assert!(out.contains("Apply complete! Resources:"), "{out}");
    assert!(tmp.path().join("data/kvform.db").exists());
}

/// Run `kvform -C dir state restore FILE` on a pseudo-terminal, answering `answer`.
fn restore_answering(dir: &Path, file: &Path, answer: &str) -> String {
    let cmd =
        format!("{} --no-color -C {} state restore {}", env!("CARGO_BIN_EXE_kvform"), dir.display(), file.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `state restore` asks like `apply`: it says what replaces what, anything but `yes` cancels
/// and changes nothing, `yes` restores.
#[test]
fn state_restore_asks_for_yes() {
    let tmp = tempfile::tempdir().unwrap();
    bucket(tmp.path());
    let kv = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(tmp.path()).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    kv(&["apply", "--auto-approve"]);
    kv(&["kv", "set", "vars/job/api", "color", "blue"]);
    let backup = tmp.path().join("backup.db");
    kv(&["state", "backup", backup.to_str().unwrap()]);
    kv(&["kv", "set", "vars/job/api", "color", "green"]);

    let out = restore_answering(tmp.path(), &backup, "no");
    assert!(out.contains("kvform will replace the state data/kvform.db (serial 3, lineage "), "{out}");
    assert!(out.contains("with the backup") && out.contains("(serial 2, lineage"), "{out}");
    assert!(out.contains("Only 'yes' will be accepted"), "{out}");
    assert!(out.contains("Restore cancelled."), "{out}");
    assert_eq!(kv(&["kv", "get", "vars/job/api", "color"]), "green\n", "a declined restore changed the state");

    let out = restore_answering(tmp.path(), &backup, "yes");
    assert!(out.contains("restored serial"), "{out}");
    assert_eq!(kv(&["kv", "get", "vars/job/api", "color"]), "blue\n");
}
