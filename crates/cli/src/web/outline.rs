//! `GET /ui/outline/{run}`: one pass over a run's history giving the page its
//! overview: phases (a Gantt; a phase started again while open ends the
//! earlier try, marked `restarted`), epochs (bands), marks (deaths, resumes,
//! compactions, segment rotations, handoffs, tasks, outcomes) and the final
//! state's anomalies. Read from the journal this process owns, or through
//! the owner's socket in pages.
//!
//! Invariants: positions count the whole history (a fork's prefix first);
//! `prefix_len` converts a run's own seq to its position; memory grows with
//! the number of phases, epochs and marks, never with the number of steps.

use std::ops::ControlFlow;
use std::path::PathBuf;

use hyper::{Response, StatusCode};
use runjournal::wire::{self, ErrorBody, EventsPage};
use runjournal::{Envelope, Event, Journal, ResumeState, RunKey, RunRecord};
use serde_json::{json, Value};

use super::http::{json as json_response, transport, Body, Failure};
use super::{proxy, App};

/// Where a run's history is read from.
pub enum Source {
    /// The journal this process owns.
    Local(Journal),
    /// The owner's socket (the database is held by another process).
    Socket(PathBuf),
}

/// Answers `GET /ui/outline/{goal}/{episode}/{agent}`.
pub async fn route(app: &App, path: &str) -> Result<Response<Body>, Failure> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["ui", "outline", goal, episode, agent] = segments.as_slice() else {
        return Err(transport(wire::UNKNOWN_ROUTE, format!("no route {path}")));
    };
    let key = wire::decode_key_segments(goal, episode, agent)
        .map_err(|error| transport(wire::INVALID_REQUEST, error.to_string()))?;
    let value = match &app.source {
        Source::Local(journal) => {
            let journal = journal.clone();
            tokio::task::spawn_blocking(move || local(&journal, &key))
                .await
                .map_err(|error| transport("internal", format!("the outline's reader failed: {error}")))??
        }
        Source::Socket(socket) => remote(socket, &key).await?,
    };
    Ok(json_response(StatusCode::OK, &value))
}

fn library(error: impl Into<runjournal::Error>) -> Failure {
    Box::new(ErrorBody::from(&error.into()))
}

fn local(journal: &Journal, key: &RunKey) -> Result<Value, Failure> {
    let mut outline = Outline::default();
    journal
        .for_each_in_history(key, |envelope| {
            outline.push(&envelope);
            ControlFlow::Continue(())
        })
        .map_err(library)?;
    let record = journal.run_info(key).map_err(library)?;
    let state = journal.state(key).map_err(library)?;
    Ok(outline.finish(&record, &state))
}

async fn remote(socket: &std::path::Path, key: &RunKey) -> Result<Value, Failure> {
    let run = wire::run_path(key);
    let mut outline = Outline::default();
    let mut from = Some(0);
    while let Some(start) = from {
        let page: EventsPage = proxy::get_json(
            socket,
            &format!("{run}/history?from={start}&limit={}", wire::MAX_QUERY_LIMIT),
        )
        .await?;
        for envelope in &page.envelopes {
            outline.push(envelope);
        }
        from = page.next;
    }
    let record: RunRecord = proxy::get_json(socket, &run).await?;
    let state: ResumeState = proxy::get_json(socket, &format!("{run}/state")).await?;
    Ok(outline.finish(&record, &state))
}

/// The outline being built, one envelope at a time.
#[derive(Default)]
struct Outline {
    phases: Vec<Value>,
    /// Open phases: (index, position in `phases`), innermost last.
    open: Vec<(u32, usize)>,
    epochs: Vec<Value>,
    marks: Vec<Value>,
    last_epoch: Option<(RunKey, u64)>,
    position: u64,
    first_ts: Option<u64>,
    last_ts: u64,
}

