//! The CI recipe of examples/ci/ works (issue 27): its shell steps (`kvform-ci.sh`, which the
//! GitHub Actions and GitLab CI files run) against a throwaway PostgreSQL state shared by a
//! laptop (which made the bucket) and a runner (a clone without secrets/, the key from
//! `KVFORM_SECRET_KEY`): the pull request's plan becomes a markdown comment, the merge
//! applies a saved plan, and the laptop then agrees with the state (no CA flip-flop).

mod tf_support;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tf_support::*;

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci")
}

/// `sh kvform-ci.sh STEP` in `dir`, as a CI job runs it.
fn ci(dir: &Path, key: &str, step: &str) -> Output {
    Command::new("sh")
        .arg(recipe().join("kvform-ci.sh"))
        .arg(step)
        .current_dir(dir)
        .env("KVFORM", env!("CARGO_BIN_EXE_kvform"))
        .env("KVFORM_SECRET_KEY", key)
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_workflows_run_the_tested_steps() {
    for (file, steps) in [
        ("github-actions.yml", ["kvform-ci.sh plan", "kvform-ci.sh apply"]),
        ("gitlab-ci.yml", ["kvform-ci.sh plan", "kvform-ci.sh apply"]),
    ] {
        let text = std::fs::read_to_string(recipe().join(file)).unwrap();
        for s in steps {
            assert!(text.contains(&format!("sh examples/ci/{s}")), "{file} does not run `{s}`");
        }
        assert!(text.contains("KVFORM_SECRET_KEY") && text.contains("KVFORM_PG_URL"), "{file}");
        assert!(text.contains("plan.md"), "{file} does not post the markdown plan");
    }
}

#[test]
fn the_ci_recipe_plans_comments_and_applies_against_a_shared_postgres_state() {
    let Some(_) = pg_url("the_ci_recipe_plans_comments_and_applies_against_a_shared_postgres_state") else { return };
    let laptop = pg_bucket();
    ok(laptop.path(), &["apply", "--auto-approve"]);
    let ca = ok(laptop.path(), &["kv", "get", "maand/worker", "certs/ca.crt"]);
    let key =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(laptop.path().join("secrets/kv.key")).unwrap());

    // The runner's checkout: kvform.hcl (with the bucket id) and the workspace, no secrets/.
    let runner = tempfile::tempdir().unwrap();
    std::fs::copy(laptop.path().join("kvform.hcl"), runner.path().join("kvform.hcl")).unwrap();
    copy_dir(&laptop.path().join("workspace"), &runner.path().join("workspace"));

    // The pull request: a new label on a worker and a changed variable.
    let workers = WORKERS.replace("\"labels\": [\"web\"]", "\"labels\": [\"web\", \"db\"]");
    write(runner.path(), "workspace/workers.json", &workers);
    write(runner.path(), "workspace/jobs/web/vars.hcl", "greeting = \"bye\"\n");
    let o = ci(runner.path(), &key, "plan");
    assert!(o.status.success(), "plan step failed:\n{}{}", stdout(&o), stderr(&o));
    let md = std::fs::read_to_string(runner.path().join("plan.md")).unwrap();
    assert!(md.starts_with("### kvform plan\n\nbucket `"), "{md}");
    assert!(md.contains("at serial 1"), "{md}");
    assert!(md.contains("! vars/job/web") && md.contains("greeting = \"hello\" -> \"bye\""), "{md}");
    assert!(
        !md.lines().any(|l| l.starts_with(['+', '-', '!']) && l.contains("certs/ca.crt")),
        "the runner's plan touches the CA:\n{md}"
    );
    assert!(md.contains("> secrets/ca.crt and secrets/ca.key are missing on this machine"), "{md}");
    assert!(stdout(&o).contains("Plan: "), "the log shows the saved plan: {}", stdout(&o));
    let validate: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runner.path().join("validate.json")).unwrap()).unwrap();
    assert_eq!(validate["valid"], true);

    // The merge.
    let o = ci(runner.path(), &key, "apply");
    assert!(o.status.success(), "apply step failed:\n{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Apply complete!"), "{}", stdout(&o));
    assert_eq!(ok(laptop.path(), &["kv", "get", "vars/job/web", "greeting"]), "bye\n");
    assert_eq!(ok(laptop.path(), &["kv", "get", "maand/worker", "certs/ca.crt"]), ca);

    // The laptop pulls the merge: nothing to do, and the runner agrees.
    write(laptop.path(), "workspace/workers.json", &workers);
    write(laptop.path(), "workspace/jobs/web/vars.hcl", "greeting = \"bye\"\n");
    let o = kvform(laptop.path(), &["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = ci(runner.path(), &key, "plan");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(runner.path().join("plan.md")).unwrap().contains("No changes."));

    // A broken workspace fails the plan step with the diagnostics as JSON.
    write(runner.path(), "workspace/workers.json", "[{ \"hots\": 1 }]\n");
    let o = ci(runner.path(), &key, "plan");
    assert_eq!(o.status.code(), Some(1));
    let validate: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runner.path().join("validate.json")).unwrap()).unwrap();
    assert_eq!(validate["valid"], false);
    assert_eq!(validate["diagnostics"][0]["range"]["filename"], "workspace/workers.json");
}
