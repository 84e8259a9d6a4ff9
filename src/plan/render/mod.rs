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
use values::{detail_lines, quote};

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

fn rows(changes: &[Change], detail: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let c = &changes[i];
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
