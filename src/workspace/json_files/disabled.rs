//! `workspace/disabled.json`: drain jobs, single allocations or whole workers without
//! deleting them. Optional; names are trimmed. Whether the names match a job or worker
//! is checked later (`workspace::checks`), as a warning.

use super::doc::{self, Ctx};
use crate::diag::{Diagnostic, Diagnostics, SourceMap, Spanned};
use crate::workspace::source;
use crate::workspace::types::{Disabled, DisabledJob};
use jsonc_parser::ast::Value;
use std::path::Path;

pub const PATH: &str = "workspace/disabled.json";
pub const FIELDS: &[&str] = &["jobs", "workers"];
pub const JOB_FIELDS: &[&str] = &["allocations"];

pub fn load(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Disabled {
    let mut out = Disabled::default();
    let Some((file, text)) = source::read(root, PATH, sources, diags) else { return out };
    let Some(value) = doc::parse(file, &text, diags) else { return out };
    let mut cx = Ctx::new(file, diags);
    let Value::Object(obj) = &value else {
        let d = Diagnostic::error(format!("disabled.json must be an object, found {}", doc::kind(&value)))
            .at(cx.open_span(&value))
            .label("expected `{`")
            .help(r#"write e.g. {"jobs": {"api": {"allocations": ["10.0.0.1"]}}, "workers": ["10.0.0.2"]}"#);
        cx.push(d);
        return out;
    };
    for p in cx.fields(obj, "disabled.json", FIELDS) {
        match p.name.as_str() {
            "jobs" => {
                let Some(jobs) = cx.object(&p.value, "jobs") else { continue };
                for jp in cx.unique_props(jobs, "`jobs`") {
                    let name = jp.name.as_str().trim().to_string();
                    let span = cx.key_span(jp);
                    if name.is_empty() {
                        let d = Diagnostic::error("empty job name in disabled.json")
                            .at(span)
                            .label("empty after trimming")
                            .help("write the name of the job to disable");
                        cx.push(d);
                        continue;
                    }
                    let mut allocations: Vec<Spanned<String>> = Vec::new();
                    let path = format!("jobs.{name}");
                    if let Some(job) = cx.object(&jp.value, &path) {
                        for f in cx.fields(job, &format!("`{path}`"), JOB_FIELDS) {
                            allocations = cx.string_list(&f.value, &format!("{path}.allocations")).unwrap_or_default();
                        }
                    }
                    out.jobs.insert(name, DisabledJob { span, allocations });
                }
            }
            "workers" => out.workers = cx.string_list(&p.value, "workers").unwrap_or_default(),
            _ => unreachable!("fields() only returns known names"),
        }
    }
    out
}
