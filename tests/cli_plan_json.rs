//! `plan --json` / `validate --json` for machines (issue 27): what the plan was made from
//! (`kvform_version`, `lineage`, `base_serial`, `planned_at` in RFC 3339), `applyable` /
//! `errored`, and diagnostics in Terraform's shape when the workspace is broken.

mod tf_support;

use serde_json::Value;
use tf_support::*;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn plan_json_says_what_it_was_made_from() {
    let b = applied_bucket();
    let doc = json(&ok(b.path(), &["plan", "-json"]));
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "format_version",
            "kvform_version",
            "lineage",
            "base_serial",
            "planned_at",
            "applyable",
            "errored",
            "changes",
            "rollout",
            "summary",
            "diagnostics"
        ]
    );
    assert_eq!(doc["kvform_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["base_serial"], 1);
    assert_eq!(doc["planned_at"], NOW);
    assert_eq!((doc["applyable"].clone(), doc["errored"].clone()), (Value::Bool(false), Value::Bool(false)));
    // The lineage is the state's, as the saved plan records it.
    ok(b.path(), &["plan", "--out", "p.plan.json"]);
    let saved = json(&std::fs::read_to_string(b.path().join("p.plan.json")).unwrap());
    assert_eq!(doc["lineage"], saved["lineage"]);
    assert_eq!(saved["planned_at"], NOW, "a saved plan's time is RFC 3339 like every JSON time");

    std::fs::write(b.path().join("workspace/jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    let doc = json(&ok(b.path(), &["plan", "--json"]));
    assert_eq!(doc["applyable"], true);
    assert_eq!(doc["changes"][0]["key"], "greeting");
}

#[test]
fn a_saved_plan_of_an_earlier_version_with_unix_seconds_still_applies() {
    let b = applied_bucket();
    std::fs::write(b.path().join("workspace/jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    ok(b.path(), &["plan", "--out", "p.plan.json"]);
    let path = b.path().join("p.plan.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let old = text.replace(&format!("\"planned_at\": \"{NOW}\""), "\"planned_at\": 1767323045");
    assert_ne!(old, text);
    std::fs::write(&path, old).unwrap();
    assert!(ok(b.path(), &["apply", "p.plan.json"]).contains("Apply complete!"));
    // A time that is neither is refused with the field named.
    ok(b.path(), &["plan", "--out", "q.plan.json"]);
    let q = b.path().join("q.plan.json");
    let bad = std::fs::read_to_string(&q)
        .unwrap()
        .replace(&format!("\"planned_at\": \"{NOW}\""), "\"planned_at\": \"yesterday\"");
    std::fs::write(&q, bad).unwrap();
    let o = kvform(b.path(), &["apply", "q.plan.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("`planned_at` \"yesterday\" is not an RFC 3339 time"), "{}", stderr(&o));
}

const BROKEN_WORKERS: &str = "[\n  { \"host\": \"10.0.0.1\", \"labls\": [\"web\"] }\n]\n";

#[test]
fn plan_json_on_a_broken_workspace_prints_terraform_shaped_diagnostics() {
    let b = applied_bucket();
    write(b.path(), "workspace/workers.json", BROKEN_WORKERS);
    let o = kvform(b.path(), &["plan", "-json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc = json(&stdout(&o));
    assert_eq!(doc["errored"], true);
    assert_eq!(doc["applyable"], false);
    assert_eq!(doc["changes"], serde_json::json!([]));
    let d = &doc["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert!(d["summary"].as_str().unwrap().contains("`labls`"), "{d}");
    assert!(d["detail"].as_str().unwrap().contains("help: did you mean `labels`?"), "{d}");
    assert_eq!(d["range"]["filename"], "workspace/workers.json");
    assert_eq!(d["range"]["start"], serde_json::json!({"line": 2, "column": 25, "byte": 26}));
    assert_eq!(d["range"]["end"]["line"], 2);
    // The human form still goes to stderr.
    assert!(stderr(&o).contains("error: the workspace has 1 error"), "{}", stderr(&o));
}

#[test]
fn validate_json_is_terraform_s_document() {
    let b = bucket();
    let o = kvform(b.path(), &["validate", "-json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&stdout(&o));
    assert_eq!(
        doc,
        serde_json::json!({"format_version": "1.0", "valid": true, "error_count": 0, "warning_count": 0, "diagnostics": []})
    );
    write(b.path(), "workspace/workers.json", BROKEN_WORKERS);
    let o = kvform(b.path(), &["validate", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
    let doc = json(&stdout(&o));
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["error_count"], 1);
    assert_eq!(doc["diagnostics"][0]["range"]["start"]["line"], 2);
}
