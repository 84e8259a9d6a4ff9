//! `kvform plan` reads only what may have changed since the last apply; `--refresh` reads
//! everything (SPEC §11). End to end through the binary.

mod tf_support;
use tf_support::{ok, write};

#[test]
fn plans_follow_changes_and_refresh_reads_everything() {
    let dir = tempfile::tempdir().unwrap();
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
    let c = rusqlite::Connection::open(d.join("data/kvform.db")).unwrap();
    c.execute("UPDATE latest SET value = 'tampered' WHERE namespace = 'maand/worker/10.0.0.2' AND key = 'jobs'", [])
        .unwrap();
    drop(c);
    assert!(ok(d, &["plan"]).contains("No changes."));
    let plan = ok(d, &["plan", "--refresh"]);
    assert!(plan.contains(r#"~ maand/worker/10.0.0.2  jobs = "tampered" -> "api""#), "{plan}");
    ok(d, &["apply", "--auto-approve", "--refresh"]);
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));
}
