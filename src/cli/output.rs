//! Output shared by several commands, so no command file imports another: the table
//! renderer and listing format (`cat`, `kv history`, `state info`, `health`), how a stored
//! value is shown (secrets masked), and how a plan is printed (`plan`, `show`).

use super::Context;
use crate::kv::{Entry, is_secret_key};
use crate::plan::{Plan, TextOptions, render_markdown_with, render_text};
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
    if !is_secret_key(ns, key) {
        return Ok(e.value.clone());
    }
    match reveal {
        Some(ring) => Ok(ring.open(ns, key, e.version, &e.value)?.to_string()),
        None => Ok(SENSITIVE.to_string()),
    }
}

/// The first row as a header, then the rest; columns padded to their widest cell, two spaces
/// apart, no borders (comfy-table's NOTHING preset); `right[i]` right-aligns column i. Never
/// sized to the terminal, so the output is the same in a pipe, a golden file or a terminal.
pub(super) fn table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};
    let mut t = Table::new();
    t.load_style(NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    let mut rows = rows.iter();
    if let Some(header) = rows.next() {
        t.set_header(header.iter());
    }
    for r in rows {
        t.add_row(r.iter());
    }
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i + 1 < N { 2 } else { 0 }));
        if right[i] {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.trim_fmt();
    out.push('\n');
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
    /// Markdown: the longest comment printed (GitHub refuses comments over 65,536
    /// characters); past it the change listing is cut with a visible note.
    #[arg(long, value_name = "N", default_value_t = crate::plan::render::markdown::DEFAULT_MAX_CHARS)]
    max_chars: usize,
}

/// Where a printed plan comes from, for the markdown header and the note of a cut comment.
#[derive(Debug, Clone, Default)]
pub(super) struct PlanSource {
    /// The bucket id (`None`: no state yet).
    pub bucket_id: Option<String>,
    /// The directory whose git commit the header names (the bucket root).
    pub dir: Option<std::path::PathBuf>,
    /// Where the full plan is (`kvform show FILE` for a saved plan).
    pub full_plan: Option<String>,
}

/// The short commit of the git work tree `dir` is in, if any (`git rev-parse`).
fn git_commit(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

impl OutputArgs {
    /// The chosen format (`--json` is `--format json`).
    pub(super) fn format(&self) -> PlanFormat {
        if self.json { PlanFormat::Json } else { self.format }
    }

    /// Print the plan to stdout in the chosen format; JSON is streamed as it is serialised
    /// (a large plan is never held as one text, SPEC §11). A reader that closes the pipe
    /// early ends the output quietly, like every other listing.
    pub(super) fn print(&self, ctx: &Context, plan: &Plan, source: &PlanSource) -> anyhow::Result<()> {
        self.print_with(ctx, plan, Vec::new(), source)
    }

    pub(super) fn is_json(&self) -> bool {
        self.format() == PlanFormat::Json
    }

    /// [`Self::print`] with the diagnostics (warnings) the JSON document carries.
    pub(super) fn print_with(
        &self,
        ctx: &Context,
        plan: &Plan,
        diagnostics: Vec<serde_json::Value>,
        source: &PlanSource,
    ) -> anyhow::Result<()> {
        if self.format() == PlanFormat::Json {
            let out = std::io::stdout().lock();
            let mut doc = crate::plan::PlanDocument::of(plan);
            doc.diagnostics = diagnostics;
            return match crate::plan::write_document(&doc, std::io::BufWriter::new(out)) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            };
        }
        ctx.printer.out(&self.render(ctx, plan, source));
        Ok(())
    }

    /// The plan as text or markdown (JSON goes through [`Self::print`]).
    fn render(&self, ctx: &Context, plan: &Plan, source: &PlanSource) -> String {
        match self.format() {
            PlanFormat::Markdown => {
                let opts = crate::plan::MarkdownOptions {
                    bucket_id: source.bucket_id.clone(),
                    commit: source.dir.as_deref().and_then(git_commit),
                    max_chars: self.max_chars,
                    full_plan: source
                        .full_plan
                        .clone()
                        .unwrap_or_else(|| "run `kvform plan` on this commit (or save it with `--out FILE`)".into()),
                };
                render_markdown_with(plan, &opts)
            }
            _ => render_text(plan, TextOptions { color: ctx.printer.color_stdout(), detail: self.detail }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_padded_two_spaces_apart_without_trailing_blanks() {
        let rows = [
            ["NAME", "N", "NOTE"].map(String::from),
            ["api", "12", "…"].map(String::from),
            ["database", "3", ""].map(String::from),
        ];
        assert_eq!(table(&rows, &[false, true, false]), "NAME       N  NOTE\napi       12  …\ndatabase   3\n");
    }
}
