//! `kvform validate`: parse and check the workspace, then build the desired state (placement,
//! ports, resources, waves). Every problem found is printed to stderr, sorted by file and
//! position; warnings never fail the command.
//!
//! `--json` prints the result in Terraform's `validate -json` shape instead (diagnostics with
//! their ranges, `crate::diag::json`).
//!
//! `--print-desired` prints the desired state (`model::render::text` or `json`) to stdout.
//! Ids derive from the bucket id: `--bucket-id`, else the state's, else the nil UUID (with a
//! note). Port numbers and which allocations are new come from the state's snapshot when a
//! state exists. The state is only ever opened read-only: validate never creates or changes it.

use super::Context;
use crate::bucket::Bucket;
use crate::model::{self, render, types::Prior};
use crate::workspace::{self, types::Workspace};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use uuid::Uuid;

/// Check the workspace: every file is parsed and every rule checked (placement, ports,
/// resources, dependencies included). Prints every problem with file:line:column and
/// exits 1 if there is an error. Never writes the state.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform validate\n  kvform -C ./bucket validate --no-color 2> problems.txt\n  \
kvform validate --print-desired                  every key the next plan aims for\n  \
kvform validate --print-desired --format json | jq '.waves'\n  \
kvform validate -json | jq '.diagnostics[]'           editors and CI annotations")]
pub struct Args {
    /// After a successful check, print the desired state (waves, allocations, every key) to
    /// stdout. Reads the state (read-only) for the bucket id and current port numbers.
    #[arg(long)]
    pub print_desired: bool,
    /// Output format of --print-desired.
    #[arg(long, value_enum, default_value_t = Format::Text, requires = "print_desired")]
    pub format: Format,
    /// Bucket id the ids derive from (default: the state's; the nil UUID when there is no state).
    #[arg(long, value_name = "UUID", requires = "print_desired")]
    pub bucket_id: Option<Uuid>,
    /// Print the result as JSON on stdout in Terraform's shape (`valid`, `error_count`,
    /// `warning_count`, `diagnostics` with `severity`, `summary`, `detail`, `range`), for
    /// editors and CI annotations; nothing on stderr.
    #[arg(long, conflicts_with = "print_desired")]
    pub json: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let bucket = Bucket::find(&ctx.dir)?;
    let loaded = workspace::load(&bucket.root);
    let mut diags = loaded.diagnostics;
    let mut valid = None;
    if let Some(ws) = &loaded.workspace {
        let prior = if args.print_desired {
            prior(ctx, &bucket, ws, args.bucket_id)?
        } else {
            // Without --print-desired the state is not consulted: a nil bucket id and no
            // prior assignments still exercise every rule of the model.
            Prior { bucket_id: Uuid::nil(), ..Prior::default() }
        };
        match model::desired(ws, &prior) {
            Ok(d) => valid = Some((ws.workers.len(), ws.jobs.len(), d)),
            Err(model_diags) => diags.extend(model_diags),
        }
    }
    diags.sort(&loaded.sources);
    if args.json {
        let valid = valid.is_some() && !diags.has_errors();
        let doc = serde_json::json!({
            "format_version": "1.0",
            "valid": valid,
            "error_count": diags.error_count(),
            "warning_count": diags.warning_count(),
            "diagnostics": crate::diag::json::diagnostics(&diags, &loaded.sources),
        });
        ctx.printer.out(&(serde_json::to_string_pretty(&doc).expect("JSON serialises") + "\n"));
        return Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    ctx.printer.raw_stderr(&diags.render(&loaded.sources, ctx.printer.color_stderr()));
    match valid {
        Some((workers, jobs, desired)) if !diags.has_errors() => {
            let summary = format!("Workspace is valid: {}, {}.", plural(workers, "worker"), plural(jobs, "job"));
            if args.print_desired {
                // stdout carries only the rendering, so it can be piped or diffed.
                ctx.printer.info(&summary);
                let shown = match args.format {
                    Format::Text => render::text(&desired),
                    Format::Json => render::json(&desired),
                };
                ctx.printer.out(&shown);
            } else {
                ctx.printer.out(&summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            ctx.printer.error(&format!(
                "{}, {}",
                plural(diags.error_count(), "error"),
                plural(diags.warning_count(), "warning")
            ));
            Ok(ExitCode::from(1))
        }
    }
}

/// What the state already holds, read-only; defaults (plus a note) when there is no state.
fn prior(ctx: &Context, bucket: &Bucket, ws: &Workspace, bucket_id: Option<Uuid>) -> anyhow::Result<Prior> {
    let loc = super::session::location_of(bucket, &ws.settings);
    let path = loc.file().map_or_else(|| PathBuf::from("(the PostgreSQL state)"), Path::to_path_buf);
    let mut prior = if loc.exists()? {
        // Reads only: a plan-like read never takes the lock or writes.
        let store = loc.open_read_only()?;
        let snap = store.lean_snapshot().with_context(|| format!("cannot read the state {}", path.display()))?;
        Prior::from_current(&snap)
    } else {
        if bucket_id.is_none() {
            ctx.printer.info(&format!(
                "note: no state at {}: ids derive from the nil bucket id (pass --bucket-id, or run `kvform init`)",
                path.display()
            ));
        }
        Prior { bucket_id: Uuid::nil(), ..Prior::default() }
    };
    if let Some(id) = bucket_id {
        prior.bucket_id = id;
    }
    Ok(prior)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}
