//! A plan as a pull-request comment: a header naming the bucket, the base serial and the
//! commit; a warning block listing what the plan destroys (purges first); a summary table;
//! the changes in a collapsible `<details>` block as a ```` ```diff ```` listing (`+` add,
//! `!` change, `-` destroy, so code hosts colour them); then the rollout as a nested list.
//!
//! Size budget: GitHub refuses comments over 65,536 characters (tfcmt cuts at 60,000), so
//! the comment never exceeds [`MarkdownOptions::max_chars`] (default 60,000; counted in
//! bytes, which are never fewer than characters): past it, the change listing is cut at a
//! line, its fence closed, the rollout left out, and a visible note says how much is shown
//! and where the full plan is.

use super::text::hooks_text;
use super::{change_lines, summary_line};
use crate::plan::types::{Action, Plan};
use std::fmt::Write;

/// GitHub's limit is 65,536; tfcmt's default cut, which leaves room for a wrapper.
pub const DEFAULT_MAX_CHARS: usize = 60_000;
/// Entries of the destroy warning before `… and N more`.
const WARN_ENTRIES: usize = 20;

/// What the comment says about where the plan comes from, and its size budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// The bucket id (`None`: the bucket has no state yet, or a saved plan is shown: the
    /// header names the state lineage then).
    pub bucket_id: Option<String>,
    /// The git commit of the bucket's work tree, when it is in one.
    pub commit: Option<String>,
    /// The longest comment produced (bytes).
    pub max_chars: usize,
    /// Where the full plan is, for the note of a cut comment (`kvform show plan.json`).
    pub full_plan: String,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            bucket_id: None,
            commit: None,
            max_chars: DEFAULT_MAX_CHARS,
            full_plan: "run `kvform plan` on this commit".into(),
        }
    }
}

/// Render the plan as GitHub-flavoured markdown with the default options.
pub fn render_markdown(plan: &Plan) -> String {
    render_markdown_with(plan, &MarkdownOptions::default())
}

/// Render the plan as GitHub-flavoured markdown (ends with a newline), within
/// `opts.max_chars`.
pub fn render_markdown_with(plan: &Plan, opts: &MarkdownOptions) -> String {
    let mut head = header(plan, opts);
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    for note in &plan.notes {
        let _ = writeln!(head, "> [!NOTE]\n> {note}\n");
    }
    if plan.is_empty() {
        return head;
    }
    head.push_str(&destroy_warning(plan));
    let s = plan.summary;
    let _ = writeln!(
        head,
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
    let _ = writeln!(head, "<details><summary>{n} change{}</summary>\n", if n == 1 { "" } else { "s" });
    let _ = writeln!(head, "{fence}diff");
    let close = format!("{fence}\n\n</details>\n\n");
    let rollout = rollout(plan);

    let total = head.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>() + close.len() + rollout.len();
    let mut out = head;
    if total <= opts.max_chars {
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(&close);
        out.push_str(&rollout);
        return out;
    }
    // Cut: as many whole lines as fit before the closing fence and the note.
    let note = |shown: usize| {
        format!(
            "> [!WARNING]\n> **This comment was cut to fit {} characters**: {shown} of {} change lines are shown and the rollout is left out. The full plan: {}.\n",
            thousands(opts.max_chars),
            thousands(lines.len()),
            opts.full_plan
        )
    };
    let budget = opts.max_chars.saturating_sub(out.len() + close.len() + note(lines.len()).len());
    let mut used = 0;
    let mut shown = 0;
    for l in &lines {
        if used + l.len() + 1 > budget {
            break;
        }
        used += l.len() + 1;
        out.push_str(l);
        out.push('\n');
        shown += 1;
    }
    out.push_str(&close);
    out.push_str(&note(shown));
    out
}

/// `### kvform plan` with the bucket, base serial and commit (two buckets in one pull
/// request must not look the same).
fn header(plan: &Plan, opts: &MarkdownOptions) -> String {
    let mut out = String::from("### kvform plan\n\n");
    let bucket = match &opts.bucket_id {
        Some(id) => format!("bucket `{id}` at serial {}", plan.meta.base_serial),
        None if plan.meta.lineage.is_nil() => "a new bucket (no state yet)".to_string(),
        None => format!("state lineage `{}` at serial {}", plan.meta.lineage, plan.meta.base_serial),
    };
    let commit = opts.commit.as_ref().map(|c| format!(", commit `{c}`")).unwrap_or_default();
    let _ = writeln!(out, "{bucket}{commit}\n");
    out
}

/// A warning block listing the destroys: purged namespaces first, then tombstoned keys.
fn destroy_warning(plan: &Plan) -> String {
    let mut purges: Vec<(&str, usize, &str)> = Vec::new();
    let mut tombstones: Vec<String> = Vec::new();
    for c in plan.changes.iter().filter(|c| c.action == Action::Tombstone) {
        let reason = c.reason.as_deref().unwrap_or_default();
        if c.purge {
            match purges.last_mut() {
                Some((ns, n, r)) if *ns == c.namespace && *r == reason => *n += 1,
                _ => purges.push((&c.namespace, 1, reason)),
            }
        } else {
            tombstones.push(format!("`{}` `{}` (tombstone: {reason})", c.namespace, c.key));
        }
    }
    if purges.is_empty() && tombstones.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = purges
        .iter()
        .map(|(ns, n, r)| format!("`{ns}` ({n} key{}; purge: {r})", if *n == 1 { "" } else { "s" }))
        .chain(tombstones)
        .collect();
    let mut out = format!(
        "> [!CAUTION]\n> This plan destroys {} key{} ({} namespace{} purged):\n",
        plan.summary.destroy,
        if plan.summary.destroy == 1 { "" } else { "s" },
        purges.len(),
        if purges.len() == 1 { "" } else { "s" },
    );
    for e in entries.iter().take(WARN_ENTRIES) {
        let _ = writeln!(out, "> - {e}");
    }
    if entries.len() > WARN_ENTRIES {
        let _ = writeln!(out, "> - … and {} more", entries.len() - WARN_ENTRIES);
    }
    out.push('\n');
    out
}

fn rollout(plan: &Plan) -> String {
    let mut out = String::new();
    let bucket = plan.bucket_step_namespaces();
    if plan.rollout.is_empty() && bucket.is_empty() {
        return out;
    }
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
    out
}

/// `60,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A code fence longer than any backtick run in the content (values may hold backticks).
fn fence_for(lines: &[String]) -> String {
    let longest = lines.iter().flat_map(|l| l.split(|c| c != '`').map(str::len).max()).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(60_000), "60,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
