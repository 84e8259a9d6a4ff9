//! Output shared by several commands, so no command file imports another: the table
//! renderer and listing format (`cat`, `kv history`, `state info`, `health`), how a stored
//! value is shown (secrets masked), and how a plan is printed (`plan`, `show`).

use super::Context;
use crate::kv::{Entry, is_secret_namespace};
use crate::plan::{Plan, TextOptions, render_json, render_markdown, render_text};
use crate::secrets::Keyring;

/// Shown instead of a secret's value.
pub(super) const SENSITIVE: &str = "(sensitive)";

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Table,
    Json,
}

/// The value as listings show it: tombstones empty, secrets masked unless a keyring is given.
pub(super) fn shown_value(ns: &str, key: &str, e: &Entry, reveal: Option<&Keyring>) -> anyhow::Result<String> {
    if e.deleted {
        return Ok(String::new());
    }
    if !is_secret_namespace(ns) {
        return Ok(e.value.clone());
    }
    match reveal {
        Some(ring) => Ok(ring.open(ns, key, e.version, &e.value)?.to_string()),
        None => Ok(SENSITIVE.to_string()),
    }
}

/// Columns padded to their widest cell (by characters); `right[i]` right-aligns column i.
pub(super) fn table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    let mut width = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = " ".repeat(width[i] - c.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right[i] {
                line.push_str(&pad);
                line.push_str(c);
            } else {
                line.push_str(c);
                if i + 1 < N {
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlanFormat {
    Text,
    Markdown,
    Json,
}

/// How a plan is printed; shared by `plan` and `show`.
#[derive(clap::Args, Debug)]
pub(super) struct OutputArgs {
    /// Print the machine-readable plan (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
    /// List every key of a purged namespace instead of one "(N keys)" line.
    #[arg(long)]
    detail: bool,
}

impl OutputArgs {
    /// The plan in the chosen format.
    pub(super) fn render(&self, ctx: &Context, plan: &Plan) -> String {
        match if self.json { PlanFormat::Json } else { self.format } {
            PlanFormat::Text => {
                render_text(plan, TextOptions { color: ctx.printer.color_stdout(), detail: self.detail })
            }
            PlanFormat::Markdown => render_markdown(plan),
            PlanFormat::Json => render_json(plan),
        }
    }
}
