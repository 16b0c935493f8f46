//! `completions`: a shell completion script for `runjournal`, generated from
//! the same clap definition the binary parses with, so it never drifts.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

use crate::context::Context;

/// The arguments of `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// `completions`: writes the script to stdout.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every subcommand's `run` takes its parsed arguments by value"
)]
#[expect(
    clippy::unnecessary_wraps,
    reason = "the same signature as every other subcommand's `run`"
)]
pub fn run(cx: &mut Context, command: &mut clap::Command, args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, command, "runjournal", cx.out);
    Ok(ExitCode::SUCCESS)
}
