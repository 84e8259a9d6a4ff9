//! `kvform init` end to end: the layout and the state, private modes, idempotence, the
//! state path from kvform.hcl, and the refusal of a key file that group or others can read.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kvform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform")).args(args).env("NO_COLOR", "1").output().expect("run kvform")
}

fn init(dir: &Path) -> Output {
    kvform(&["init", dir.to_str().unwrap()])
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every path under `root` with its mode and (for files) contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), (mode(&p), None));
                stack.push(p);
            } else {
                out.insert(p.clone(), (mode(&p), Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    out
}

const LAYOUT: [&str; 10] = [
    "kvform.hcl",
    ".gitignore",
    "workspace/",
    "workspace/workers.json",
    "workspace/bucket.conf",
    "workspace/jobs/",
    "data/",
    "secrets/",
    "secrets/kv.key",
    "data/kvform.db",
];

#[test]
fn creates_the_layout_with_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("bucket");
    let out = init(&b);
    assert!(out.status.success(), "{}", stderr(&out));
    for rel in LAYOUT {
        assert!(b.join(rel.trim_end_matches('/')).exists(), "{rel} missing");
        assert!(stdout(&out).contains(&format!("created  {rel}\n")), "{rel} not reported:\n{}", stdout(&out));
    }
    assert!(stdout(&out).contains("11 created, 0 kept"));
    assert_eq!(mode(&b.join("data")), 0o700);
    assert_eq!(mode(&b.join("data/kvform.db")), 0o600);
    assert_eq!(mode(&b.join("secrets")), 0o700);
    assert_eq!(mode(&b.join("secrets/kv.key")), 0o600);
    let key = std::fs::read(b.join("secrets/kv.key")).unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.iter().any(|&x| x != 0), "the key is not random");
    assert_eq!(std::fs::read_to_string(b.join("workspace/workers.json")).unwrap(), "[]\n");
    let conf = std::fs::read_to_string(b.join("workspace/bucket.conf")).unwrap();
    assert!(conf.contains("port_min = 30000") && conf.contains("port_max = 39999"));
}

#[test]
fn the_new_bucket_is_a_valid_workspace_with_default_settings() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path()).status.success());
    let loaded = kvform::workspace::load(tmp.path());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.diagnostics.render(&loaded.sources, false));
    let ws = loaded.workspace.expect("valid");
    assert_eq!(ws.settings, kvform::workspace::types::Settings::default());
    assert_eq!(ws.port_pool, kvform::workspace::types::PortPool { min: 30000, max: 39999 });
    let v = kvform(&["-C", tmp.path().to_str().unwrap(), "validate"]);
    assert!(v.status.success(), "{}", stderr(&v));
}

#[test]
fn a_second_run_changes_nothing_and_reports_what_it_kept() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path()).status.success());
    let before = snapshot(tmp.path());
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(snapshot(tmp.path()), before);
    for rel in LAYOUT {
        assert!(stdout(&out).contains(&format!("kept     {rel} (already exists)")), "{}", stdout(&out));
    }
    assert!(!stdout(&out).contains("created  "));
    assert!(stdout(&out).contains("already initialised: nothing created, 11 kept"));
}

#[test]
fn existing_files_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("kvform.hcl"), "max_versions = 3\n").unwrap();
    std::fs::create_dir(tmp.path().join("workspace")).unwrap();
    std::fs::write(tmp.path().join("workspace/bucket.conf"), "region = \"eu\"\n").unwrap();
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(tmp.path().join("kvform.hcl")).unwrap(), "max_versions = 3\n");
    assert_eq!(std::fs::read_to_string(tmp.path().join("workspace/bucket.conf")).unwrap(), "region = \"eu\"\n");
    let s = stdout(&out);
    assert!(s.contains("kept     kvform.hcl") && s.contains("kept     workspace/bucket.conf"), "{s}");
    assert!(s.contains("created  secrets/kv.key") && s.contains("8 created, 3 kept"), "{s}");
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path()).status.success());
    let key = tmp.path().join("secrets/kv.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = init(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("kv.key is accessible by group or others (mode 0644)"), "{e}");
    assert!(e.contains("chmod 600"), "{e}");
    // The key is left as it was.
    assert_eq!(mode(&key), 0o644);
}

#[test]
fn a_refused_key_stops_init_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("secrets")).unwrap();
    let key = tmp.path().join("secrets/kv.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = init(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(!tmp.path().join("kvform.hcl").exists());
    assert!(!tmp.path().join("workspace").exists());
}

