//! `workspace/workers.json`: a JSON array of worker objects, in fleet order.
//!
//! Normalisation (SPEC §2): `host` trimmed; labels trimmed and lower-cased with `worker`
//! appended unless written; tag keys and values trimmed, case kept; capacities converted
//! to MB / MHz by [`crate::workspace::units`]. Hosts and labels end up in namespace paths
//! and key names, so they must not contain whitespace or `/`.

use super::doc::{self, Ctx};
use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span, Spanned};
use crate::workspace::source;
use crate::workspace::types::Worker;
use crate::workspace::units::Quantity;
use jsonc_parser::ast::{Object, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const PATH: &str = "workspace/workers.json";

/// Every field a worker object may have.
pub const FIELDS: &[&str] = &["host", "hostname", "labels", "memory", "cpu", "tags", "position"];

/// The label every worker carries.
pub const WORKER_LABEL: &str = "worker";

pub fn load(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Vec<Worker> {
    let Some((file, text)) = source::read(root, PATH, sources, diags) else { return Vec::new() };
    // A clean file takes the quick path; anything it does not accept is read again below,
    // where every problem is reported at its position.
    super::workers_fast::load(file, &text).unwrap_or_else(|| positioned(file, &text, diags))
}

/// Read `text` through the positioned AST, reporting every problem where it is.
pub(super) fn positioned(file: FileId, text: &str, diags: &mut Diagnostics) -> Vec<Worker> {
    let Some(value) = doc::parse(file, text, diags) else { return Vec::new() };
    let mut cx = Ctx::new(file, diags);
    let Value::Array(arr) = &value else {
        let d = Diagnostic::error(format!("workers.json must be an array of workers, found {}", doc::kind(&value)))
            .at(cx.open_span(&value))
            .label("expected `[`")
            .help(r#"write a list of worker objects, e.g. [{"host": "10.0.0.1", "labels": ["api"]}]"#);
        cx.push(d);
        return Vec::new();
    };

    let mut workers: Vec<Worker> = Vec::new();
    let mut hosts: BTreeMap<String, Span> = BTreeMap::new();
    for (index, el) in arr.elements.iter().enumerate() {
        let Some(obj) = cx.object(el, "worker") else { continue };
        let Some(w) = worker(&mut cx, obj, index) else { continue };
        let host_span = w.1;
        if let Some(first) = hosts.get(&w.0.host) {
            let d = Diagnostic::error(format!("duplicate host `{}`", w.0.host))
                .at(host_span)
                .label("this host is already in workers.json")
                .also(*first, "first used here")
                .help("every worker needs a unique `host`; remove or rename one of them");
            cx.push(d);
            continue;
        }
        hosts.insert(w.0.host.clone(), host_span);
        workers.push(w.0);
    }
    workers
}

/// One worker object and the span of its `host` value; `None` without a valid `host`.
/// Other field errors are reported and the field left unset, so cross-file checks still
/// see the worker (and do not warn that disabled.json names an unknown host).
fn worker(cx: &mut Ctx, obj: &Object, index: usize) -> Option<(Worker, Span)> {
    let mut host = None;
    let mut w = Worker {
        host: String::new(),
        hostname: None,
        labels: Vec::new(),
        memory_mb: None,
        cpu_mhz: None,
        tags: BTreeMap::new(),
        position: None,
        index,
        span: cx.span(obj),
    };
    for p in cx.fields(obj, "worker", FIELDS) {
        let v = &p.value;
        match p.name.as_str() {
            "host" => host = cx.nonempty_string(v, "host").and_then(|h| name_chars(cx, h, "host")),
            "hostname" => w.hostname = cx.nonempty_string(v, "hostname").map(|h| h.value),
            "labels" => w.labels = labels(cx, v),
            "memory" => w.memory_mb = cx.quantity(v, "memory", Quantity::Memory).map(|q| q.value),
            "cpu" => w.cpu_mhz = cx.quantity(v, "cpu", Quantity::Cpu).map(|q| q.value),
            "tags" => w.tags = tags(cx, v),
            "position" => w.position = cx.integer(v, "position", i64::MIN, i64::MAX, ""),
            _ => unreachable!("fields() only returns known names"),
        }
    }
    if !w.labels.iter().any(|l| l == WORKER_LABEL) {
        w.labels.push(WORKER_LABEL.to_string());
    }
    if obj.get("host").is_none() {
        let d = Diagnostic::error("worker has no `host`")
            .at(cx.open_span(obj))
            .label("`host` missing in this worker")
            .help(r#"add the worker's address, e.g. "host": "10.0.0.1""#);
        cx.push(d);
    }
    let host = host?;
    w.host = host.value;
    Some((w, host.span))
}

/// Hosts and labels become parts of namespace paths and key names.
pub fn name_chars(cx: &mut Ctx, s: Spanned<String>, what: &str) -> Option<Spanned<String>> {
    if let Some(c) = bad_name_char(&s.value) {
        let shown = match c {
            '/' => "`/`".to_string(),
            ' ' => "a space".to_string(),
            '\t' => "a tab".to_string(),
            _ => format!("the character {c:?}"),
        };
        let d = Diagnostic::error(format!("{what} `{}` contains {shown}", s.value))
            .at(s.span)
            .label(format!("invalid character in {what}"))
            .help("hosts, labels and selectors become parts of key-value namespaces and keys; they must not contain whitespace or `/`");
        cx.push(d);
        return None;
    }
    Some(s)
}

/// The first character a host or label must not contain.
pub fn bad_name_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_whitespace() || *c == '/' || c.is_control())
}

/// Labels trimmed and lower-cased, in the order written; duplicates reported (an explicit
/// `worker` is fine, it is simply not added a second time).
fn labels(cx: &mut Ctx, v: &Value) -> Vec<String> {
    let Some(items) = cx.string_list(v, "labels") else { return Vec::new() };
    // The first span of each label, by name: a Vec scan here was quadratic (100,000 labels
    // took minutes).
    let mut seen: std::collections::HashMap<String, Span> = std::collections::HashMap::new();
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let Some(item) = name_chars(cx, item, "label") else { continue };
        let label = item.value.to_lowercase();
        if let Some(first) = seen.get(&label) {
            let d = Diagnostic::error(format!("duplicate label `{label}`"))
                .at(item.span)
                .label("already listed")
                .also(*first, "first listed here")
                .help("labels are compared after trimming and lower-casing; remove one of them");
            cx.push(d);
            continue;
        }
        seen.insert(label.clone(), item.span);
        out.push(label);
    }
    out
}

fn tags(cx: &mut Ctx, v: &Value) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut spans: BTreeMap<String, Span> = BTreeMap::new();
    let Some(obj) = cx.object(v, "tags") else { return out };
    for p in cx.unique_props(obj, "`tags`") {
        let key = p.name.as_str().trim().to_string();
        let key_span = cx.key_span(p);
        if key.is_empty() {
            let d = Diagnostic::error("empty tag name")
                .at(key_span)
                .label("empty after trimming")
                .help("give the tag a name");
            cx.push(d);
            continue;
        }
        let Some(value) = cx.string(&p.value, &format!("tags.{key}")) else { continue };
        if let Some(first) = spans.get(&key) {
            let d = Diagnostic::error(format!("duplicate tag `{key}`"))
                .at(key_span)
                .label("same tag name after trimming")
                .also(*first, "first written here")
                .help("remove one of them");
            cx.push(d);
            continue;
        }
        spans.insert(key.clone(), key_span);
        out.insert(key, value.value.trim().to_string());
    }
    out
}
