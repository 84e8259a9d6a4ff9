//! `kvform plan --json`: the [`Plan`] document (`format_version`, `changes`, `rollout`,
//! `summary`), pretty-printed with the key order of the Rust types. Its JSON Schema is
//! generated from the same types ([`plan_schema`]) and checked in at
//! `schemas/plan.schema.json`.

use crate::plan::types::Plan;

/// The plan as pretty JSON (ends with a newline).
pub fn render_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a plan always serialises");
    s.push('\n');
    s
}

/// The JSON Schema of the `--json` document, pretty JSON ending with a newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    s.push('\n');
    s
}
