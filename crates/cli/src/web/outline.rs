//! `GET /ui/outline/{run}`: one pass over a run's history giving the page its
//! overview: phases (a Gantt; a phase started again while open ends the
//! earlier try, marked `restarted`), epochs (bands), marks (deaths, resumes,
//! compactions, segment rotations, handoffs, tasks, outcomes) and the final
//! state's anomalies.
//!
//! Invariants: positions count the whole history (a fork's prefix first);
//! `prefix_len` converts a run's own seq to its position; memory grows with
//! the number of phases, epochs and marks, never with the number of steps.

use std::ops::ControlFlow;

use runjournal::{Event, Journal, RunKey};
use serde_json::{json, Value};

use super::shapes::{library, ApiError};

/// The outline of `key`'s history.
pub fn of(journal: &Journal, key: &RunKey) -> Result<Value, ApiError> {
    let mut phases: Vec<Value> = Vec::new();
    let mut open: Vec<(u32, usize)> = Vec::new();
    let mut epochs: Vec<Value> = Vec::new();
    let mut marks: Vec<Value> = Vec::new();
    let mut last_epoch = None;
    let mut position: u64 = 0;
    let mut first_ts = None;
    let mut last_ts = 0;
    journal
        .for_each_in_history(key, |envelope| {
            first_ts.get_or_insert(envelope.ts);
            last_ts = envelope.ts;
            if last_epoch != Some((envelope.run.clone(), envelope.epoch)) {
                epochs.push(json!({"epoch": envelope.epoch, "start": position, "start_ts": envelope.ts}));
                last_epoch = Some((envelope.run.clone(), envelope.epoch));
            }
            match &envelope.event {
                Event::PhaseStarted { index, name } => {
                    // A restart of an open phase (after a resume) ends the earlier try.
                    if let Some(at) = open.iter().rposition(|(open, _)| open == index) {
                        let (_, phase) = open.remove(at);
                        phases[phase]["end"] = json!(position.saturating_sub(1));
                        phases[phase]["end_ts"] = json!(envelope.ts);
                        phases[phase]["restarted"] = json!(true);
                    }
                    open.push((*index, phases.len()));
                    phases.push(json!({
                        "index": index, "name": name, "start": position, "start_ts": envelope.ts,
                        "end": null, "end_ts": null,
                    }));
                }
                Event::PhaseCompleted { index, .. } => {
                    if let Some(at) = open.iter().rposition(|(open, _)| open == index) {
                        let (_, phase) = open.remove(at);
                        phases[phase]["end"] = json!(position);
                        phases[phase]["end_ts"] = json!(envelope.ts);
                    }
                }
                Event::Step { .. } | Event::Usage { .. } | Event::Custom { .. } | Event::TurnCompleted => {}
                event => marks.push(json!({
                    "pos": position, "seq": envelope.seq, "ts": envelope.ts, "type": event.type_name(),
                })),
            }
            position += 1;
            ControlFlow::Continue(())
        })
        .map_err(library)?;
    let record = journal.run_info(key).map_err(library)?;
    let state = journal.state(key).map_err(library)?;
    Ok(json!({
        "len": position,
        "prefix_len": position - record.head.next_seq,
        "start_ts": first_ts,
        "end_ts": last_ts,
        "phases": phases,
        "epochs": epochs,
        "marks": marks,
        "anomalies": state.anomalies,
    }))
}
