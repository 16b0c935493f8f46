//! The sections of coordination between agents: handoffs (with their
//! success rate) and tasks (who holds each, who contended).

use std::io::{self, Write};

use runjournal::fold::TaskStatus;
use runjournal::ResumeState;

use crate::output::{one_line, Style};

/// Writes the handoffs, when there are any.
pub fn write_handoffs(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    if state.handoffs.is_empty() {
        return Ok(());
    }
    let rate = state.handoff_success_rate.map_or_else(
        || "no handoff is final yet".into(),
        |rate| format!("{:.0}%", rate * 100.0),
    );
    writeln!(out, "\n{} (success rate {rate})", style.handoff("Handoffs"))?;
    for handoff in &state.handoffs {
        writeln!(
            out,
            "  {}  {} → {}  {}  v{}",
            one_line(&handoff.id, 40),
            one_line(&handoff.from, 40),
            one_line(&handoff.to, 40),
            handoff.status.as_str().replace('_', " "),
            one_line(&handoff.version, 20)
        )?;
    }
    Ok(())
}

/// Writes the tasks, when there are any.
pub fn write_tasks(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    if state.tasks.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", style.bold("Tasks"))?;
    for task in &state.tasks {
        let holder = match (task.status, &task.claimed_by) {
            (TaskStatus::Escalated, _) => "escalated: nobody holds it".to_owned(),
            (TaskStatus::Completed, Some(agent)) => format!("completed by {}", one_line(agent, 40)),
            (_, Some(agent)) => format!("claimed by {}", one_line(agent, 40)),
            (_, None) => "unclaimed".to_owned(),
        };
        let contenders: Vec<String> = task.contenders.iter().map(|agent| one_line(agent, 40)).collect();
        writeln!(
            out,
            "  {}  {holder}  (contenders: {})",
            one_line(&task.task, 40),
            contenders.join(", ")
        )?;
    }
    Ok(())
}
