//! The terminal form of a plan (SPEC §5): the changes grouped by namespace (sorted),
//! aligned, then the rollout, then the summary line. More than 20 changed namespaces of one
//! shape (`maand/job/api/worker/*`) print as one line with counts and the first names
//! (SPEC §11; `detail` lists them all), so a 100,000-allocation plan stays readable. Deterministic, so it can be committed
//! as a golden file. Colour only when the caller asks (`--no-color`/NO_COLOR are decided in
//! the CLI): green `+`, yellow `~`, red `-`.

use super::{Line, change_lines, summary_line};
use crate::plan::types::{JobHooks, Plan};
use std::fmt::Write;

/// How the text is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// ANSI colours on the plan symbols.
    pub color: bool,
    /// List every key of a purge instead of one `(N keys)` line per namespace.
    pub detail: bool,
}

use anstyle::{AnsiColor, Style};

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();

/// Render the plan as text (ends with a newline).
pub fn render_text(plan: &Plan, opts: TextOptions) -> String {
    let mut out = String::new();
    if !plan.is_empty() {
        out.push_str("kvform will make these changes:\n\n");
        for line in change_lines(plan, opts.detail) {
            out.push_str(&format_line(&line, opts.color));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&rollout_text(plan));
    }
    for note in &plan.notes {
        let _ = writeln!(out, "Note: {note}\n");
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

fn format_line(line: &Line, color: bool) -> String {
    let sym = match (color, line.sym) {
        (true, '+') => format!("{GREEN}+{GREEN:#}"),
        (true, '~') => format!("{YELLOW}~{YELLOW:#}"),
        (true, '-') => format!("{RED}-{RED:#}"),
        (_, c) => c.to_string(),
    };
    let text = format!("  {sym} {}{}", " ".repeat(line.indent), line.text);
    text.trim_end().to_string()
}

/// The rollout section (empty when the plan rolls nothing out).
pub(crate) fn rollout_text(plan: &Plan) -> String {
    let mut out = String::new();
    let bucket = plan.bucket_step_namespaces();
    if plan.rollout.is_empty() && bucket.is_empty() {
        return out;
    }
    out.push_str("Rollout:\n");
    if !bucket.is_empty() {
        let n = bucket.len();
        let _ = writeln!(out, "  bucket level, no hooks: {n} namespace{}", if n == 1 { "" } else { "s" });
    }
    for wave in &plan.rollout {
        let _ = writeln!(out, "  wave {}:", wave.seq);
        for job in &wave.jobs {
            let _ = writeln!(out, "    {}", job.job);
            if job.batches.is_empty() && job.stopped.is_empty() {
                let _ = writeln!(
                    out,
                    "      no allocation batches; {} namespace(s) applied without hooks",
                    job.namespaces.len()
                );
                continue;
            }
            let _ = writeln!(out, "      hooks    {}", hooks_text(&job.hooks));
            for batch in &job.batches {
                let _ = writeln!(out, "      {:<8} {}", batch.kind.as_str(), batch.hosts.join(", "));
            }
            if !job.stopped.is_empty() {
                let _ = writeln!(out, "      {:<8} {}", "stopped", job.stopped.join(", "));
            }
        }
    }
    out.push('\n');
    out
}

/// `pre_deploy: a; post_deploy: b, c` or `none`.
pub(crate) fn hooks_text(h: &JobHooks) -> String {
    let parts: Vec<String> = h
        .by_event()
        .iter()
        .filter(|(_, cmds)| !cmds.is_empty())
        .map(|(event, cmds)| format!("{event}: {}", cmds.join(", ")))
        .collect();
    if parts.is_empty() { "none".into() } else { parts.join("; ") }
}
