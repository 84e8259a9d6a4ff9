//! `kvform graph`: the bucket's jobs by wave with their `demands` (and, with `--rollout`,
//! the batches of the pending plan) as Graphviz DOT or Mermaid (`crate::plan::graph`).
//! Reads the state (never writes it): it plans like `kvform plan`, read-only.

use super::Context;
use super::pipeline;
use crate::plan::PlanOptions;
use crate::plan::graph::{GraphFormat, render_graph};
use std::process::ExitCode;

/// Draw the rollout: jobs grouped by wave, an edge per `demands`, and with --rollout the
/// allocation batches of the pending plan in apply order.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform graph | dot -Tsvg > graph.svg\n  \
kvform graph --format mermaid --rollout       paste into a pull request (```mermaid)")]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    /// Also draw the allocation batches of the pending plan (what `kvform apply` would roll out).
    #[arg(long)]
    rollout: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dot,
    Mermaid,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = pipeline::load(ctx)?;
    let store = loaded.open_state()?;
    // A full read: the graph needs the desired state, which an unchanged incremental plan
    // does not build.
    let planned = loaded.plan(ctx, store.as_ref(), &PlanOptions::default(), crate::state::ReadMode::Full)?;
    let desired = match planned.desired {
        Some(d) => d,
        None => loaded.desired(ctx, &crate::kv::LeanSnapshot::default(), store.as_ref())?,
    };
    let format = match args.format {
        Format::Dot => GraphFormat::Dot,
        Format::Mermaid => GraphFormat::Mermaid,
    };
    ctx.printer.out(&render_graph(&desired, args.rollout.then_some(&planned.plan), format));
    Ok(ExitCode::SUCCESS)
}
