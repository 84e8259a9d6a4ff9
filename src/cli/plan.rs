//! `kvform plan`: desired vs current, printed (text, markdown or JSON), optionally saved.
//!
//! A bucket without state is planned against an empty state (said on stderr); such a plan
//! cannot be saved, since the state `kvform apply` creates gets its own fresh lineage.

use super::Context;
use super::output::OutputArgs;
use super::pipeline;
use super::plan_files;
use crate::plan::{PlanOptions, SavedPlan};
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
    /// Plan only this job's namespaces (and the bucket-level changes they depend on);
    /// repeatable. Not for routine use: for recovering from errors or mistakes.
    #[arg(long = "target", value_name = "JOB", value_delimiter = ',')]
    targets: Vec<String>,
    /// Read and compare every key of the state, not only the namespaces that may have
    /// changed since the last apply.
    #[arg(long)]
    refresh: bool,
    /// After the plan, show each job template's rendered line diff against the last apply's
    /// render (secrets masked; values hooks write during the apply `(known after apply)`).
    #[arg(long)]
    render: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if !args.output.is_json() {
        return plan(ctx, &args, &mut None);
    }
    // `--json`: a plan that fails still prints a document (`errored`, `diagnostics`) on
    // stdout; the error goes to stderr as always.
    let mut reported = None;
    match plan(ctx, &args, &mut reported) {
        Ok(code) => Ok(code),
        Err(e) => {
            let diags = pipeline::diagnostics_of(&e, reported.unwrap_or_default());
            ctx.printer.out(&crate::plan::render_errored_json(diags));
            Err(e)
        }
    }
}

/// `reported`: the diagnostics reported so far, left there when the plan fails.
fn plan(ctx: &Context, args: &Args, reported: &mut Option<Vec<serde_json::Value>>) -> anyhow::Result<ExitCode> {
    let mut loaded = pipeline::load(ctx)?;
    let result = plan_loaded(ctx, args, &mut loaded);
    if result.is_err() {
        *reported = Some(loaded.reported.take());
    }
    result
}

fn plan_loaded(ctx: &Context, args: &Args, loaded: &mut pipeline::LoadedBucket) -> anyhow::Result<ExitCode> {
    loaded.targets = args.targets.clone();
    // Like `apply`: a key readable by others is refused before it is used, not after.
    crate::secrets::check_permissions(&loaded.session.bucket)?;
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
    let planned = loaded.plan(ctx, store.as_ref(), &opts, pipeline::read_mode(args.refresh))?;
    loaded.warn_if_targeted(ctx);
    let source = super::output::PlanSource {
        bucket_id: store.as_ref().map(|s| s.meta().map(|m| m.bucket_id.to_string())).transpose()?,
        dir: Some(loaded.session.bucket.root.clone()),
        full_plan: args.out.as_ref().map(|rel| format!("`kvform show {}` (saved with this plan)", rel.display())),
    };
    args.output.print_with(ctx, &planned.plan, loaded.reported.borrow().clone(), &source)?;
    if args.render {
        if store.is_some() {
            super::plan_render::print(ctx, &planned.plan)?;
        } else {
            ctx.printer.info("--render: templates are rendered against a state; there is none yet");
        }
    }
    let changes = !planned.plan.is_empty();
    if let Some(rel) = &args.out {
        let out = ctx.dir.join(rel);
        let mut saved = SavedPlan::new(planned.plan, planned.digest);
        saved.targets = args.targets.clone();
        plan_files::write(&saved, &out)?;
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
