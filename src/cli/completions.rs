//! `kvform completions SHELL`.

use super::{Cli, Context};
use clap::CommandFactory;
use std::process::ExitCode;

/// Print a completion script for SHELL to stdout.
///
/// Example: kvform completions bash > /etc/bash_completion.d/kvform
#[derive(clap::Args, Debug)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "kvform", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