#[test]
fn a_key_of_the_wrong_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("secrets")).unwrap();
    let key = tmp.path().join("secrets/kv.key");
    std::fs::write(&key, b"short").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = init(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is 5 bytes, not a 32-byte key"), "{}", stderr(&out));
}

#[test]
fn every_bucket_gets_its_own_key() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(&tmp.path().join("a")).status.success());
    assert!(init(&tmp.path().join("b")).status.success());
    let a = std::fs::read(tmp.path().join("a/secrets/kv.key")).unwrap();
    let b = std::fs::read(tmp.path().join("b/secrets/kv.key")).unwrap();
    assert_ne!(a, b);
}

#[test]
fn dir_is_relative_to_chdir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kvform(&["-C", tmp.path().to_str().unwrap(), "init", "sub"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("sub/secrets/kv.key").is_file());
}

/// `kvform state info`'s `bucket_id:` line.
fn bucket_id(dir: &Path) -> String {
    let out = kvform(&["-C", dir.to_str().unwrap(), "state", "info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = stdout(&out);
    let line = info.lines().find(|l| l.starts_with("bucket_id:")).unwrap_or_else(|| panic!("{info}"));
    line["bucket_id:".len()..].trim().to_string()
}

#[test]
fn the_state_is_created_once_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path()).status.success());
    let first = bucket_id(tmp.path());
    assert_eq!(first.len(), 36, "{first}");
    assert_ne!(first, "00000000-0000-0000-0000-000000000000");
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("kept     data/kvform.db (already exists)"), "{}", stdout(&out));
    assert_eq!(bucket_id(tmp.path()), first);
    // Another bucket gets another identity.
    assert!(init(&tmp.path().join("other")).status.success());
    assert_ne!(bucket_id(&tmp.path().join("other")), first);
}

#[test]
fn the_state_goes_where_kvform_hcl_says() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("kvform.hcl"), "state {\n  path = \"var/state/main.db\"\n}\n").unwrap();
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created  var/state/main.db"), "{}", stdout(&out));
    let state = tmp.path().join("var/state/main.db");
    assert_eq!(mode(&state), 0o600);
    assert_eq!(mode(&tmp.path().join("var/state")), 0o700);
    assert!(!tmp.path().join("data/kvform.db").exists());
    // Every other command finds it there.
    let info = kvform(&["-C", tmp.path().to_str().unwrap(), "state", "info"]);
    assert!(stdout(&info).contains("var/state/main.db"), "{}", stdout(&info));
}

#[test]
fn an_invalid_kvform_hcl_stops_init_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("kvform.hcl"), "state {\n  paths = \"x.db\"\n}\n").unwrap();
    let out = init(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("kvform.hcl is invalid, so kvform cannot tell where the state is"), "{e}");
    assert!(e.contains("kvform.hcl:2:3") && e.contains("did you mean `path`?"), "{e}");
    assert!(!tmp.path().join("workspace").exists() && !tmp.path().join("data").exists());
}

#[test]
fn quiet_init_prints_only_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvform")).args(["-q", "init"]).arg(&dir).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("Initialised the kvform bucket in "), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_new_bucket_ignores_its_state_key_logs_and_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let ignore = std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap();
    for line in ["/data/", "/secrets/", "/logs/", "/plan.json", "*.plan.json"] {
        assert!(ignore.lines().any(|l| l == line), "{line} missing from:\n{ignore}");
    }
    // git agrees, where git is installed: `git add .` must not pick up the key or the state.
    let git = |args: &[&str]| Command::new("git").current_dir(tmp.path()).args(args).output();
    if git(&["init", "-q"]).is_ok_and(|o| o.status.success()) {
        let o = git(&["add", "--dry-run", "."]).unwrap();
        let added = stdout(&o);
        assert!(added.contains("kvform.hcl"), "{added}");
        assert!(!added.contains("kv.key") && !added.contains("kvform.db"), "git would add:\n{added}");
    }
}

#[test]
fn an_existing_gitignore_gets_only_the_missing_lines_appended() {
    let tmp = tempfile::tempdir().unwrap();
    let own = "# mine\ntarget\ndata\n/logs/";
    std::fs::write(tmp.path().join(".gitignore"), own).unwrap();
    let out = init(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(s.contains("  updated  .gitignore (appended /secrets/ /plan.json *.plan.json)\n"), "{s}");
    assert!(s.contains("1 updated"), "{s}");
    let ignore = std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap();
    assert!(ignore.starts_with(&format!("{own}\n#")), "the operator's lines were not kept as they were:\n{ignore}");
    assert!(ignore.ends_with("/secrets/\n/plan.json\n*.plan.json\n"), "{ignore}");
    // Nothing is missing any more: a second run keeps it byte for byte.
    let again = init(tmp.path());
    assert!(stdout(&again).contains("kept     .gitignore (already exists)"), "{}", stdout(&again));
    assert_eq!(std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap(), ignore);
}

#[test]
fn a_state_moved_out_of_data_is_ignored_as_well() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("kvform.hcl"), "state {\n  path = \"var/state/main.db\"\n}\n").unwrap();
    assert!(init(tmp.path()).status.success());
    let ignore = std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "/var/state/main.db*"), "{ignore}");
}

