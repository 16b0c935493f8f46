//! `fork RUN --at SEQ [--to-episode N]`: a child run whose history is the
//! parent's up to SEQ, then its own, in episode N (default: the goal's next).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use runjournal::RunKey;
use serde::Serialize;

use super::KeyJson;
use crate::context::Context;
use crate::select::RunArg;

/// The arguments of `fork`.
#[derive(Args, Debug)]
pub struct ForkArgs {
    #[command(flatten)]
    run: RunArg,
    /// The last parent seq the child's history includes.
    #[arg(long, value_name = "SEQ")]
    at: u64,
    /// The child's episode [default: the goal's next episode].
    #[arg(long, value_name = "N")]
    to_episode: Option<u32>,
}

/// `fork --json`: the child's key, its parent and the fork point.
#[derive(Serialize)]
struct Forked<'a> {
    #[serde(flatten)]
    child: KeyJson<'a>,
    parent: KeyJson<'a>,
    at: u64,
}

/// `fork`.
pub fn run(cx: &mut Context, args: &ForkArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let parent = cx.resolve(&journal, &args.run)?.key;
    let episode = match args.to_episode {
        Some(episode) => episode,
        None => journal
            .next_episode(&parent.goal)
            .map_err(|error| cx.read_error(error))?,
    };
    let child = RunKey::new(parent.goal.clone(), episode, parent.agent.clone())?;
    let at = args.at;
    journal.fork(&parent, at, child.clone())?;
    if cx.json {
        cx.print_json(&Forked {
            child: KeyJson::of(&child),
            parent: KeyJson::of(&parent),
            at,
        })?;
    } else {
        writeln!(cx.out, "forked {parent} at seq {at} into {child}")?;
        writeln!(cx.out, "child id: {}", child.short_id())?;
    }
    Ok(ExitCode::SUCCESS)
}
