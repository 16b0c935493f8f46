//! `state`: a run's resume state (docs/resume-state.md) as of its last event or of a seq
//! (time travel); `--json` in the documented key order (docs/resume-state.md).

use std::process::ExitCode;

use clap::Args;
use runjournal::ResumeState;

use crate::context::Context;
use crate::render;
use crate::render::state::TranscriptShown;
use crate::select::RunArg;

/// The arguments of `state`.
#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    run: RunArg,
    /// The state as of this seq (time travel) instead of the last event.
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
    /// How many of the transcript's newest messages the text shows: a number, or `all` (--json always has all).
    #[arg(long, value_name = "N|all", default_value = "8", value_parser = parse_transcript)]
    transcript: TranscriptShown,
}

fn parse_transcript(text: &str) -> Result<TranscriptShown, String> {
    if text == "all" {
        return Ok(TranscriptShown::All);
    }
    text.parse()
        .map(TranscriptShown::Last)
        .map_err(|_| format!("{text:?} is neither a number of messages nor `all`"))
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
    write_state(cx, &state, args.at, args.transcript)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a resume state: docs/resume-state.md JSON in the documented key order (docs/resume-state.md) (the struct's
/// fields are in the documented order; a `serde_json::Value` would sort them), or its sections.
pub fn write_state(
    cx: &mut Context,
    state: &ResumeState,
    at: Option<u64>,
    transcript: TranscriptShown,
) -> anyhow::Result<()> {
    if cx.json {
        cx.print_json(state)?;
    } else {
        let style = cx.style();
        render::state::write(cx.out, state, at, transcript, style)?;
    }
    Ok(())
}
