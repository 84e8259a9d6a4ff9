//! `kvform plan` reads only what may have changed since the last apply; `--refresh` reads
//! everything (SPEC §11). End to end through the binary.

mod tf_support;
use tf_support::{ok, write};

/// A bucket directory for `backend`: SQLite, or a PostgreSQL bucket of its own (`None`
/// when no database is configured outside CI; its schemas are dropped with the directory).
fn dir_on(test: &str, postgres: bool) -> Option<tf_support::BucketDir> {
    let tmp = tempfile::tempdir().unwrap();
    if !postgres {
        return Some(tf_support::BucketDir::sqlite(tmp));
    }
    tf_support::pg_url(test)?;
    let block = tf_support::pg_state_block();
    write(tmp.path(), "kvform.hcl", &block);
    Some(tf_support::BucketDir::on_postgres(tmp, &tf_support::registry_of(&block)))
}

/// `$body(postgres)` as a test on SQLite and one on PostgreSQL.
macro_rules! both {
    ($sqlite:ident, $pg:ident, $body:ident) => {
        #[test]
        fn $sqlite() {
            $body(stringify!($sqlite), false);
        }
        #[test]
        fn $pg() {
            $body(stringify!($pg), true);
        }
    };
}

/// Change a stored value behind kvform's back (no serial, no version), in either backend.
fn tamper(d: &std::path::Path, postgres: bool, sql: &str) {
    if !postgres {
        let c = rusqlite::Connection::open(d.join("data/kvform.db")).unwrap();
        c.execute(sql, []).unwrap();
        return;
    }
    let hcl = std::fs::read_to_string(d.join("kvform.hcl")).unwrap();
    let field = |name: &str| {
        hcl.lines()
            .find_map(|l| {
                l.trim().strip_prefix(name).map(|r| r.trim_start_matches([' ', '=']).trim().trim_matches('"'))
            })
            .unwrap()
            .to_string()
    };
    let schema = kvform::state::postgres::bucket_schema(&field("schema"), field("bucket_id").parse().unwrap());
    let url = std::env::var("KVFORM_TEST_PG_URL").unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("SET search_path TO {schema}; {sql}")).unwrap();
}

