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

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "kvform", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
