//! `kvform plan --json`: the plan document — `format_version`, what it was made from
//! (`kvform_version`, `lineage`, `base_serial`, `planned_at` in RFC 3339), `applyable` /
//! `errored` (Terraform's), then `changes`, `rollout`, `summary`, `notes` and
//! `diagnostics` — pretty-printed with the key order of [`PlanDocument`]. A workspace that
//! does not load gives the same document with `errored: true` and its `diagnostics`
//! ([`render_errored_json`]). The JSON Schema is generated from [`PlanDocument`]
//! ([`plan_schema`]) and checked in at `schemas/plan.schema.json`.

use crate::plan::types::{Change, FORMAT_VERSION, KVFORM_VERSION, Plan, Summary, Wave};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

/// The `--json` document. The changes and rollout are the plan's own (`Plan`'s JSON, which
/// saved plans carry too).
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanDocument<'a> {
    /// Always `"1"` for this format.
    pub format_version: &'a str,
    /// The kvform that made the plan (a saved plan is applied only by the same version).
    pub kvform_version: &'a str,
    /// The state's lineage; `null` when the workspace did not load (the state was not read),
    /// the nil UUID for a bucket without a state yet.
    #[schemars(with = "Option<String>")]
    pub lineage: Option<Uuid>,
    /// The state serial the plan was computed against (`null` as for `lineage`).
    pub base_serial: Option<u64>,
    /// When the plan was computed (RFC 3339, UTC; `KVFORM_NOW` fixes it).
    pub planned_at: Option<String>,
    /// The plan has changes and no errors: applying it does something.
    pub applyable: bool,
    /// Planning failed: see `diagnostics`; `changes` is empty.
    pub errored: bool,
    /// Sorted by namespace, then key.
    pub changes: &'a [Change],
    /// Waves in ascending `seq`; only jobs with changes.
    pub rollout: &'a [Wave],
    pub summary: Summary,
    /// What the plan deliberately leaves as it is, and why.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub notes: &'a [String],
    /// Problems found, in Terraform's shape (`severity`, `summary`, `detail`, `range`);
    /// warnings of a plan that succeeded too.
    pub diagnostics: Vec<serde_json::Value>,
}

impl<'a> PlanDocument<'a> {
    pub fn of(plan: &'a Plan) -> Self {
        PlanDocument {
            format_version: &plan.format_version,
            kvform_version: &plan.meta.kvform_version,
            lineage: Some(plan.meta.lineage),
            base_serial: Some(plan.meta.base_serial),
            planned_at: Some(crate::clock::format_time(plan.meta.now)),
            applyable: !plan.is_empty(),
            errored: false,
            changes: &plan.changes,
            rollout: &plan.rollout,
            summary: plan.summary,
            notes: &plan.notes,
            diagnostics: Vec::new(),
        }
    }

    /// The document of a plan that failed with `diagnostics`.
    pub fn errored(diagnostics: Vec<serde_json::Value>) -> Self {
        PlanDocument {
            format_version: FORMAT_VERSION,
            kvform_version: KVFORM_VERSION,
            lineage: None,
            base_serial: None,
            planned_at: None,
            applyable: false,
            errored: true,
            changes: &[],
            rollout: &[],
            summary: Summary::default(),
            notes: &[],
            diagnostics,
        }
    }
}

/// The plan as pretty JSON (ends with a newline).
pub fn render_json(plan: &Plan) -> String {
    let mut out = Vec::new();
    write_json(plan, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The document of a failed plan (ends with a newline).
pub fn render_errored_json(diagnostics: Vec<serde_json::Value>) -> String {
    let mut s = serde_json::to_string_pretty(&PlanDocument::errored(diagnostics)).expect("a document serialises");
    s.push('\n');
    s
}

/// [`render_json`] streamed into `w` as it is serialised (wrap files and stdout in a
/// `BufWriter`): the document of a large plan is never held in memory whole (SPEC §11).
pub fn write_json(plan: &Plan, w: impl std::io::Write) -> std::io::Result<()> {
    write_document(&PlanDocument::of(plan), w)
}

/// [`write_json`] of a document the caller completed (diagnostics of a plan that loaded
/// with warnings).
pub fn write_document(doc: &PlanDocument<'_>, mut w: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut w, doc).map_err(std::io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// The JSON Schema of the `--json` document, pretty JSON ending with a newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(PlanDocument<'static>);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    s.push('\n');
    s
}