fn plans_follow_changes_and_refresh_reads_everything_on(test: &str, postgres: bool) {
    let Some(dir) = dir_on(test, postgres) else { return };
    let d = dir.path();
    write(
        d,
        "workspace/workers.json",
        r#"[{"host": "10.0.0.1", "labels": ["api"]}, {"host": "10.0.0.2", "labels": ["api"]}]"#,
    );
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    write(d, "workspace/jobs/api/vars.hcl", "log_level = \"info\"\n");
    ok(d, &["init"]);
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["plan"]).contains("No changes."));

    // An operator write is seen (it is after the last apply), and undone where vars.hcl rules.
    ok(d, &["kv", "set", "vars/job/api", "log_level", "debug"]);
    let plan = ok(d, &["plan"]);
    assert!(plan.contains(r#"~ vars/job/api  log_level = "debug" -> "info""#), "{plan}");
    ok(d, &["apply", "--auto-approve"]);

    // A workspace change is seen.
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.1.0"}"#);
    let plan = ok(d, &["plan"]);
    assert!(plan.contains(r#"~ maand/job/api                  version = "1.0.0" -> "1.1.0""#), "{plan}");
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["plan"]).contains("No changes."));

    // A change no kvform made (the file edited behind its back, no serial): the plan trusts
    // what the last apply recorded; --refresh compares every key and finds it.
    tamper(
        d,
        postgres,
        "UPDATE latest SET value = 'tampered' WHERE namespace = 'maand/worker/10.0.0.2' AND key = 'jobs'",
    );
    assert!(ok(d, &["plan"]).contains("No changes."));
    let plan = ok(d, &["plan", "--refresh"]);
    assert!(plan.contains(r#"~ maand/worker/10.0.0.2  jobs = "tampered" -> "api""#), "{plan}");
    ok(d, &["apply", "--auto-approve", "--refresh"]);
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));
}
both!(
    plans_follow_changes_and_refresh_reads_everything,
    plans_follow_changes_and_refresh_reads_everything_on_postgres,
    plans_follow_changes_and_refresh_reads_everything_on
);

/// A targeted apply writes without verifying what it wrote against any fingerprint: when
/// the workspace is then reverted, the next plan must still see the job's new keys in the
/// state (it once trusted the rows recorded before the targeted apply and planned nothing).
fn a_reverted_workspace_after_a_targeted_apply_is_planned_on(test: &str, postgres: bool) {
    let Some(dir) = dir_on(test, postgres) else { return };
    let d = dir.path();
    write(d, "workspace/workers.json", r#"[{"host": "10.0.0.1", "labels": ["api", "web"]}]"#);
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    write(d, "workspace/jobs/web/manifest.json", r#"{"version": "1.0.0"}"#);
    ok(d, &["init"]);
    ok(d, &["apply", "--auto-approve"]);
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "2.0.0"}"#);
    ok(d, &["apply", "--auto-approve", "--target", "api"]);
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    let plan = ok(d, &["plan"]);
    assert!(plan.contains(r#"version = "2.0.0" -> "1.0.0""#), "{plan}");
    assert_eq!(plan, ok(d, &["plan", "--refresh"]));
}
both!(
    a_reverted_workspace_after_a_targeted_apply_is_planned,
    a_reverted_workspace_after_a_targeted_apply_is_planned_on_postgres,
    a_reverted_workspace_after_a_targeted_apply_is_planned_on
);

/// A one-job change after the first apply: the other jobs' and the workers' namespaces are
/// skipped (their inputs are the recorded ones), and the plan equals the full one.
fn a_one_job_change_plans_like_a_full_plan_on(test: &str, postgres: bool) {
    let Some(dir) = dir_on(test, postgres) else { return };
    let d = dir.path();
    write(
        d,
        "workspace/workers.json",
        r#"[{"host": "10.0.0.1", "labels": ["api", "web"]}, {"host": "10.0.0.2", "labels": ["web"]}]"#,
    );
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    write(d, "workspace/jobs/web/manifest.json", r#"{"version": "1.0.0", "resources": {"ports": {"web_http": {}}}}"#);
    ok(d, &["init"]);
    ok(d, &["apply", "--auto-approve"]);
    write(d, "workspace/jobs/web/manifest.json", r#"{"version": "1.1.0", "resources": {"ports": {"web_http": {}}}}"#);
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("Plan: 0 to add, 3 to change, 0 to destroy."), "{plan}");
    assert_eq!(plan, ok(d, &["plan", "--refresh"]));
    ok(d, &["apply", "--auto-approve"]);
    // A worker change that moves placement: api leaves 10.0.0.1, lands on 10.0.0.2.
    write(
        d,
        "workspace/workers.json",
        r#"[{"host": "10.0.0.1", "labels": ["web"]}, {"host": "10.0.0.2", "labels": ["api", "web"]}]"#,
    );
    let plan = ok(d, &["plan"]);
    assert_eq!(plan, ok(d, &["plan", "--refresh"]));
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["plan"]).contains("No changes."));
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));
}
both!(
    a_one_job_change_plans_like_a_full_plan,
    a_one_job_change_plans_like_a_full_plan_on_postgres,
    a_one_job_change_plans_like_a_full_plan_on
);

/// Give `job` a `post_deploy` check that exits with `code`.
fn post_deploy_exits(d: &std::path::Path, job: &str, code: u8) {
    use std::os::unix::fs::PermissionsExt;
    write(
        d,
        &format!("workspace/jobs/{job}/manifest.json"),
        r#"{"version": "1.0.0", "commands": {"command_check": {"executed_on": ["post_deploy"]}}}"#,
    );
    let rel = format!("workspace/jobs/{job}/_modules/command_check.sh");
    write(d, &rel, &format!("#!/bin/bash\nexit {code}\n"));
    std::fs::set_permissions(d.join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A job that fails in the first apply of a bucket is rolled back to nothing: the next plan
/// (which trusts what that apply recorded) must plan it again, exactly as `--refresh` does.
fn a_job_rolled_back_in_the_first_apply_is_planned_again_on(test: &str, postgres: bool) {
    let Some(dir) = dir_on(test, postgres) else { return };
    let d = dir.path();
    write(d, "workspace/workers.json", r#"[{"host": "10.0.0.1", "labels": ["api", "web"]}]"#);
    write(d, "workspace/jobs/api/manifest.json", r#"{"version": "1.0.0"}"#);
    post_deploy_exits(d, "web", 3);
    ok(d, &["init"]);
    let o = tf_support::kvform(d, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "web's post_deploy fails: {}", tf_support::stderr(&o));
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("maand/job/web"), "the rolled-back job is planned again:\n{plan}");
    assert!(!plan.contains("maand/job/api\n"), "api was applied:\n{plan}");
    assert_eq!(plan, ok(d, &["plan", "--refresh"]));
    post_deploy_exits(d, "web", 0);
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["plan"]).contains("No changes."));
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));

    // The same for a job added to a bucket that has been applied: its namespaces were not
    // live before either.
    write(d, "workspace/workers.json", r#"[{"host": "10.0.0.1", "labels": ["api", "web", "cache"]}]"#);
    post_deploy_exits(d, "cache", 3);
    let o = tf_support::kvform(d, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "cache's post_deploy fails: {}", tf_support::stderr(&o));
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("maand/job/cache"), "the rolled-back new job is planned again:\n{plan}");
    assert_eq!(plan, ok(d, &["plan", "--refresh"]));
    // A full (`--refresh`) apply over rows that exist rewrites every fingerprint row.
    post_deploy_exits(d, "cache", 0);
    ok(d, &["apply", "--auto-approve", "--refresh"]);
    assert!(ok(d, &["plan"]).contains("No changes."));
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));
}
both!(
    a_job_rolled_back_in_the_first_apply_is_planned_again,
    a_job_rolled_back_in_the_first_apply_is_planned_again_on_postgres,
    a_job_rolled_back_in_the_first_apply_is_planned_again_on
);
