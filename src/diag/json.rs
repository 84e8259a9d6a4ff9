//! Diagnostics as JSON in Terraform's shape (`terraform validate -json`), for editors and CI
//! annotations: `severity`, `summary`, `detail`, and a `range` with `filename` and `start`/
//! `end` positions (`line` and `column` 1-based, columns in characters, `byte` 0-based).
//! A problem without a position has no `range` (as in Terraform); the file it concerns, if
//! any, goes into `detail` (`in: <file>`), as the text rendering says it.

use super::{Diagnostic, Diagnostics, Severity, SourceMap};
use serde_json::{Value, json};

/// One diagnostic.
pub fn diagnostic(d: &Diagnostic, sources: &SourceMap) -> Value {
    let mut detail: Vec<String> = Vec::new();
    if let Some(l) = d.label.as_deref().filter(|l| !l.is_empty()) {
        detail.push(l.to_string());
    }
    if d.span.is_none()
        && let Some(p) = &d.path
    {
        detail.push(format!("in: {p}"));
    }
    if let Some(h) = &d.help {
        detail.push(format!("help: {h}"));
    }
    let mut out = json!({
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "summary": d.message,
        "detail": detail.join("\n"),
    });
    if let Some(span) = d.span {
        let pos = |byte: usize| {
            let (line, column) = sources.line_col(span.file, byte);
            json!({ "line": line, "column": column, "byte": byte })
        };
        out["range"] = json!({
            "filename": sources.name(span.file),
            "start": pos(span.start),
            "end": pos(span.end),
        });
    }
    out
}

/// Every diagnostic, in the order given (callers sort them first).
pub fn diagnostics(diags: &Diagnostics, sources: &SourceMap) -> Vec<Value> {
    diags.iter().map(|d| diagnostic(d, sources)).collect()
}

/// A problem that is not about a workspace file (the state, a refused plan), as one
/// diagnostic: the first line is the summary, the rest (a `help:` line) the detail.
pub fn message(severity: Severity, text: &str) -> Value {
    let (summary, detail) = text.split_once('\n').unwrap_or((text, ""));
    json!({
        "severity": match severity { Severity::Error => "error", Severity::Warning => "warning" },
        "summary": summary.trim(),
        "detail": detail.lines().map(str::trim).collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    #[test]
    fn a_spanned_error_has_terraform_s_range() {
        let mut sources = SourceMap::new();
        let f = sources.add("workspace/workers.json", "[\n  { \"hots\": 1 }\n]\n");
        let d = Diagnostic::error("unknown field `hots` in worker")
            .at(Span::new(f, 6..12))
            .label("here")
            .help("did you mean `host`?");
        let v = diagnostic(&d, &sources);
        assert_eq!(
            v,
            json!({
                "severity": "error",
                "summary": "unknown field `hots` in worker",
                "detail": "here\nhelp: did you mean `host`?",
                "range": {
                    "filename": "workspace/workers.json",
                    "start": { "line": 2, "column": 5, "byte": 6 },
                    "end": { "line": 2, "column": 11, "byte": 12 }
                }
            })
        );
    }
}
