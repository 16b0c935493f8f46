//! `rewind RUN --at SEQ`: forks the run into the goal's next episode and, in
//! the same atomic step, marks it superseded (no longer recoverable).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::KeyJson;
use crate::context::Context;
use crate::select::RunArg;

/// The arguments of `rewind`.
#[derive(Args, Debug)]
pub struct RewindArgs {
    #[command(flatten)]
    run: RunArg,
    /// The last seq of the run that the branch that goes on keeps.
    #[arg(long, value_name = "SEQ")]
    at: u64,
}

/// `rewind --json`: the branch's key, the superseded run and the rewind point.
#[derive(Serialize)]
struct Rewound<'a> {
    #[serde(flatten)]
    branch: KeyJson<'a>,
    superseded: KeyJson<'a>,
    at: u64,
}

/// `rewind`.
pub fn run(cx: &mut Context, args: &RewindArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let original = cx.resolve(&journal, &args.run)?.key;
    let at = args.at;
    let branch = journal.rewind(&original, at)?.key().clone();
    if cx.json {
        cx.print_json(&Rewound {
            branch: KeyJson::of(&branch),
            superseded: KeyJson::of(&original),
            at,
        })?;
    } else {
        writeln!(
            cx.out,
            "rewound {original} to seq {at}: it goes on as {branch}; {original} is superseded"
        )?;
        writeln!(cx.out, "branch id: {}", branch.short_id())?;
    }
    Ok(ExitCode::SUCCESS)
}
