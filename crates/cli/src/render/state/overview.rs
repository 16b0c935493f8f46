//! The overview of a resume state: the run, its status, the seq, epoch and
//! head it is as of, and how far it progressed.

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::{plural, Style};
use crate::render::status_text;

/// Writes the overview lines.
pub fn write(out: &mut dyn Write, state: &ResumeState, at: Option<u64>, style: Style) -> io::Result<()> {
    let recoverable = if state.recoverable {
        " (recoverable: a new process may resume it)"
    } else {
        ""
    };
    writeln!(
        out,
        "{} {}  {}",
        style.bold("run"),
        style.bold(&state.run.short_id()),
        state.run
    )?;
    writeln!(out, "  status      {}{recoverable}", status_text(state.status, style))?;
    let last = state
        .last_seq
        .map_or_else(|| "no event".into(), |seq| format!("seq {seq}"));
    let as_of = if at.is_some() { " (time travel: --at)" } else { "" };
    writeln!(
        out,
        "  as of       {last}{as_of} · epoch {} · head {}",
        state.epoch,
        &state.head.to_hex()[..16]
    )?;
    writeln!(
        out,
        "  progress    iteration {} · segment {} · transcript {}",
        state.iteration,
        state.segment,
        plural(state.transcript.len() as u64, "message")
    )
}