impl Outline {
    fn push(&mut self, envelope: &Envelope) {
        let position = self.position;
        self.first_ts.get_or_insert(envelope.ts);
        self.last_ts = envelope.ts;
        let epoch = Some((envelope.run.clone(), envelope.epoch));
        if self.last_epoch != epoch {
            self.epochs
                .push(json!({"epoch": envelope.epoch, "start": position, "start_ts": envelope.ts}));
            self.last_epoch = epoch;
        }
        match &envelope.event {
            Event::PhaseStarted { index, name } => {
                // A restart of an open phase (after a resume) ends the earlier try.
                if let Some(phase) = self.close(*index) {
                    self.phases[phase]["end"] = json!(position.saturating_sub(1));
                    self.phases[phase]["end_ts"] = json!(envelope.ts);
                    self.phases[phase]["restarted"] = json!(true);
                }
                self.open.push((*index, self.phases.len()));
                self.phases.push(json!({
                    "index": index, "name": name, "start": position, "start_ts": envelope.ts,
                    "end": null, "end_ts": null,
                }));
            }
            Event::PhaseCompleted { index, .. } => {
                if let Some(phase) = self.close(*index) {
                    self.phases[phase]["end"] = json!(position);
                    self.phases[phase]["end_ts"] = json!(envelope.ts);
                }
            }
            Event::Step { .. } | Event::Usage { .. } | Event::Custom { .. } | Event::TurnCompleted => {}
            event => self.marks.push(json!({
                "pos": position, "seq": envelope.seq, "ts": envelope.ts, "type": event.type_name(),
            })),
        }
        self.position += 1;
    }

    /// Removes the innermost open phase of `index`; returns its position in `phases`.
    fn close(&mut self, index: u32) -> Option<usize> {
        let at = self.open.iter().rposition(|(open, _)| *open == index)?;
        Some(self.open.remove(at).1)
    }

    fn finish(self, record: &RunRecord, state: &ResumeState) -> Value {
        json!({
            "len": self.position,
            "prefix_len": self.position.saturating_sub(record.head.next_seq),
            "start_ts": self.first_ts,
            "end_ts": self.last_ts,
            "phases": self.phases,
            "epochs": self.epochs,
            "marks": self.marks,
            "anomalies": state.anomalies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runjournal::core::ChainHash;

    fn envelope(seq: u64, epoch: u64, event: Event) -> Envelope {
        Envelope {
            run: RunKey::new("g", 0, "a").unwrap(),
            seq,
            epoch,
            ts: 1000 + seq,
            hash: ChainHash::default(),
            event,
        }
    }

    fn started(index: u32) -> Event {
        Event::PhaseStarted {
            index,
            name: format!("p{index}"),
        }
    }

    #[test]
    fn a_phase_started_again_while_open_ends_the_earlier_try() {
        let mut outline = Outline::default();
        outline.push(&envelope(0, 0, started(0)));
        outline.push(&envelope(
            1,
            0,
            Event::AgentDied {
                reason: "oom".into(),
                exit_code: None,
            },
        ));
        outline.push(&envelope(2, 1, Event::Attached { owner: "h/1".into() }));
        outline.push(&envelope(3, 1, started(0)));
        outline.push(&envelope(
            4,
            1,
            Event::PhaseCompleted {
                index: 0,
                name: "p0".into(),
                output: "ok".into(),
            },
        ));
        assert_eq!(outline.phases.len(), 2);
        assert_eq!(outline.phases[0]["end"], 2);
        assert_eq!(outline.phases[0]["restarted"], true);
        assert_eq!(outline.phases[1]["start"], 3);
        assert_eq!(outline.phases[1]["end"], 4);
        assert!(outline.phases[1].get("restarted").is_none());
        let epochs: Vec<u64> = outline
            .epochs
            .iter()
            .map(|epoch| epoch["start"].as_u64().unwrap())
            .collect();
        assert_eq!(epochs, [0, 2], "an epoch band starts at each new epoch");
        let marks: Vec<&str> = outline
            .marks
            .iter()
            .map(|mark| mark["type"].as_str().unwrap())
            .collect();
        assert_eq!(marks, ["agent_died", "attached"], "steps and phases are not marks");
    }
}
