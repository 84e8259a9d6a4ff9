//! `workspace/jobs/<job>/_prometheus/scrape.yaml`: a YAML list of Prometheus scrape configs
//! (SPEC §8), projected into `maand/prometheus` by the model.
//!
//! Parsed with `yaml_serde` (the YAML organisation's maintained continuation of the archived
//! `serde_yaml`) straight into JSON values; a syntax error is reported at its line and
//! column. Placeholders (`maand:job`, `maand:port/<name>`) are kept as written.
//!
//! Rules (maand's `promconfig` validation, the parts that concern the catalog):
//! - the document is a non-empty list of mappings, each with a non-empty string `job_name`;
//! - a `maand:port/<name>` target names a port of the job's manifest (`_implicit` too: maand
//!   resolves it to the job's metrics port when it expands targets).
//!
//! Items are encoded as compact JSON with object keys sorted, the bytes maand's Go encoder
//! writes, so templates that compare the catalog see the same text. Semantic errors point at
//! the item's `-` line (block lists) or the start of the document.

use super::source;
use super::types::{PortSpec, Scrape, ScrapeTemplate};
use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
use serde_json::Value;
use std::path::Path;

pub const JOB_PLACEHOLDER: &str = "maand:job";
pub const PORT_PLACEHOLDER_PREFIX: &str = "maand:port/";

/// Read and check the job's scrape file; `None` when there is none or it is invalid. A
/// `scrape.yaml.tpl` is read into `template` (rendered with the KV when the catalog is built,
/// `crate::model::catalog::render_scrape_templates`, then checked by [`parse_rendered`]); a job
/// with both files is an error (maand `ValidateScrapeFiles`).
pub fn load(
    root: &Path,
    job: &str,
    ports: &[PortSpec],
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
    template: &mut Option<ScrapeTemplate>,
) -> Option<Scrape> {
    let rel = format!("workspace/jobs/{job}/_prometheus/scrape.yaml");
    let tpl_rel = format!("{rel}.tpl");
    let tpl = source::read(root, &tpl_rel, sources, diags);
    let plain = source::read(root, &rel, sources, diags);
    match (plain, tpl) {
        (Some((file, _)), Some(_)) => {
            diags.push(
                Diagnostic::error(format!("job {job} has both {rel} and {tpl_rel}"))
                    .at(Span::new(file, 0..0))
                    .label("one of the two")
                    .help(
                        "keep scrape.yaml (plain YAML) or scrape.yaml.tpl (a template rendered with the KV), not both",
                    ),
            );
            None
        }
        (Some((file, text)), None) => parse(file, &rel, &text, ports, diags),
        (None, Some((_, text))) => {
            *template = Some(ScrapeTemplate { shown: tpl_rel, text });
            None
        }
        (None, None) => None,
    }
}

