//! The sections of how far a run got: its phases (what a resume skips and
//! re-runs) and its compaction state.

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::{plural, quoted, Style};
use crate::render::TEXT;

/// Writes the phases: completed ones, the active one, what a resume skips.
pub fn write_phases(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    writeln!(out, "\n{}", style.bold("Phases"))?;
    if state.phases.completed.is_empty() && state.phases.active.is_none() {
        writeln!(out, "  none")?;
    }
    for phase in &state.phases.completed {
        writeln!(
            out,
            "  {} {} {} → {}",
            style.phase("✔"),
            phase.index,
            quoted(&phase.name, 40),
            quoted(&phase.output, TEXT)
        )?;
    }
    if let Some(active) = &state.phases.active {
        writeln!(
            out,
            "  {} {} {} active: a resume re-runs it from its start",
            style.phase("▶"),
            active.index,
            quoted(&active.name, 40)
        )?;
    }
    if state.recoverable && !state.phases.completed.is_empty() {
        let skipped: Vec<String> = state.completed_phase_indices().iter().map(u32::to_string).collect();
        writeln!(
            out,
            "  {}",
            style.dim(&format!("a resume skips phases {}", skipped.join(", ")))
        )?;
    }
    Ok(())
}

/// Writes the compaction state: active or not, the count, the gate.
pub fn write_compaction(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    writeln!(out, "\n{}", style.bold("Compaction"))?;
    let active = if state.compaction.active {
        style.warn("active (a compaction started and has not finished)")
    } else {
        "not active".into()
    };
    let gate = match state.compaction.gate {
        Some(source) => format!("gate {}", source.as_str()),
        None => "no structured signal seen".into(),
    };
    writeln!(
        out,
        "  {active} · {} · {gate}",
        plural(state.compaction.count, "compaction")
    )
}
