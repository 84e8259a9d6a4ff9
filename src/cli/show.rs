//! `kvform show FILE`: render a saved plan (text, markdown or JSON) without touching the
//! bucket. What the plan was made from (lineage, base serial, kvform version) goes to
//! stderr so stdout stays the same as `kvform plan` printed.

use super::Context;
use super::plan::OutputArgs;
use crate::plan::SavedPlan;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a plan saved by `kvform plan --out FILE`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform show plan.json\n  kvform show plan.json --json | jq .summary")]
pub struct Args {
    /// The saved plan (relative to -C DIR).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let saved = SavedPlan::read(&ctx.dir.join(&args.file))?;
    ctx.printer.info(&format!(
        "Saved plan for state lineage {} at serial {}, made by kvform {}{}",
        saved.lineage,
        saved.base_serial,
        saved.kvform_version,
        if saved.options.purge_secrets_kv { " with --purge-secrets-kv" } else { "" }
    ));
    args.output.print(ctx, &saved.plan)?;
    Ok(ExitCode::SUCCESS)
}