/// Check a rendered `scrape.yaml.tpl` as a scrape file: its diagnostics point into the
/// rendered text, named `<template> (rendered)`.
pub fn parse_rendered(
    template: &ScrapeTemplate,
    rendered: &str,
    ports: &[PortSpec],
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<Scrape> {
    let name = format!("{} (rendered)", template.shown);
    let file = sources.add(name.clone(), rendered.to_string());
    parse(file, &name, rendered, ports, diags)
}

/// A scrape template that did not parse or render (`crate::templates::TemplateError`, whose
/// message starts with the engine's `line:col:` or `line:col:len:`) as a diagnostic at that
/// place of the template (`template.text` added to `sources` under its path): the rest of the
/// line, or the `len` bytes the engine names. A message without a position concerns the file.
pub fn template_error(template: &ScrapeTemplate, message: &str, help: &str, sources: &mut SourceMap) -> Diagnostic {
    let mut parts = message.splitn(4, ':');
    let number = |p: Option<&str>| p.and_then(|p| p.trim().parse::<usize>().ok());
    let (line, col) = (number(parts.next()), number(parts.next()));
    let (Some(line), Some(col)) = (line.filter(|l| *l > 0), col.filter(|c| *c > 0)) else {
        return Diagnostic::error(message.to_string()).in_file(template.shown.clone()).help(help);
    };
    let (third, rest) = (parts.next().unwrap_or(""), parts.next());
    // `line:col: what` or `line:col:len:what`.
    let (len, what) = match (third.trim().parse::<usize>().ok(), rest) {
        (Some(len), Some(what)) => (Some(len), what.trim().to_string()),
        _ => (None, [Some(third), rest].into_iter().flatten().collect::<Vec<_>>().join(":").trim().to_string()),
    };
    let text = &template.text;
    // Byte offsets: the engine counts lines from 1 and columns in bytes from 1.
    let line_start = text.split_inclusive('\n').take(line - 1).map(str::len).sum::<usize>().min(text.len());
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let mut start = (line_start + col - 1).min(line_end);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = len.map_or(line_end, |l| (start + l).min(line_end)).max(start);
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let file = sources.add(template.shown.clone(), text.clone());
    Diagnostic::error(what).at(Span::new(file, start..end)).help(help)
}

/// The job's alert rule files, `_prometheus/alerts/**` ending in `.yaml` or `.yml` (any case,
/// as maand's SQL `LIKE` matches), as paths under `alerts/`, sorted. A directory that cannot
/// be listed is an error, not an empty list.
pub fn alert_files(root: &Path, job: &str, diags: &mut Diagnostics) -> Vec<String> {
    let rel = format!("workspace/jobs/{job}/_prometheus/alerts");
    let rule = |name: &str| {
        let lower = name.to_ascii_lowercase();
        lower.ends_with(".yaml") || lower.ends_with(".yml")
    };
    match super::templates::files_under(&root.join(&rel), rule) {
        Ok(found) => found.into_iter().map(|(path, _)| path).collect(),
        Err(e) => {
            diags.push(Diagnostic::error(format!("cannot list {rel}: {e}")).in_file(rel.clone()).help(
                "the alert rule files of a job are listed by the templates' `ruleFiles`; make the directory readable",
            ));
            Vec::new()
        }
    }
}

fn parse(file: FileId, rel: &str, text: &str, ports: &[PortSpec], diags: &mut Diagnostics) -> Option<Scrape> {
    let whole = Span::new(file, 0..text.len().min(1));
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::error(format!("{rel} is empty"))
                .at(whole)
                .label("no scrape configs")
                .help("list at least one scrape config (`- job_name: maand:job`), or delete the file"),
        );
        return None;
    }
    let doc: Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let at = e.location().map_or(0, |l| l.index()).min(text.len());
            let message = e.to_string();
            // The location is rendered by the diagnostic; keep only what went wrong.
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            diags.push(
                Diagnostic::error(format!("invalid YAML in {rel}: {message}"))
                    .at(Span::new(file, at..(at + 1).min(text.len().max(at))))
                    .label("here")
                    .help("the file is a YAML list of Prometheus scrape configs, e.g. `- job_name: maand:job`"),
            );
            return None;
        }
    };
    let Value::Array(items) = doc else {
        diags.push(
            Diagnostic::error(format!("{rel} must be a list of scrape configs, found {}", kind(&doc)))
                .at(whole)
                .label("expected a list")
                .help("start every scrape config with `- ` (a YAML list item)"),
        );
        return None;
    };
    if items.is_empty() {
        diags.push(
            Diagnostic::error(format!("{rel} lists no scrape configs"))
                .at(whole)
                .label("empty list")
                .help("list at least one scrape config, or delete the file"),
        );
        return None;
    }
    let starts = item_starts(text);
    let item_span = |i: usize| starts.get(i).map_or(whole, |&s| Span::new(file, s..s + 1));
    let before = diags.error_count();
    let mut uses_port_placeholder = false;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            diags.push(
                Diagnostic::error(format!("scrape config {i} in {rel} must be a mapping, found {}", kind(item)))
                    .at(item_span(i))
                    .label("expected `job_name: …` and the other settings")
                    .help("write each scrape config as a YAML mapping under `- `"),
            );
            continue;
        };
        match map.get("job_name") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => diags.push(
                Diagnostic::error(format!("scrape config {i} in {rel} has no `job_name`"))
                    .at(item_span(i))
                    .label("`job_name` missing or not a string")
                    .help("write `job_name: maand:job` (replaced by the job's name) or a name of your own"),
            ),
        }
        for target in port_targets(map) {
            uses_port_placeholder = true;
            let name = target.strip_prefix(PORT_PLACEHOLDER_PREFIX).unwrap_or_default();
            let name = name.split('/').next().unwrap_or_default();
            if name != "_implicit" && !ports.iter().any(|p| p.name == name) {
                let declared: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                let help = if declared.is_empty() {
                    "declare the port under `resources.ports` in the job's manifest.json".to_string()
                } else {
                    format!("the job declares the ports {}", declared.join(", "))
                };
                diags.push(
                    Diagnostic::error(format!(
                        "scrape config {i} in {rel} targets `{target}`, a port the job does not declare"
                    ))
                    .at(item_span(i))
                    .label("unknown port")
                    .help(help),
                );
            }
        }
    }
    if diags.error_count() != before {
        return None;
    }
    let first_job_name = items[0].get("job_name").and_then(Value::as_str).unwrap_or_default().to_string();
    let items = items.iter().map(compact_sorted).collect();
    Some(Scrape { items, first_job_name, uses_port_placeholder })
}

