//! The resume state of `state`, in sections: an overview, then phases,
//! compaction, death, transcript, handoffs, tasks, the outcome and the
//! anomalies. Each section is one function; sections that would say nothing
//! (no handoffs, no death, …) are left out, the others always appear.

mod coordination;
mod outcome;
mod overview;
mod progress;
mod transcript;

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::Style;
pub use transcript::TranscriptShown;

/// Writes the resume state, `at` naming the seq of a time travel.
pub fn write(
    out: &mut dyn Write,
    state: &ResumeState,
    at: Option<u64>,
    transcript: TranscriptShown,
    style: Style,
) -> io::Result<()> {
    overview::write(out, state, at, style)?;
    progress::write_phases(out, state, style)?;
    progress::write_compaction(out, state, style)?;
    outcome::write_died(out, state, style)?;
    transcript::write(out, state, transcript, style)?;
    coordination::write_handoffs(out, state, style)?;
    coordination::write_tasks(out, state, style)?;
    outcome::write_output(out, state, style)?;
    outcome::write_failure(out, state, style)?;
    outcome::write_anomalies(out, state, style)
}
