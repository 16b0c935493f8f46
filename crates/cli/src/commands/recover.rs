//! `recover`: the runs a supervisor should resume (running or interrupted),
//! each with its resume-state summary.

use std::io::Write;
use std::process::ExitCode;

use runjournal::fold::Died;
use runjournal::{ResumeState, RunKey};
use serde::Serialize;

use crate::context::Context;
use crate::output::plural;
use crate::render;

/// A phase named by index and name.
#[derive(Serialize)]
struct PhaseRef<'a> {
    index: u32,
    name: &'a str,
}

/// One run in `recover --json`: its resume-state summary.
#[derive(Serialize)]
struct RecoverRow<'a> {
    id: String,
    run: &'a RunKey,
    status: &'static str,
    last_seq: Option<u64>,
    epoch: u64,
    iteration: u64,
    segment: u64,
    completed_phases: Vec<PhaseRef<'a>>,
    active_phase: Option<PhaseRef<'a>>,
    compaction_active: bool,
    died: Option<&'a Died>,
}

impl<'a> RecoverRow<'a> {
    fn of(state: &'a ResumeState) -> RecoverRow<'a> {
        RecoverRow {
            id: state.run.short_id(),
            run: &state.run,
            status: state.status.as_str(),
            last_seq: state.last_seq,
            epoch: state.epoch,
            iteration: state.iteration,
            segment: state.segment,
            completed_phases: state
                .phases
                .completed
                .iter()
                .map(|phase| PhaseRef {
                    index: phase.index,
                    name: &phase.name,
                })
                .collect(),
            active_phase: state.phases.active.as_ref().map(|phase| PhaseRef {
                index: phase.index,
                name: &phase.name,
            }),
            compaction_active: state.compaction.active,
            died: state.died.as_ref(),
        }
    }
}

/// `recover`.
pub fn run(cx: &mut Context) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let states = journal.recoverable().map_err(|error| cx.read_error(error))?;
    if cx.json {
        let rows: Vec<RecoverRow> = states.iter().map(RecoverRow::of).collect();
        cx.print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if states.is_empty() {
        writeln!(
            cx.out,
            "nothing to recover: every run in {} is completed or failed",
            cx.db.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let style = cx.style();
    writeln!(
        cx.out,
        "{} to recover (running or interrupted; a supervisor resumes each in a new process):\n",
        plural(states.len() as u64, "run")
    )?;
    for state in &states {
        render::recover::write_entry(cx.out, state, style)?;
    }
    Ok(ExitCode::SUCCESS)
}
