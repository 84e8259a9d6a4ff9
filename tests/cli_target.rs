//! `plan --target JOB` / `apply --target JOB`: Terraform's partial-plan warning, an unknown
//! job answered with "did you mean", saved plans that record their targets. What a targeted
//! plan holds is pinned by the golden case testdata/plan/target_one_job.

mod tf_support;

use tf_support::{applied_bucket, bucket, kvform, ok, stderr, stdout};

#[test]
fn a_targeted_plan_warns_and_holds_only_the_job() {
    let b = bucket();
    let o = kvform(b.path(), &["plan", "--target", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("warning: resource targeting is in effect: this plan covers only the job(s) `web`"), "{err}");
    assert!(err.contains("--target is not for routine use"), "{err}");
    assert!(out.contains("maand/job/web ") && !out.contains("maand/job/db"), "{out}");
    assert!(!out.contains("vars/bucket/job/db") && !out.contains("db_allocation_index"), "{out}");
    // Repeatable (and comma-separated), like -target.
    let both = stdout(&kvform(b.path(), &["plan", "--target", "web", "-target=db"]));
    assert_eq!(both, stdout(&kvform(b.path(), &["plan"])));
    assert_eq!(both, stdout(&kvform(b.path(), &["plan", "--target", "db,web"])));
    // Without --target: no warning.
    assert!(!stderr(&kvform(b.path(), &["plan"])).contains("targeting"));
}

#[test]
fn an_unknown_target_is_an_error_with_a_suggestion() {
    let b = bucket();
    let o = kvform(b.path(), &["plan", "--target", "wbe"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("error: --target `wbe`: no such job in the workspace or the state"), "{e}");
    assert!(e.contains("help: did you mean `web`?"), "{e}");
    let o = kvform(b.path(), &["apply", "--auto-approve", "--target", "nothing-like-it"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("help: jobs: db, web"), "{}", stderr(&o));
    assert!(!b.path().join("logs").exists() || ok(b.path(), &["state", "list"]).is_empty());
}

#[test]
fn a_saved_plan_records_its_targets_and_apply_keeps_them() {
    let b = bucket();
    ok(b.path(), &["plan", "--target", "web", "--out", "web.plan.json"]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.path().join("web.plan.json")).unwrap()).unwrap();
    assert_eq!(saved["targets"], serde_json::json!(["web"]));
    let o = kvform(b.path(), &["show", "web.plan.json"]);
    assert!(stderr(&o).contains("with --target web"), "{}", stderr(&o));
    let o = kvform(b.path(), &["apply", "web.plan.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: applied changes may be incomplete"), "{}", stderr(&o));
    assert!(stdout(&o).contains("Apply complete!"), "{}", stdout(&o));
    // web is applied, db is what remains.
    let listed = ok(b.path(), &["state", "list", "maand/job/*"]);
    assert_eq!(listed, "maand/job/web\n");
    let rest = ok(b.path(), &["plan"]);
    assert!(rest.contains("maand/job/db ") && !rest.contains("maand/job/web "), "{rest}");
    // --target and a plan file do not go together: the file's targets apply.
    let o = kvform(b.path(), &["apply", "web.plan.json", "--target", "db"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_targeted_apply_leaves_other_jobs_pending() {
    let b = applied_bucket();
    std::fs::write(b.path().join("workspace/jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    std::fs::write(b.path().join("workspace/jobs/db/manifest.json"), "{ \"version\": \"2.1.0\" }\n").unwrap();
    let o = kvform(b.path(), &["apply", "--auto-approve", "--target", "db"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("maand/job/db ") && !stdout(&o).contains("vars/job/web"), "{}", stdout(&o));
    let rest = ok(b.path(), &["plan"]);
    assert!(rest.contains("~ vars/job/web  greeting = \"hello\" -> \"bye\""), "{rest}");
    assert!(rest.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{rest}");
}

/// Issue 27: a targeted apply never writes another job's placement into shared worker
/// namespaces; the plan says what it held back.
#[test]
fn a_targeted_apply_holds_back_other_jobs_placement() {
    let b = applied_bucket();
    let w = b.path().join("workspace");
    std::fs::create_dir_all(w.join("jobs/cache")).unwrap();
    std::fs::write(w.join("jobs/cache/manifest.json"), "{ \"version\": \"1.0.0\" }\n").unwrap();
    let workers = tf_support::WORKERS.replace("\"labels\": [\"web\"]", "\"labels\": [\"web\", \"cache\"]");
    std::fs::write(w.join("workers.json"), workers).unwrap();
    std::fs::write(w.join("jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    let o = kvform(b.path(), &["apply", "--auto-approve", "--target", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("jobs = \"cache,web\"") && !out.contains(" maand/bucket "), "{out}");
    assert!(
        out.contains("Note: held back by --target: the placement of jobs not targeted in 3 keys that list jobs: `maand/bucket` `activejobs` (`cache`), `maand/bucket` `jobs` (`cache`), `maand/worker/10.0.0.2` `jobs` (`cache`); a plan without --target writes it"),
        "{out}"
    );
    assert_eq!(ok(b.path(), &["kv", "get", "maand/worker/10.0.0.2", "jobs"]), "web\n");
    assert_eq!(ok(b.path(), &["kv", "get", "maand/bucket", "jobs"]), "db,web\n");
    // Then the job itself: both sides of the catalog move together.
    ok(b.path(), &["apply", "--auto-approve", "--target", "cache"]);
    assert_eq!(ok(b.path(), &["kv", "get", "maand/worker/10.0.0.2", "jobs"]), "cache,web\n");
    assert_eq!(ok(b.path(), &["kv", "get", "maand/job/cache", "workers"]), "10.0.0.2\n");
    assert!(ok(b.path(), &["plan"]).contains("No changes."));
}
