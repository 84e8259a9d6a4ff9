//! `schemas/plan.schema.json` is generated from the Rust types; this test fails when they
//! drift apart. `UPDATE_GOLDEN=1 cargo test --test plan_schema` rewrites the file.

use std::path::PathBuf;

#[test]
fn plan_schema_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json");
    let actual = kvform::plan::plan_schema();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "schemas/plan.schema.json is out of date with the plan types; run `UPDATE_GOLDEN=1 cargo test --test plan_schema` and review the diff:\n{}",
        similar::TextDiff::from_lines(&expected, &actual).unified_diff().context_radius(3)
    );
}

#[test]
fn schema_describes_the_documented_fields() {
    let schema: serde_json::Value = serde_json::from_str(&kvform::plan::plan_schema()).unwrap();
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        props,
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
            "notes",
            "diagnostics"
        ]
    );
    let change = &schema["$defs"]["Change"]["properties"];
    for field in ["namespace", "key", "action", "before", "after", "before_sensitive", "after_sensitive", "reason"] {
        assert!(change.get(field).is_some(), "Change.{field} missing from the schema");
    }
}
