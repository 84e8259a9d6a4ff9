//! `kvform completions SHELL`.

use super::{Cli, Context};
use clap::CommandFactory;
use std::process::ExitCode;

/// Print a completion script for SHELL to stdout.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  kvform completions bash > /etc/bash_completion.d/kvform\n  kvform completions zsh > \"${fpath[1]}/_kvform\""
)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    // Into a buffer first: `generate` panics when its writer fails (`completions bash | head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "kvform", &mut script);
    ctx.printer.out(&String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
