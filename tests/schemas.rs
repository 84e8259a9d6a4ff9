//! The checked-in JSON Schemas (`schemas/*.schema.json`) must match what the Rust types
//! generate. `UPDATE_GOLDEN=1 cargo test --test schemas` rewrites them.

use kvform::workspace::json_files::schema;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn schemas_do_not_drift() {
    let mut stale = Vec::new();
    for (name, generated) in schema::all() {
        let path = dir().join(name);
        if updating() {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == generated => {}
            _ => stale.push(name),
        }
    }
    assert!(stale.is_empty(), "schemas out of date: {stale:?}; run `UPDATE_GOLDEN=1 cargo test --test schemas`");
}

fn generated(name: &str) -> Value {
    let (_, text) = schema::all().into_iter().find(|(n, _)| *n == name).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The schemas describe the formats: closed objects, unit patterns, no `null`s.
#[test]
fn schemas_describe_the_formats() {
    let workers = generated("workers.schema.json");
    assert_eq!(workers["type"], "array");
    let entry = &workers["$defs"]["WorkerEntry"];
    assert_eq!(entry["additionalProperties"], false);
    assert_eq!(entry["required"], serde_json::json!(["host"]));
    assert_eq!(entry["properties"]["position"]["type"], "integer");
    let memory = &workers["$defs"]["Memory"]["oneOf"];
    let pattern = memory[0]["pattern"].as_str().unwrap();
    let re = regex::Regex::new(pattern).unwrap();
    assert!(re.is_match("4 GB") && re.is_match("512") && !re.is_match("4 kb"));
    assert_eq!(memory[1]["type"], "number");

    let manifest = generated("manifest.schema.json");
    assert_eq!(manifest["additionalProperties"], false);
    assert_eq!(manifest["properties"]["max_concurrent_upgrades"]["minimum"], 1);
    assert_eq!(manifest["properties"]["commands"]["propertyNames"]["pattern"], "^command_[a-z0-9_-]+$");
    let events = &manifest["$defs"]["EventName"]["enum"];
    assert_eq!(
        events,
        &serde_json::json!([
            "post_build",
            "pre_deploy",
            "post_deploy",
            "health_check",
            "cli",
            "job_control",
            "after_allocation_started",
            "after_allocation_stopped"
        ])
    );

    let disabled = generated("disabled.schema.json");
    assert_eq!(disabled["additionalProperties"], false);

    for name in ["workers.schema.json", "manifest.schema.json", "disabled.schema.json"] {
        let text = schema::all().into_iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(!text.contains("\"null\""), "{name} allows null somewhere");
    }
}
