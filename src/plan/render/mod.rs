//! Plan renderers: `text` (the terminal and golden-file form, SPEC §5), `json`
//! (`plan --json`) and `markdown` (pull-request comments).
//!
//! Text and markdown share the change listing built here: one [`Line`] per row, with the
//! plan symbol kept apart from the text so the terminal can colour it and markdown can map
//! it onto a ```` ```diff ```` block. Everything is a pure function of the plan: no clock,
//! no environment, sorted input in, same bytes out.

pub mod json;
pub mod markdown;
pub mod text;

mod values;

use super::types::{Action, Change, Plan};
use crate::kv::NamespaceKind;
use std::collections::HashMap;
use values::{cert_summary, detail_lines, quote};

/// One output line of the change listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// `+`, `~`, `-`, or ' ' for context lines of a value diff.
    pub sym: char,
    /// Extra indent after the symbol (value diff lines are indented under their key).
    pub indent: usize,
    pub text: String,
}

/// A change row before alignment.
struct Row {
    sym: char,
    namespace: String,
    /// Key part (`key = "v"`, `key`, `(3 keys)`).
    body: String,
    comment: Option<String>,
    /// A folded purge group: excluded from the namespace column width.
    folded: bool,
    details: Vec<Line>,
}

/// Rows of the change listing, aligned: namespace column padded to the widest unfolded
/// namespace, comments (`# …`) aligned one column after the longest commented row.
pub(crate) fn change_lines(plan: &Plan, detail: bool) -> Vec<Line> {
    let rows = rows(&plan.changes, detail);
    let ns_width = rows.iter().filter(|r| !r.folded).map(|r| width(&r.namespace)).max().unwrap_or(0);
    let head = |r: &Row| format!("{:<ns_width$}  {}", r.namespace, r.body);
    let comment_col = rows.iter().filter(|r| r.comment.is_some()).map(|r| width(&head(r))).max().unwrap_or(0) + 2;

    let mut out = Vec::new();
    for r in &rows {
        let mut text = head(r);
        if let Some(c) = &r.comment {
            let pad = comment_col - width(&text);
            text = format!("{text}{}# {c}", " ".repeat(pad));
        } else {
            text.truncate(text.trim_end().len());
        }
        out.push(Line { sym: r.sym, indent: 0, text });
        out.extend(r.details.iter().cloned());
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// More namespaces of one shape than this are printed as one line (SPEC §11).
pub(crate) const GROUP_OVER: usize = 20;
/// Names a group line shows before `…`.
const GROUP_NAMES: usize = 3;

/// The shape a namespace is grouped under: its host (or, for job-level namespaces, its job)
/// replaced by `*` — `maand/job/api/worker/*`, `maand/worker/*`, `vars/job/*`. `None` for
/// the bucket-wide namespaces, which are one of a kind.
pub(crate) fn shape(ns: &str) -> Option<String> {
    Some(match NamespaceKind::parse(ns)? {
        NamespaceKind::Allocation { job, .. } => format!("maand/job/{job}/worker/*"),
        NamespaceKind::Worker(_) => "maand/worker/*".into(),
        NamespaceKind::WorkerTags(_) => "maand/worker/*/tags".into(),
        NamespaceKind::Job(_) => "maand/job/*".into(),
        NamespaceKind::BucketJobVars(_) => "vars/bucket/job/*".into(),
        NamespaceKind::JobVars(_) => "vars/job/*".into(),
        NamespaceKind::JobSecrets(_) => "secrets/job/*".into(),
        NamespaceKind::Bucket | NamespaceKind::Workers | NamespaceKind::BucketVars | NamespaceKind::Prometheus => {
            return None;
        }
    })
}

/// The name a namespace shows in its group line (the part the `*` stands for).
fn member(ns: &str) -> String {
    match NamespaceKind::parse(ns) {
        Some(k) => k.host().or(k.job()).unwrap_or(ns).to_string(),
        None => ns.to_string(),
    }
}

/// Per shape with more than [`GROUP_OVER`] changed namespaces: its group line.
fn groups(changes: &[Change]) -> HashMap<String, Row> {
    struct Acc {
        names: Vec<String>,
        namespaces: usize,
        counts: [usize; 3],
        last: String,
    }
    let mut acc: HashMap<String, Acc> = HashMap::new();
    for c in changes {
        let Some(shape) = shape(&c.namespace) else { continue };
        let a = acc.entry(shape).or_insert_with(|| Acc {
            names: Vec::new(),
            namespaces: 0,
            counts: [0; 3],
            last: String::new(),
        });
        if a.last != c.namespace {
            a.namespaces += 1;
            if a.names.len() < GROUP_NAMES {
                a.names.push(member(&c.namespace));
            }
            a.last.clone_from(&c.namespace);
        }
        a.counts[match c.action {
            Action::Create => 0,
            Action::Update => 1,
            Action::Tombstone => 2,
        }] += 1;
    }
    acc.into_iter()
        .filter(|(_, a)| a.namespaces > GROUP_OVER)
        .map(|(shape, a)| {
            let kinds = a.counts.iter().filter(|n| **n > 0).count();
            let sym = match a.counts {
                _ if kinds > 1 => '~',
                [n, _, _] if n > 0 => '+',
                [_, n, _] if n > 0 => '~',
                _ => '-',
            };
            let counts: Vec<String> =
                ['+', '~', '-'].iter().zip(a.counts).filter(|(_, n)| *n > 0).map(|(s, n)| format!("{s}{n}")).collect();
            let body = format!("({} namespaces; keys {})", a.namespaces, counts.join(" "));
            let more = if a.namespaces > a.names.len() { ", …" } else { "" };
            let comment = format!("{}{more} (--detail lists every change)", a.names.join(", "));
            (
                shape.clone(),
                Row { sym, namespace: shape, body, comment: Some(comment), folded: true, details: Vec::new() },
            )
        })
        .collect()
}

fn rows(changes: &[Change], detail: bool) -> Vec<Row> {
    let mut groups = if detail { HashMap::new() } else { groups(changes) };
    let mut rows = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let c = &changes[i];
        // A namespace of a grouped shape: the group's line at its first namespace, then
        // every change of the group is skipped.
        if let Some(shape) = (!groups.is_empty()).then(|| shape(&c.namespace)).flatten()
            && let Some(row) = groups.get_mut(&shape)
        {
            if !row.body.is_empty() {
                rows.push(std::mem::replace(
                    row,
                    Row {
                        sym: ' ',
                        namespace: String::new(),
                        body: String::new(),
                        comment: None,
                        folded: true,
                        details: Vec::new(),
                    },
                ));
            }
            i += 1;
            continue;
        }
        // A purge group: consecutive purge changes of one namespace with one reason.
        let group_len = changes[i..]
            .iter()
            .take_while(|o| o.purge && c.purge && o.namespace == c.namespace && o.reason == c.reason)
            .count();
        if group_len > 1 && !detail {
            rows.push(Row {
                sym: '-',
                namespace: c.namespace.clone(),
                body: format!("({group_len} keys)"),
                comment: Some(format!("purge: {}", c.reason.as_deref().unwrap_or_default())),
                folded: true,
                details: Vec::new(),
            });
            i += group_len;
            continue;
        }
        rows.push(row(c));
        i += 1;
    }
    rows
}

fn row(c: &Change) -> Row {
    // Key rows say `tombstone:` (also for the keys of a purge listed one by one); only a
    // folded purge group says `purge:` (SPEC §5 example).
    let comment = match c.action {
        Action::Tombstone => c.reason.as_ref().map(|r| format!("tombstone: {r}")),
        _ => c.reason.clone(),
    };
    let (body, details) = match c.action {
        Action::Tombstone if c.before_sensitive => (format!("{} (sensitive)", c.key), Vec::new()),
        Action::Tombstone => (c.key.clone(), Vec::new()),
        _ if c.after_unknown && c.after_sensitive => {
            (format!("{} = (sensitive, known after apply)", c.key), Vec::new())
        }
        _ if c.after_unknown => (format!("{} = (known after apply)", c.key), Vec::new()),
        _ if c.after_sensitive || c.before_sensitive => (format!("{} = (sensitive)", c.key), Vec::new()),
        _ => {
            let before = c.before.as_deref().filter(|_| c.action == Action::Update);
            let after = c.after.as_ref().map(|v| v.to_cow()).unwrap_or_default();
            let after = &*after;
            let shown = |v: &str| cert_summary(v).unwrap_or_else(|| quote(v));
            if cert_summary(after).is_some() || before.and_then(cert_summary).is_some() {
                let body = match before {
                    Some(b) => format!("{} = {} -> {}", c.key, shown(b), shown(after)),
                    None => format!("{} = {}", c.key, shown(after)),
                };
                return Row {
                    sym: c.action.symbol(),
                    namespace: c.namespace.clone(),
                    body,
                    comment,
                    folded: false,
                    details: Vec::new(),
                };
            }
            match detail_lines(before, after) {
                Some((label, lines)) => (format!("{}{label}", c.key), lines),
                None => match before {
                    Some(b) => (format!("{} = {} -> {}", c.key, quote(b), quote(after)), Vec::new()),
                    None => (format!("{} = {}", c.key, quote(after)), Vec::new()),
                },
            }
        }
    };
    Row { sym: c.action.symbol(), namespace: c.namespace.clone(), body, comment, folded: false, details }
}

/// `Plan: N to add, M to change, K to destroy.` or the no-changes line.
pub(crate) fn summary_line(plan: &Plan) -> String {
    if plan.is_empty() {
        return "No changes. Your state matches the workspace.".into();
    }
    let s = plan.summary;
    format!("Plan: {} to add, {} to change, {} to destroy.", s.add, s.change, s.destroy)
}
