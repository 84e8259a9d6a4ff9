//! Saved plans (`--out`, `apply PLANFILE`) and the workspace digest.

mod plan_fixture;

use kvform::cli::plan_files;
use kvform::model::types::AllocState::Active;
use kvform::plan::{PlanError, SavedPlan, check_applicable};
use plan_fixture::{Fx, lineage};
use std::path::Path;
use uuid::Uuid;

fn sample() -> SavedPlan {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, true)])
        .want("maand/job/api", "workers", "10.0.0.1")
        .want("vars/bucket", "motd", "hello\nworld")
        .live("vars/bucket", "motd", "hello")
        .removed_job("vault")
        .live("secrets/job/vault", "token", "CIPHERTEXT-MUST-NOT-APPEAR")
        .purge_secrets_kv()
        .plan();
    SavedPlan::new(plan, "d1g35t".into())
}

#[test]
fn round_trip_keeps_plan_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let saved = sample();
    plan_files::write(&saved, &path).unwrap();
    let back = plan_files::read(&path).unwrap();
    assert_eq!(back, saved);
    assert_eq!(back.plan.meta, saved.plan.meta);
    assert_eq!(back.lineage, lineage());
    assert_eq!(back.base_serial, 7);
    assert!(back.options.purge_secrets_kv);
    assert_eq!(back.kvform_version, env!("CARGO_PKG_VERSION"));
    // Writing again replaces the file.
    plan_files::write(&saved, &path).unwrap();
    assert_eq!(plan_files::read(&path).unwrap(), saved);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[cfg(unix)]
#[test]
fn plan_file_is_private_even_when_replacing_a_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    plan_files::write(&sample(), &path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn plan_file_holds_no_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let saved = sample();
    assert!(saved.plan.changes.iter().any(|c| c.namespace == "secrets/job/vault" && c.before_sensitive));
    plan_files::write(&saved, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("CIPHERTEXT"), "secret value in the plan file:\n{text}");
}

#[test]
fn applicable_only_to_the_same_state_version_and_workspace() {
    let saved = sample();
    let v = env!("CARGO_PKG_VERSION");
    assert!(check_applicable(&saved, lineage(), 7, "d1g35t").is_ok());

    let other = Uuid::from_u128(42);
    let err = check_applicable(&saved, other, 7, "d1g35t").unwrap_err();
    assert!(matches!(err, PlanError::Lineage { .. }));
    assert_eq!(
        err.to_string(),
        format!("Saved plan does not match this state (lineage {} in the plan, {other} in the state)", lineage())
    );

    let err = check_applicable(&saved, lineage(), 8, "d1g35t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Saved plan is stale: the state changed after this plan was made; run `kvform plan` again"
    );

    let mut old = saved.clone();
    old.kvform_version = "0.0.1".into();
    let err = check_applicable(&old, lineage(), 7, "d1g35t").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Saved plan was made by kvform 0.0.1, this is kvform {v}; run `kvform plan` again with this version")
    );

    let err = check_applicable(&saved, lineage(), 7, "changed").unwrap_err();
    assert!(err.to_string().contains("the workspace changed") && err.to_string().contains("run `kvform plan` again"));
}

#[test]
fn unreadable_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = plan_files::read(&missing).unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot read plan file {}", missing.display())), "{err}");

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"hello\": 1}").unwrap();
    let err = plan_files::read(&garbage).unwrap_err().to_string();
    assert!(err.contains("is not a kvform plan file") && err.contains("kvform plan --out"), "{err}");

    let future = dir.path().join("future.json");
    std::fs::write(&future, "{\"format_version\": \"9\"}").unwrap();
    let err = plan_files::read(&future).unwrap_err().to_string();
    assert!(err.contains("has plan format \"9\"") && err.contains("reads format \"1\""), "{err}");
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn workspace_digest_tracks_workspace_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "kvform.hcl", "max_versions = 10\n");
    write(root, "workspace/workers.json", "[]");
    write(root, "workspace/jobs/api/manifest.json", "{}");
    let d0 = plan_files::workspace_digest(root, 1 << 26).unwrap();
    assert_eq!(d0.len(), 64);
    assert!(d0.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(plan_files::workspace_digest(root, 1 << 26).unwrap(), d0, "stable");

    // Outside workspace/ (the state, the key file) and __pycache__ do not count.
    write(root, "data/kvform.db", "state");
    write(root, "workspace/jobs/api/_modules/__pycache__/x.pyc", "bytecode");
    assert_eq!(plan_files::workspace_digest(root, 1 << 26).unwrap(), d0);

    // Content, a new file, a rename and kvform.hcl all count.
    write(root, "workspace/jobs/api/manifest.json", "{ }");
    let d1 = plan_files::workspace_digest(root, 1 << 26).unwrap();
    assert_ne!(d1, d0);
    write(root, "workspace/jobs/api/vars.hcl", "");
    let d2 = plan_files::workspace_digest(root, 1 << 26).unwrap();
    assert_ne!(d2, d1);
    std::fs::rename(root.join("workspace/jobs/api/vars.hcl"), root.join("workspace/jobs/api/vars2.hcl")).unwrap();
    let d3 = plan_files::workspace_digest(root, 1 << 26).unwrap();
    assert_ne!(d3, d2);
    write(root, "kvform.hcl", "max_versions = 11\n");
    assert_ne!(plan_files::workspace_digest(root, 1 << 26).unwrap(), d3);
}

#[test]
fn digest_framing_is_unambiguous() {
    // Moving bytes between a file's name and its content must change the digest.
    let a = tempfile::tempdir().unwrap();
    write(a.path(), "workspace/ab", "c");
    let b = tempfile::tempdir().unwrap();
    write(b.path(), "workspace/a", "bc");
    assert_ne!(
        plan_files::workspace_digest(a.path(), 1 << 26).unwrap(),
        plan_files::workspace_digest(b.path(), 1 << 26).unwrap()
    );
}
