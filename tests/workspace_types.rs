//! Workspace keys typed from HCL (SPEC §9): the type of each vars.hcl / bucket.conf /
//! bucket.jobs.conf value is stored with it, a type-only change is a visible plan update,
//! and a state written before keys were typed converges with one plan of such updates.

mod tf_support;
use tf_support::{bucket, ok, write};

const VARS: &str = "enabled  = true\nhosts    = [\"a\", \"b\"]\nname     = \"x\"\nquoted   = \"42\"\nreplicas = 3\n";

fn kv_type(dir: &std::path::Path, ns: &str, key: &str) -> String {
    let out = ok(dir, &["kv", "get", ns, key, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["type"].as_str().unwrap().to_string()
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("data/kvform.db")).unwrap()
}

#[test]
fn hcl_values_carry_their_type_into_the_state_and_the_plan() {
    let b = bucket();
    let d = b.path();
    write(d, "workspace/jobs/web/vars.hcl", VARS);
    write(d, "workspace/bucket.jobs.conf", "job \"web\" {\n  memory = \"256 mb\"\n  weight = 1.5\n}\n");
    let plan = ok(d, &["plan", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let type_in_plan = |key: &str| {
        let c = plan["changes"].as_array().unwrap().iter().find(|c| c["key"] == key).unwrap();
        c.get("type").and_then(|t| t.as_str()).map(str::to_string)
    };
    assert_eq!(type_in_plan("replicas").as_deref(), Some("number"));
    assert_eq!(type_in_plan("quoted"), None, "a string is not marked");
    ok(d, &["apply", "--auto-approve"]);
    for (key, want) in
        [("enabled", "boolean"), ("hosts", "json"), ("name", "string"), ("quoted", "string"), ("replicas", "number")]
    {
        assert_eq!(kv_type(d, "vars/job/web", key), want, "{key}");
    }
    assert_eq!(kv_type(d, "vars/bucket/job/web", "weight"), "number");
    assert_eq!(kv_type(d, "vars/bucket/job/web", "memory"), "string");
    assert_eq!(kv_type(d, "maand/job/web", "workers_length"), "string", "maand's catalog stays text");
    assert!(ok(d, &["plan"]).contains("No changes."));

    // Only the type changes (3 -> "3"): an update that says so, found by an incremental plan.
    write(d, "workspace/jobs/web/vars.hcl", &VARS.replace("replicas = 3", "replicas = \"3\""));
    let text = ok(d, &["plan"]);
    assert!(text.contains("replicas = \"3\" -> \"3\""), "{text}");
    assert!(text.contains("# type: number → string"), "{text}");
    assert!(text.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{text}");
    ok(d, &["apply", "--auto-approve"]);
    assert_eq!(kv_type(d, "vars/job/web", "replicas"), "string");
    assert!(ok(d, &["plan"]).contains("No changes."));
}

#[test]
fn a_state_written_before_types_converges_with_one_plan_of_type_updates() {
    let b = bucket();
    let d = b.path();
    write(d, "workspace/jobs/web/vars.hcl", VARS);
    ok(d, &["apply", "--auto-approve"]);
    // What an older kvform left: every row a string, and its plan record (which another
    // kvform version does not trust, so the next plan reads everything).
    let c = db(d);
    c.execute_batch("UPDATE latest SET type = 'string'; DELETE FROM plan_base;").unwrap();
    ok(d, &["kv", "set", "vars/job/web", "note", "7", "--type", "number", "--description", "kept"]);
    drop(c);
    let text = ok(d, &["plan"]);
    for line in [
        "enabled = \"true\" -> \"true\"",
        "replicas = \"3\" -> \"3\"",
        "# type: string → boolean",
        "# type: string → json",
        "# type: string → number",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // bucket.conf's port pool is a number too; nothing else changes.
    assert!(text.contains("Plan: 0 to add, 5 to change, 0 to destroy."), "{text}");
    assert!(!text.contains("note"), "a key the workspace does not declare keeps its type: {text}");
    ok(d, &["apply", "--auto-approve"]);
    assert_eq!(kv_type(d, "vars/job/web", "replicas"), "number");
    assert_eq!(kv_type(d, "vars/bucket", "port_min"), "number");
    assert_eq!(kv_type(d, "vars/job/web", "note"), "number");
    assert!(ok(d, &["plan", "--refresh"]).contains("No changes."));
}