/// `static_configs[].targets[]` strings that are `maand:port/…` placeholders.
fn port_targets(item: &serde_json::Map<String, Value>) -> Vec<&str> {
    let blocks = item.get("static_configs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    blocks
        .iter()
        .filter_map(|b| b.get("targets").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| t.starts_with(PORT_PLACEHOLDER_PREFIX))
        .collect()
}

/// Byte offsets of the top-level `- ` items of a block list (lines starting with `-`).
fn item_starts(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('-') && !line.starts_with("---") {
            out.push(at);
        }
        at += line.len();
    }
    out
}

/// Compact JSON with object keys sorted at every level (Go's `encoding/json` order).
pub fn compact_sorted(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("JSON values serialise")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceMap;

    fn run(text: &str) -> (Option<Scrape>, Vec<String>) {
        let mut sources = SourceMap::new();
        let file = sources.add("scrape.yaml", text.to_string());
        let mut diags = Diagnostics::new();
        let ports = vec![PortSpec { name: "api_metrics".into(), fixed: None, span: Span::new(file, 0..0) }];
        let s = parse(file, "scrape.yaml", text, &ports, &mut diags);
        let msgs = diags.iter().map(|d| crate::diag::render_one(d, &sources, false)).collect();
        (s, msgs)
    }

    #[test]
    fn items_are_compact_sorted_json_with_placeholders_kept() {
        let (s, msgs) = run(
            "- job_name: maand:job\n  static_configs:\n    - targets: [\"maand:port/api_metrics\"]\n  honor_labels: true\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let s = s.unwrap();
        assert_eq!(
            s.items,
            [
                r#"{"honor_labels":true,"job_name":"maand:job","static_configs":[{"targets":["maand:port/api_metrics"]}]}"#
            ]
        );
        assert_eq!(s.first_job_name, "maand:job");
        assert!(s.uses_port_placeholder);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let (s, msgs) = run("- job_name: a\n  labels: [unclosed\n");
        assert!(s.is_none());
        assert!(msgs[0].contains("invalid YAML in scrape.yaml"), "{msgs:?}");
        assert!(msgs[0].contains("scrape.yaml:3:1") || msgs[0].contains("scrape.yaml:2:"), "{msgs:?}");
        let (_, msgs) =
            run("- static_configs: []\n- job_name: b\n  static_configs:\n    - targets: [\"maand:port/nope\"]\n");
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("scrape config 0 in scrape.yaml has no `job_name`") && msgs[0].contains(":1:1"));
        assert!(msgs[1].contains("`maand:port/nope`") && msgs[1].contains(":2:1"), "{msgs:?}");
        let (_, msgs) = run("job_name: x\n");
        assert!(msgs[0].contains("must be a list"), "{msgs:?}");
    }

    /// A template error's `line:col:` (rest of the line) or `line:col:len:` (those bytes)
    /// becomes the diagnostic's span in the template; without one, the file is named.
    #[test]
    fn a_template_error_points_into_the_template() {
        let t = ScrapeTemplate {
            shown: "workspace/jobs/a/_prometheus/scrape.yaml.tpl".into(),
            text: "- x\n  y: {{ .Foo.Bar }} # é\n".into(),
        };
        let at = |message: &str| {
            let mut sources = SourceMap::new();
            let d = template_error(&t, message, "fix it", &mut sources);
            let span = d.span.map(|s| (sources.name(s.file).to_string(), t.text[s.start..s.end].to_string()));
            (d.message, span, d.path, d.help)
        };
        let (message, span, _, help) = at("2:6:8:no field `Foo`");
        assert_eq!(message, "no field `Foo`");
        assert_eq!(span, Some((t.shown.clone(), "{{ .Foo.".to_string())));
        assert_eq!(help.as_deref(), Some("fix it"));
        let (message, span, _, _) = at("2:6: get: a: b");
        assert_eq!(message, "get: a: b");
        assert_eq!(span, Some((t.shown.clone(), "{{ .Foo.Bar }} # é".to_string())));
        // Past the end: an empty span at the end, never a panic.
        let (_, span, _, _) = at("9:40: unclosed action");
        assert_eq!(span, Some((t.shown.clone(), String::new())));
        let (message, span, path, _) = at("something else");
        assert_eq!((message.as_str(), span, path.as_deref()), ("something else", None, Some(t.shown.as_str())));
    }
}
