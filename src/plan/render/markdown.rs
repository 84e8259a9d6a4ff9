//! A plan as a pull-request comment: a summary table, the changes in a collapsible
//! `<details>` block as a ```` ```diff ```` listing (`+` add, `!` change, `-` destroy, so
//! code hosts colour them), then the rollout as a nested list.

use super::text::hooks_text;
use super::{change_lines, summary_line};
use crate::plan::types::Plan;
use std::fmt::Write;

/// Render the plan as GitHub-flavoured markdown (ends with a newline).
pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::from("### kvform plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if plan.is_empty() {
        return out;
    }
    let s = plan.summary;
    let _ = writeln!(
        out,
        "| to add | to change | to destroy |\n|---:|---:|---:|\n| {} | {} | {} |\n",
        s.add, s.change, s.destroy
    );

    let lines: Vec<String> = change_lines(plan, false)
        .iter()
        .map(|l| {
            let sym = if l.sym == '~' { '!' } else { l.sym };
            format!("{sym} {}{}", " ".repeat(l.indent), l.text).trim_end().to_string()
        })
        .collect();
    let fence = fence_for(&lines);
    let n = plan.changes.len();
    let _ = writeln!(out, "<details><summary>{n} change{}</summary>\n", if n == 1 { "" } else { "s" });
    let _ = writeln!(out, "{fence}diff");
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out, "{fence}\n\n</details>\n");

    let bucket = plan.bucket_step_namespaces();
    if !plan.rollout.is_empty() || !bucket.is_empty() {
        out.push_str("#### Rollout\n\n");
        if !bucket.is_empty() {
            let _ = writeln!(out, "- bucket level, no hooks: {} namespace(s)", bucket.len());
        }
        for wave in &plan.rollout {
            let _ = writeln!(out, "- wave {}", wave.seq);
            for job in &wave.jobs {
                if job.batches.is_empty() && job.stopped.is_empty() {
                    let _ = writeln!(out, "  - `{}`: no allocation batches, applied without hooks", job.job);
                    continue;
                }
                let _ = writeln!(out, "  - `{}` (hooks: {})", job.job, hooks_text(&job.hooks));
                for batch in &job.batches {
                    let _ = writeln!(out, "    - {}: {}", batch.kind.as_str(), batch.hosts.join(", "));
                }
                if !job.stopped.is_empty() {
                    let _ = writeln!(out, "    - stopped: {}", job.stopped.join(", "));
                }
            }
        }
    }
    out
}

/// A code fence longer than any backtick run in the content (values may hold backticks).
fn fence_for(lines: &[String]) -> String {
    let longest = lines.iter().flat_map(|l| l.split(|c| c != '`').map(str::len).max()).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}