#[test]
fn the_bucket_path_is_printed_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kvform")).current_dir(tmp.path()).args(args).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let s = run(&["init", "./mybucket"]);
    assert!(s.contains("Initialised the kvform bucket in ./mybucket: "), "{s}");
    let s = run(&["init", "."]);
    assert!(s.contains("Initialised the kvform bucket in .: "), "{s}");
    let s = run(&["-C", "mybucket", "init"]);
    assert!(s.contains("The bucket in mybucket is already initialised"), "{s}");
}

#[path = "tf_support/mod.rs"]
mod tf_support;

/// A new, empty bucket: `init` says to add workers and jobs.
#[test]
fn a_new_bucket_is_told_to_add_workers_and_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let o = init(tmp.path());
    assert!(
        stderr(&o).contains("Next: add workers to workspace/workers.json and jobs under workspace/jobs/<job>/"),
        "{}",
        stderr(&o)
    );
}

/// A clone of a complete workspace (the state not committed): `init` says what it found and
/// sends the operator to `plan`, not to "add workers".
#[test]
fn init_on_a_complete_workspace_says_what_it_found() {
    let b = tf_support::bucket();
    let clone = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(clone.path().join("workspace/jobs/web")).unwrap();
    std::fs::create_dir_all(clone.path().join("workspace/jobs/db")).unwrap();
    for f in [
        "workspace/workers.json",
        "workspace/bucket.jobs.conf",
        "workspace/jobs/web/manifest.json",
        "workspace/jobs/db/manifest.json",
    ] {
        std::fs::copy(b.path().join(f), clone.path().join(f)).unwrap();
    }
    let o = init(clone.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(!e.contains("add workers"), "{e}");
    assert!(
        e.contains("Found a workspace with 2 workers and 2 jobs. Next: run `kvform validate`, then `kvform plan`."),
        "{e}"
    );

    // Jobs but no workers: only the workers are asked for.
    let half = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(half.path().join("workspace/jobs/db")).unwrap();
    std::fs::copy(
        b.path().join("workspace/jobs/db/manifest.json"),
        half.path().join("workspace/jobs/db/manifest.json"),
    )
    .unwrap();
    let e = stderr(&init(half.path()));
    assert!(e.contains("The workspace has 1 job but no workers. Next: add workers to workspace/workers.json"), "{e}");
}

/// A runner's clone of a PostgreSQL bucket: the workspace is complete and the state exists;
/// `init` names what it found and what is missing (the key, the CA) instead of "add workers".
#[test]
fn init_on_a_runners_clone_names_what_is_missing_on_postgres() {
    if tf_support::pg_url("init_on_a_runners_clone_names_what_is_missing_on_postgres").is_none() {
        return;
    }
    let b = tf_support::pg_bucket();
    // The `bucket_id` init wrote is aligned with the block's other attributes.
    let hcl = std::fs::read_to_string(b.path().join("kvform.hcl")).unwrap();
    assert!(hcl.contains("  backend   = \"postgres\"\n  url_env   = \"KVFORM_TEST_PG_URL\"\n"), "{hcl}");
    assert!(hcl.contains("\n  bucket_id = \""), "{hcl}");
    let clone = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(clone.path().join("workspace/jobs/web")).unwrap();
    std::fs::create_dir_all(clone.path().join("workspace/jobs/db")).unwrap();
    for f in [
        "kvform.hcl",
        "workspace/workers.json",
        "workspace/bucket.jobs.conf",
        "workspace/jobs/web/manifest.json",
        "workspace/jobs/db/manifest.json",
    ] {
        std::fs::copy(b.path().join(f), clone.path().join(f)).unwrap();
    }
    let o = init(clone.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(!e.contains("add workers"), "{e}");
    assert!(
        e.contains(
            "Found a workspace with 2 workers and 2 jobs. Missing: secrets/kv.key, secrets/ca.crt, secrets/ca.key"
        ),
        "{e}"
    );
    assert!(e.contains("made on another machine"), "{e}");
}
