//! `kvform plan --json`: the [`Plan`] document (`format_version`, `changes`, `rollout`,
//! `summary`), pretty-printed with the key order of the Rust types. Its JSON Schema is
//! generated from the same types ([`plan_schema`]) and checked in at
//! `schemas/plan.schema.json`.

use crate::plan::types::Plan;

/// The plan as pretty JSON (ends with a newline).
pub fn render_json(plan: &Plan) -> String {
    let mut out = Vec::new();
    write_json(plan, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// [`render_json`] streamed into `w` as it is serialised (wrap files and stdout in a
/// `BufWriter`): the document of a large plan is never held in memory whole (SPEC §11).
pub fn write_json(plan: &Plan, mut w: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut w, plan).map_err(std::io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// The JSON Schema of the `--json` document, pretty JSON ending with a newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    s.push('\n');
    s
}
