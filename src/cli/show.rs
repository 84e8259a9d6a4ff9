//! `kvform show FILE`: render a saved plan (text, markdown or JSON) without touching the
//! bucket. What the plan was made from (lineage, base serial, kvform version) goes to
//! stderr so stdout stays the same as `kvform plan` printed.

use super::Context;
use super::plan::Format;
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
    /// Print the machine-readable plan (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// List every key of a purged namespace instead of one "(N keys)" line.
    #[arg(long)]
    detail: bool,
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
    let format = if args.json { Format::Json } else { args.format };
    ctx.printer.out(&super::plan::render(ctx, &saved.plan, format, args.detail));
    Ok(ExitCode::SUCCESS)
}
