//! `kvform plan`: desired vs current, printed (text, markdown or JSON), optionally saved.
//!
//! A bucket without state is planned against an empty state (said on stderr); such a plan
//! cannot be saved, since the state `kvform apply` creates gets its own fresh lineage.

use super::Context;
use super::pipeline;
use crate::plan::Plan;
use crate::plan::{PlanOptions, SavedPlan, TextOptions, render_markdown, render_text, write_json};
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show what `kvform apply` would change.
///
/// Output is deterministic (sorted, no timestamps), so it can be committed and reviewed.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform plan\n  kvform plan --out plan.json && kvform apply plan.json\n  \
kvform plan --format markdown > plan.md\n  kvform plan --detailed-exitcode || echo \"changes (2) or error (1)\"")]
pub struct Args {
    /// Save the plan to FILE (JSON, mode 0600) for `kvform apply FILE`; relative to -C DIR.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Also purge secrets/job/<job> and the hook-written keys of vars/job/<job> for jobs
    /// that have no active allocation.
    #[arg(long)]
    purge_secrets_kv: bool,
    /// Read and compare every key of the state, not only the namespaces that may have
    /// changed since the last apply.
    #[arg(long)]
    refresh: bool,
}

/// `--refresh` as a read mode.
pub(super) fn read_mode(refresh: bool) -> crate::state::ReadMode {
    if refresh { crate::state::ReadMode::Full } else { crate::state::ReadMode::Incremental }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Text,
    Markdown,
    Json,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = pipeline::load(ctx)?;
    let store = loaded.open_state()?;
    if store.is_none() {
        if args.out.is_some() {
            bail!(
                "no state at {}: a saved plan must name the state it applies to\n  help: run `kvform init` (or `kvform apply`) first",
                loaded.state_file().display()
            );
        }
        ctx.printer.info(&format!(
            "No state at {} yet: planning against an empty state (`kvform apply` creates it; ids derived from its bucket id will differ).",
            loaded.state_file().display()
        ));
    }
    let opts = PlanOptions { purge_secrets_kv: args.purge_secrets_kv };
    let planned = loaded.plan(ctx, store.as_ref(), &opts, read_mode(args.refresh))?;
    args.output.print(ctx, &planned.plan)?;
    let changes = !planned.plan.is_empty();
    if let Some(rel) = &args.out {
        let out = ctx.dir.join(rel);
        SavedPlan::new(planned.plan, planned.digest).write(&out)?;
        // The plan file path is relative to -C DIR, so the hint repeats the -C the user gave.
        let chdir =
            if ctx.dir == std::path::Path::new(".") { String::new() } else { format!("-C {} ", ctx.dir.display()) };
        ctx.printer.info(&format!(
            "Saved the plan to {}; apply it with `kvform {chdir}apply {}`",
            out.display(),
            rel.display()
        ));
    }
    Ok(if args.detailed_exitcode && changes { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// How a plan is printed; shared by `plan` and `show`.
#[derive(clap::Args, Debug)]
pub(super) struct OutputArgs {
    /// Print the machine-readable plan (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// List every change: every key of a purged namespace instead of one "(N keys)" line,
    /// and every namespace of a shape with more than 20 (`maand/job/api/worker/*`) instead
    /// of one line with counts.
    #[arg(long)]
    detail: bool,
}

impl OutputArgs {
    /// Print the plan to stdout in the chosen format; JSON is streamed as it is serialised.
    pub(super) fn print(&self, ctx: &Context, plan: &Plan) -> anyhow::Result<()> {
        if self.json || self.format == Format::Json {
            let out = std::io::stdout().lock();
            return Ok(write_json(plan, std::io::BufWriter::new(out))?);
        }
        ctx.printer.out(&self.render(ctx, plan));
        Ok(())
    }

    /// The plan as text or markdown (JSON goes through [`Self::print`]).
    fn render(&self, ctx: &Context, plan: &Plan) -> String {
        match self.format {
            Format::Markdown => render_markdown(plan),
            _ => render_text(plan, TextOptions { color: ctx.printer.color_stdout(), detail: self.detail }),
        }
    }
}
