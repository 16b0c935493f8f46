//! The sections of how a run ended or went wrong: the agent's death, the
//! output, the failure (primary error and cleanup errors apart) and the
//! anomalies the fold recorded. Each appears only when there is something to say.

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::{one_line, Style};
use crate::render::TEXT;

/// Writes the death of the agent, if it died.
pub fn write_died(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    let Some(died) = &state.died else {
        return Ok(());
    };
    let code = died.exit_code.map(|code| format!(" (exit {code})")).unwrap_or_default();
    writeln!(out, "\n{}", style.bad("Died"))?;
    writeln!(out, "  {}{code}", one_line(&died.reason, TEXT))
}

/// Writes the run's output, if it completed with one.
pub fn write_output(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    let Some(output) = &state.output else {
        return Ok(());
    };
    writeln!(out, "\n{}", style.good("Output"))?;
    writeln!(out, "  {}", one_line(output, 200))
}

/// Writes the failure, if the run failed: the primary error, then each cleanup error.
pub fn write_failure(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    let Some(failure) = &state.failure else {
        return Ok(());
    };
    writeln!(out, "\n{}", style.bad("Failure"))?;
    writeln!(
        out,
        "  {}: {}",
        one_line(&failure.error.kind, 30),
        one_line(&failure.error.message, 200)
    )?;
    for cleanup in &failure.cleanup_errors {
        writeln!(
            out,
            "  cleanup {}: {}",
            one_line(&cleanup.kind, 30),
            one_line(&cleanup.message, 200)
        )?;
    }
    Ok(())
}

/// Writes the anomalies, if the fold recorded any.
pub fn write_anomalies(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    if state.anomalies.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", style.warn("Anomalies"))?;
    for anomaly in &state.anomalies {
        writeln!(
            out,
            "  seq {}  {}  {}",
            anomaly.seq,
            anomaly.kind,
            one_line(&anomaly.detail, 120)
        )?;
    }
    Ok(())
}
