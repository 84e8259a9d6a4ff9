//! `kvform validate`: parse and check the workspace, then build the desired state (placement,
//! ports, resources, waves) without reading or writing the state. Every problem found is
//! printed to stderr, sorted by file and position; warnings never fail the command.

use super::Context;
use crate::bucket::Bucket;
use crate::model::{self, types::Prior};
use crate::workspace;
use std::process::ExitCode;
use uuid::Uuid;

/// Check the workspace: every file is parsed and every rule checked (placement, ports,
/// resources, dependencies included). Prints every problem with file:line:column and
/// exits 1 if there is an error. Never reads or writes the state.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform validate\n  kvform -C ./bucket validate --no-color 2> problems.txt")]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    let bucket = Bucket::find(&ctx.dir)?;
    let loaded = workspace::load(&bucket.root);
    let mut diags = loaded.diagnostics;
    let mut counts = None;
    if let Some(ws) = &loaded.workspace {
        // The state is not consulted: a nil bucket id and no prior assignments still
        // exercise every rule of the model; ids and port numbers are not shown.
        let prior = Prior { bucket_id: Uuid::nil(), ..Prior::default() };
        match model::desired(ws, &prior) {
            Ok(_) => counts = Some((ws.workers.len(), ws.jobs.len())),
            Err(model_diags) => diags.extend(model_diags),
        }
    }
    diags.sort(&loaded.sources);
    ctx.printer.raw_stderr(&diags.render(&loaded.sources, ctx.printer.color_stderr()));
    match counts {
        Some((workers, jobs)) if !diags.has_errors() => {
            ctx.printer.out(&format!("Workspace is valid: {}, {}.", plural(workers, "worker"), plural(jobs, "job")));
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

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}
