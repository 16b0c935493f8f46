//! `state`: a run's resume state (SPEC §3) as of its last event or of a seq
//! (time travel); `--json` in SPEC key order.

use std::process::ExitCode;

use clap::Args;
use runjournal::ResumeState;

use crate::context::Context;
use crate::render;
use crate::select::RunArg;

/// The arguments of `state`.
#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    run: RunArg,
    /// The state as of this seq (time travel) instead of the last event.
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
}

/// `state`.
pub fn run(cx: &mut Context, args: &StateArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let state = match args.at {
        Some(seq) => journal.state_at(&record.key, seq),
        None => journal.state(&record.key),
    }
    .map_err(|error| cx.read_error(error))?;
    write_state(cx, &state, args.at)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a resume state: SPEC §3 JSON in SPEC key order (the struct's
/// fields are in SPEC order; a `serde_json::Value` would sort them), or its sections.
pub fn write_state(cx: &mut Context, state: &ResumeState, at: Option<u64>) -> anyhow::Result<()> {
    if cx.json {
        cx.print_json(state)?;
    } else {
        let style = cx.style();
        render::state::write(cx.out, state, at, style)?;
    }
    Ok(())
}
