//! A recoverable run's entry in `recover`: where it stands and what a resume
//! will do (skip the completed phases, re-run the active one, find a stranded
//! compaction, know of a death).

use std::io::{self, Write};

use runjournal::ResumeState;

use super::status_text;
use crate::output::{one_line, quoted, Style};

/// Writes a recoverable run's resume-state summary.
pub fn write_entry(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    writeln!(out, "{}  {}", style.bold(&state.run.short_id()), state.run)?;
    let last = state
        .last_seq
        .map_or_else(|| "no event".into(), |seq| format!("last seq {seq}"));
    writeln!(
        out,
        "    {} · {last} · epoch {} · iteration {} · segment {}",
        status_text(state.status, style),
        state.epoch,
        state.iteration,
        state.segment
    )?;
    writeln!(
        out,
        "    phases completed: {} · active: {}",
        completed(state),
        active(state)
    )?;
    writeln!(out, "    {} · {}", compaction(state, style), died(state, style))
}

fn completed(state: &ResumeState) -> String {
    let completed: Vec<String> = state
        .phases
        .completed
        .iter()
        .map(|phase| format!("{} {}", phase.index, quoted(&phase.name, 30)))
        .collect();
    if completed.is_empty() {
        "none".into()
    } else {
        completed.join(", ")
    }
}

fn active(state: &ResumeState) -> String {
    state.phases.active.as_ref().map_or_else(
        || "none".into(),
        |active| format!("{} {} (re-runs from its start)", active.index, quoted(&active.name, 30)),
    )
}

fn compaction(state: &ResumeState, style: Style) -> String {
    if state.compaction.active {
        style.warn("compaction active (stranded unless the agent is still running)")
    } else {
        "no compaction active".into()
    }
}

fn died(state: &ResumeState, style: Style) -> String {
    state.died.as_ref().map_or_else(
        || "not died".into(),
        |died| {
            let code = died.exit_code.map(|code| format!(", exit {code}")).unwrap_or_default();
            style.bad(&format!("died: {}{code}", one_line(&died.reason, 60)))
        },
    )
}
