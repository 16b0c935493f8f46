//! The resume-state projection (docs/resume-state.md).
//!
//! [`ResumeState`] folds a run's envelopes, in order, into the state a runtime
//! needs to resume it. The fold is pure and deterministic: it reads nothing but
//! the envelopes (their `seq`, `epoch`, `ts`, `hash` and `event`), so the same
//! events always give the same state, live or replayed, whole or from a
//! snapshot plus its tail. Time enters only through the events' own `ts`
//! (rules 7 and 12), never through a clock. A snapshot is the state's bincode
//! encoding (every field, including the bookkeeping that the JSON form leaves
//! out); a snapshot written by another [`FOLD_VERSION`] is rebuilt from the log.
//!
//! Every event is either applied or ignored. An ignored event leaves the state
//! unchanged except for one added [`Anomaly`], `last_seq`/`head` and the time
//! on the run (`active_ms`, `wall_ms`); [`ResumeState::rejection`] predicts
//! exactly that outcome without mutating. Four anomalies are recorded for
//! events that still take effect and are therefore not rejections:
//! `compaction_done_without_start` and `compaction_id_mismatch` (rule 4),
//! `late_handoff_event` for an answer past the handoff's deadline (rule 7: the
//! handoff times out) and `phase_completed_again` (see below). Scraped
//! compaction signals ignored because of the structured gate (rule 3) are
//! neither applied nor anomalies.
//!
//! The parts of the state live beside this module: `clock` (rule 12 time),
//! `usage` (rule 12 sums), `segments` (rules 4 and 11), `resources`
//! (rule 13).
//!
//! Choices where docs/resume-state.md leaves room (documented here so that the fold stays one
//! definition):
//! - `run_started` sets `status` to running and `epoch` to its own epoch (0):
//!   a forked run's state starts from its parent's history, but the child is a
//!   new, running run in its own epoch 0. Its `meta` replaces the state's (a
//!   fork's own `run_started` carries its parent's meta and its fork point), so
//!   the run's `conflict_strategy` (default `first_claim`) is the latest one;
//!   its `labels` fill absent provenance keys (rule 11).
//! - `attached` sets `epoch` and turns `interrupted` into `running`; it never
//!   reopens a completed or failed run, nor a superseded one (`superseded` is
//!   set by a rewind, outside the fold).
//! - A `compaction_done` whose id differs from the active start's (both set)
//!   counts, with anomaly `compaction_id_mismatch`; a done without an id, or
//!   after a start without one, is never a mismatch.
//! - An ack or reject by the receiver whose `ts` is past the send's `ts` +
//!   `timeout_ms` times the pending handoff out, with anomaly
//!   `late_handoff_event`; one by another agent is ignored as `wrong_agent`
//!   whatever its `ts` (it says nothing about the receiver's answer).
//! - `segment_rotated` leaves a compaction in progress alone (rule 5 lists
//!   what strands one).
//! - A `phase_completed` for an index already completed replaces that entry's
//!   name and output (the phase evidently ran again, and its latest output is
//!   what the rest of the run builds on), clears `active` if it has that index
//!   and records anomaly `phase_completed_again`.
//! - A `handoff_sent` for an id that is already pending is ignored with anomaly
//!   `duplicate_handoff`; for an id that is final, with `late_handoff_event`.
//!   An ack, reject or time-out for an id never sent is ignored with anomaly
//!   `unknown_handoff`. For a final handoff, `late_handoff_event` wins over
//!   `wrong_agent`.
//! - Tasks: a repeated claim by the current holder changes nothing (an
//!   idempotent retry). `contenders` lists each claiming agent once, at its
//!   first claim; a later claim by an agent already listed is still a conflict
//!   against the holder. A claim on an escalated task adds its agent to
//!   `contenders` and the task stays escalated; a claim on a completed task is
//!   ignored with anomaly `late_task_event`. `task_completed` on a task never
//!   claimed is ignored with anomaly `unknown_task`; on a completed or escalated
//!   task `late_task_event` wins over `wrong_agent`. A completed task keeps its
//!   holder in `claimed_by`, whatever its result.
//! - A `compaction_done` that is a duplicate is ignored entirely, including its
//!   effect on the gate.

mod clock;
mod resources;
mod segments;
mod usage;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::resources::ResourceState;
pub use self::segments::{Segment, SegmentEnd, MAX_SEGMENTS};
pub use self::usage::UsageTotals;
use crate::envelope::Envelope;
use crate::event::{CompactionSource, ConflictStrategy, ErrorInfo, Event, Message, Role, RunMeta};
use crate::hash::ChainHash;
use crate::key::RunKey;
use crate::rules::{self, RunStatus};
use clock::Clock;

/// The version of the fold's semantics. Bump it when the fold changes; stored
/// snapshots of another version are rebuilt from the log.
///
/// Version 2 (contract v2): `meta`, time, usage, segments, provenance and
/// resources in the state; rule 4 id mismatches, rule 5 `attached`, rule 7
/// deadlines, rules 11–13.
pub const FOLD_VERSION: u32 = 2;

/// The resume state of a run: the fold of its events (docs/resume-state.md).
///
/// Its JSON form ([`ResumeState::to_json`], or serde) has exactly the keys of
/// docs/resume-state.md, in that order; the fold's own bookkeeping is left out of it but is
/// part of the bincode snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct ResumeState {
    /// The run's key.
    pub run: RunKey,
    /// Where the run stands (rule 1).
    pub status: RunStatus,
    /// `status` is running or interrupted.
    pub recoverable: bool,
    /// The meta of the latest `run_started` (a fork's own, carrying its parent's).
    pub meta: RunMeta,
    /// The time the run was worked on: each epoch's span, summed (rule 12).
    pub active_ms: u64,
    /// The last event's `ts` minus the first's, a fork's prefix included (rule 12).
    pub wall_ms: u64,
    /// The seq of the last folded event; `None` before any.
    pub last_seq: Option<u64>,
    /// The chain hash of the last folded event ([`ChainHash::GENESIS`] before any).
    pub head: ChainHash,
    /// The epoch of the latest `attached` (0 before any).
    pub epoch: u64,
    /// The number of `step` events (rule 2).
    pub iteration: u64,
    /// The context segment: +1 per effective compaction (rule 4) and per
    /// `segment_rotated` (rule 11).
    pub segment: u64,
    /// The messages of the current segment only.
    pub transcript: Vec<Message>,
    /// Compaction tracking (rules 3–5).
    pub compaction: CompactionState,
    /// Completed and active phases (rule 6).
    pub phases: Phases,
    /// Every handoff sent, in the order sent (rule 7).
    pub handoffs: Vec<HandoffState>,
    /// acked / (acked + rejected + `timed_out`); `None` when no handoff is final.
    pub handoff_success_rate: Option<f64>,
    /// Every task claimed, in the order first claimed (rule 8).
    pub tasks: Vec<TaskState>,
    /// The latest death of the agent's process (rule 9).
    pub died: Option<Died>,
    /// The output of `run_completed`.
    pub output: Option<String>,
    /// The failure of `run_failed` (rule 10).
    pub failure: Option<Failure>,
    /// The sums of every `usage` event (rule 12).
    pub usage: UsageTotals,
    /// The closed context segments, the newest [`MAX_SEGMENTS`], oldest first (rules 4, 11).
    pub segments: Vec<Segment>,
    /// Where the run's sessions came from: first value per key wins (rule 11).
    pub provenance: BTreeMap<String, String>,
    /// Every resource acquired or torn down, in acquisition order (rule 13).
    pub resources: Vec<ResourceState>,
    /// Everything the fold found odd, in order.
    pub anomalies: Vec<Anomaly>,
    /// The id of the previous effective `compaction_done`.
    #[serde(skip)]
    last_done_id: Option<String>,
    /// The id of the active compaction's start, when it had one.
    #[serde(skip)]
    compaction_start_id: Option<String>,
    /// The seq of the event that opened the current segment.
    #[serde(skip)]
    segment_opened_seq: u64,
    /// Bookkeeping for `active_ms` and `wall_ms`.
    #[serde(skip)]
    clock: Clock,
}

/// Compaction tracking (rule 3 (docs/resume-state.md)–5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CompactionState {
    /// A compaction has started and not yet finished.
    pub active: bool,
    /// Effective compactions so far; never decreases.
    pub count: u64,
    /// `Some(Structured)` once a structured signal was seen; `None` until then.
    pub gate: Option<CompactionSource>,
}

/// Completed and active phases (rule 6 (docs/resume-state.md)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Phases {
    /// Completed phases, ordered by index, one per index.
    pub completed: Vec<CompletedPhase>,
    /// The phase started and not yet completed, if any.
    pub active: Option<ActivePhase>,
}

/// A completed phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CompletedPhase {
    /// Its position in the plan.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// What it produced.
    pub output: String,
}

/// A phase that started and has not completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct ActivePhase {
    /// Its position in the plan.
    pub index: u32,
    /// Its name.
    pub name: String,
}

/// A handoff and where it stands (rule 7 (docs/resume-state.md)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct HandoffState {
    /// The handoff's id.
    pub id: String,
    /// The sending agent.
    pub from: String,
    /// The receiving agent.
    pub to: String,
    /// Where it stands.
    pub status: HandoffStatus,
    /// The payload version, `M.m.p`.
    pub version: String,
    /// The send's `ts` + `timeout_ms`: an answer after it is too late.
    #[serde(skip)]
    deadline_ts: u64,
}

/// Where a handoff stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum HandoffStatus {
    /// Sent, not yet answered.
    Pending,
    /// Acked by its receiver. Final.
    Acknowledged,
    /// Rejected by its receiver. Final.
    Rejected,
    /// Not answered in time. Final.
    TimedOut,
}

impl HandoffStatus {
    /// Acknowledged, rejected or timed out: later events for it are ignored.
    pub fn is_final(self) -> bool {
        !matches!(self, HandoffStatus::Pending)
    }

    /// The status name as in docs/resume-state.md.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Pending => "pending",
            HandoffStatus::Acknowledged => "acknowledged",
            HandoffStatus::Rejected => "rejected",
            HandoffStatus::TimedOut => "timed_out",
        }
    }
}

/// A task and who holds it (rule 8 (docs/resume-state.md)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct TaskState {
    /// The task.
    pub task: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// The agent holding it; `None` when escalated.
    pub claimed_by: Option<String>,
    /// Every agent that claimed it, once each, in the order of their first claim.
    pub contenders: Vec<String>,
    /// The priority of the holder's winning claim.
    #[serde(skip)]
    holder_priority: u8,
    /// The confidence of the holder's winning claim.
    #[serde(skip)]
    holder_confidence: f64,
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Held by `claimed_by`.
    Claimed,
    /// Completed by its holder. Final.
    Completed,
    /// A conflict under the `escalate` strategy: nobody holds it. Final for completion.
    Escalated,
}

impl TaskStatus {
    /// The status name as in docs/resume-state.md.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Claimed => "claimed",
            TaskStatus::Completed => "completed",
            TaskStatus::Escalated => "escalated",
        }
    }
}

/// The agent's process died (rule 9 (docs/resume-state.md)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Died {
    /// Why.
    pub reason: String,
    /// Its exit code, when known.
    pub exit_code: Option<i32>,
}

/// The run's failure (rule 10 (docs/resume-state.md)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Failure {
    /// The primary failure; never replaced by a cleanup failure.
    pub error: ErrorInfo,
    /// Failures of cleanup after the primary one, in order.
    pub cleanup_errors: Vec<ErrorInfo>,
}

/// Something the fold found odd: an ignored event, or one applied despite a
/// missing predecessor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Anomaly {
    /// The seq of the event.
    pub seq: u64,
    /// A machine-readable kind, such as `wrong_agent` (see the `Anomaly::*` constants).
    pub kind: String,
    /// A human-readable explanation.
    pub detail: String,
}

impl Anomaly {
    /// A `compaction_done` with the same id as the previous effective one; ignored.
    pub const DUPLICATE_COMPACTION_DONE: &'static str = "duplicate_compaction_done";
    /// A `compaction_done` with no compaction active; it still counts.
    pub const COMPACTION_DONE_WITHOUT_START: &'static str = "compaction_done_without_start";
    /// A `compaction_done` whose id differs from the active start's; it still counts.
    pub const COMPACTION_ID_MISMATCH: &'static str = "compaction_id_mismatch";
    /// An event for a handoff that is already final (ignored), or an answer
    /// past the handoff's deadline (the handoff times out).
    pub const LATE_HANDOFF_EVENT: &'static str = "late_handoff_event";
    /// An ack or reject by an agent other than the receiver, or a task
    /// completion by an agent other than the holder; ignored.
    pub const WRONG_AGENT: &'static str = "wrong_agent";
    /// An ack, reject or time-out for a handoff never sent; ignored.
    pub const UNKNOWN_HANDOFF: &'static str = "unknown_handoff";
    /// A `handoff_sent` for an id that is already pending; ignored.
    pub const DUPLICATE_HANDOFF: &'static str = "duplicate_handoff";
    /// A claim or completion of a task that is completed, or a completion of
    /// an escalated task; ignored.
    pub const LATE_TASK_EVENT: &'static str = "late_task_event";
    /// A `task_completed` for a task never claimed; ignored.
    pub const UNKNOWN_TASK: &'static str = "unknown_task";
    /// A `phase_completed` for an index already completed; it replaces the earlier entry.
    pub const PHASE_COMPLETED_AGAIN: &'static str = "phase_completed_again";
}

impl ResumeState {
    /// The state of `run` before any event.
    pub fn new(run: RunKey) -> Self {
        ResumeState {
            run,
            status: RunStatus::Running,
            recoverable: true,
            meta: RunMeta::default(),
            active_ms: 0,
            wall_ms: 0,
            last_seq: None,
            head: ChainHash::GENESIS,
            epoch: 0,
            iteration: 0,
            segment: 0,
            transcript: Vec::new(),
            compaction: CompactionState::default(),
            phases: Phases::default(),
            handoffs: Vec::new(),
            handoff_success_rate: None,
            tasks: Vec::new(),
            died: None,
            output: None,
            failure: None,
            usage: UsageTotals::default(),
            segments: Vec::new(),
            provenance: BTreeMap::new(),
            resources: Vec::new(),
            anomalies: Vec::new(),
            last_done_id: None,
            compaction_start_id: None,
            segment_opened_seq: 0,
            clock: Clock::default(),
        }
    }

    /// The fold of `envelopes`, in order, from the empty state of `run`.
    pub fn fold<'a>(run: RunKey, envelopes: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut state = ResumeState::new(run);
        for envelope in envelopes {
            state.apply(envelope);
        }
        state
    }

    /// Folds one more event. `last_seq`, `head` and the time on the run
    /// always move to the envelope; the event is either applied or, when
    /// [`Self::rejection`] says so, ignored with that anomaly (at the
    /// envelope's seq).
    pub fn apply(&mut self, envelope: &Envelope) {
        match self.check(&envelope.event) {
            Some((kind, detail)) => self.anomalies.push(Anomaly {
                seq: envelope.seq,
                kind: kind.to_owned(),
                detail,
            }),
            None => self.effect(envelope),
        }
        self.last_seq = Some(envelope.seq);
        self.head = envelope.hash;
        let opens_epoch = matches!(envelope.event, Event::RunStarted { .. });
        self.clock.tick(envelope.ts, envelope.epoch, opens_epoch);
        self.active_ms = self.clock.active_ms();
        self.wall_ms = self.clock.wall_ms();
    }

    /// Folds one more event exactly as [`Self::apply`] does, taking the
    /// envelope by value: a step's messages move into the transcript instead
    /// of being copied, so a replay's fold allocates nothing per message.
    pub fn apply_owned(&mut self, mut envelope: Envelope) {
        self.apply_taking(&mut envelope);
    }

    /// Folds one more event exactly as [`Self::apply`] does, moving a
    /// step's messages out of `envelope` into the transcript (the envelope
    /// keeps the step with no messages): for a caller that has no more use
    /// for them and keeps the envelope to fold the next event through.
    pub fn apply_taking(&mut self, envelope: &mut Envelope) {
        let mut messages = match &mut envelope.event {
            Event::Step { messages } => std::mem::take(messages),
            _ => Vec::new(),
        };
        // Neither the check nor the effect of a step on anything but the
        // transcript reads its messages, so the step is folded without them
        // and, when it takes effect, they are appended where `apply` copies them.
        let takes_effect = self.check(&envelope.event).is_none();
        self.apply(envelope);
        if takes_effect {
            self.transcript.append(&mut messages);
        }
    }

    /// Predicts, without mutating, whether applying `event` would be ignored
    /// with an anomaly, and returns that anomaly. Its `seq` is the seq after
    /// `last_seq` (0 before any event); a caller that knows the real seq may
    /// overwrite it.
    ///
    /// Events that take effect are never reported, even when they add an
    /// anomaly (`compaction_done_without_start`, `compaction_id_mismatch`,
    /// `phase_completed_again`, `late_handoff_event` for an answer past its
    /// deadline, which `event` alone cannot tell), and neither are scraped
    /// compaction signals ignored because of the structured gate (they are not
    /// anomalies).
    pub fn rejection(&self, event: &Event) -> Option<Anomaly> {
        self.check(event).map(|(kind, detail)| Anomaly {
            seq: self.last_seq.map_or(0, |seq| seq.saturating_add(1)),
            kind: kind.to_owned(),
            detail,
        })
    }

    /// The state in the JSON form of docs/resume-state.md.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data with string keys always serializes; `Null` is unreachable.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The indices of the completed phases, ascending: the phases a resume skips.
    pub fn completed_phase_indices(&self) -> Vec<u32> {
        self.phases.completed.iter().map(|phase| phase.index).collect()
    }

    /// The run's task-conflict strategy, from its `run_started` (default `first_claim`).
    pub fn conflict_strategy(&self) -> ConflictStrategy {
        self.meta.conflict_strategy.unwrap_or_default()
    }

    /// Clears a compaction stranded by its writer going away (rule 5).
    fn strand_compaction(&mut self) {
        self.compaction.active = false;
        self.compaction_start_id = None;
    }

    /// A scraped signal after a structured one was seen: no effect, no anomaly (rule 3).
    fn gated_out(&self, source: CompactionSource) -> bool {
        source == CompactionSource::Scraped && self.compaction.gate == Some(CompactionSource::Structured)
    }

    fn handoff(&self, id: &str) -> Option<&HandoffState> {
        self.handoffs.iter().find(|handoff| handoff.id == id)
    }

    fn task(&self, task: &str) -> Option<&TaskState> {
        self.tasks.iter().find(|state| state.task == task)
    }

    /// The anomaly kind and detail of an event the fold ignores, or `None`
    /// when it takes effect (or is silently gated out).
    fn check(&self, event: &Event) -> Option<(&'static str, String)> {
        match event {
            Event::CompactionDone { id, source, .. } => {
                if self.gated_out(*source) {
                    return None;
                }
                match (id, &self.last_done_id) {
                    (Some(id), Some(previous)) if id == previous => Some((
                        Anomaly::DUPLICATE_COMPACTION_DONE,
                        format!("compaction_done {id:?} repeats the previous effective compaction_done; ignored"),
                    )),
                    _ => None,
                }
            }
            Event::HandoffSent { id, .. } => {
                let handoff = self.handoff(id)?;
                if handoff.status.is_final() {
                    Some(late_handoff(handoff, "handoff_sent"))
                } else {
                    Some((
                        Anomaly::DUPLICATE_HANDOFF,
                        format!("handoff_sent for handoff {id:?}, which is already pending; ignored"),
                    ))
                }
            }
            Event::HandoffAcked { id, by } => self.check_answer(id, by, "handoff_acked"),
            Event::HandoffRejected { id, by, .. } => self.check_answer(id, by, "handoff_rejected"),
            Event::HandoffTimedOut { id } => match self.handoff(id) {
                None => Some(unknown_handoff(id, "handoff_timed_out")),
                Some(handoff) if handoff.status.is_final() => Some(late_handoff(handoff, "handoff_timed_out")),
                Some(_) => None,
            },
            Event::TaskClaimed { task, agent, .. } => {
                let state = self.task(task)?;
                (state.status == TaskStatus::Completed).then(|| {
                    (
                        Anomaly::LATE_TASK_EVENT,
                        format!(
                            "task_claimed for task {task:?} by {agent:?}, but the task is already completed; ignored"
                        ),
                    )
                })
            }
            Event::TaskCompleted { task, agent, .. } => match self.task(task) {
                None => Some((
                    Anomaly::UNKNOWN_TASK,
                    format!("task_completed for task {task:?} by {agent:?}, which was never claimed; ignored"),
                )),
                Some(state) if state.status != TaskStatus::Claimed => Some((
                    Anomaly::LATE_TASK_EVENT,
                    format!(
                        "task_completed for task {task:?} by {agent:?}, but the task is already {}; ignored",
                        state.status.as_str()
                    ),
                )),
                Some(state) if state.claimed_by.as_deref() != Some(agent.as_str()) => Some((
                    Anomaly::WRONG_AGENT,
                    format!(
                        "task_completed for task {task:?} by {agent:?}, but it is held by {:?}; ignored",
                        state.claimed_by.as_deref().unwrap_or_default()
                    ),
                )),
                Some(_) => None,
            },
            _ => None,
        }
    }

    /// Checks an ack or reject of handoff `id` by `by`.
    fn check_answer(&self, id: &str, by: &str, event_type: &str) -> Option<(&'static str, String)> {
        match self.handoff(id) {
            None => Some(unknown_handoff(id, event_type)),
            Some(handoff) if handoff.status.is_final() => Some(late_handoff(handoff, event_type)),
            Some(handoff) if handoff.to != by => Some((
                Anomaly::WRONG_AGENT,
                format!(
                    "{event_type} for handoff {id:?} by {by:?}, but it was sent to {:?}; ignored",
                    handoff.to
                ),
            )),
            Some(_) => None,
        }
    }

    /// Applies an event that [`Self::check`] accepted.
    #[expect(
        clippy::too_many_lines,
        reason = "one match arm per event type; splitting it would hide the fold's rules"
    )]
    fn effect(&mut self, envelope: &Envelope) {
        let seq = envelope.seq;
        match &envelope.event {
            Event::RunStarted { meta } => {
                self.meta = meta.clone();
                if let Some(labels) = &meta.labels {
                    self.fill_provenance(labels);
                }
                self.epoch = envelope.epoch;
            }
            Event::Attached { .. } => {
                self.epoch = envelope.epoch;
                self.strand_compaction();
            }
            Event::Step { messages } => {
                self.iteration = self.iteration.saturating_add(1);
                self.transcript.extend(messages.iter().cloned());
            }
            Event::TurnCompleted => self.strand_compaction(),
            Event::PhaseStarted { index, name } => {
                self.phases.active = Some(ActivePhase {
                    index: *index,
                    name: name.clone(),
                });
            }
            Event::PhaseCompleted { index, name, output } => {
                let entry = CompletedPhase {
                    index: *index,
                    name: name.clone(),
                    output: output.clone(),
                };
                match self.phases.completed.binary_search_by_key(index, |phase| phase.index) {
                    Ok(position) => {
                        self.phases.completed[position] = entry;
                        self.anomalies.push(Anomaly {
                            seq,
                            kind: Anomaly::PHASE_COMPLETED_AGAIN.to_owned(),
                            detail: format!(
                                "phase_completed for index {index} ({name:?}), which was already completed; \
                                 its name and output replace the earlier ones"
                            ),
                        });
                    }
                    Err(position) => self.phases.completed.insert(position, entry),
                }
                if self.phases.active.as_ref().is_some_and(|active| active.index == *index) {
                    self.phases.active = None;
                }
            }
            Event::CompactionStarted { id, source, .. } => {
                if self.gated_out(*source) {
                    return;
                }
                if *source == CompactionSource::Structured {
                    self.compaction.gate = Some(CompactionSource::Structured);
                }
                self.compaction.active = true;
                self.compaction_start_id.clone_from(id);
            }
            Event::CompactionDone {
                id, source, summary, ..
            } => {
                if self.gated_out(*source) {
                    return;
                }
                if *source == CompactionSource::Structured {
                    self.compaction.gate = Some(CompactionSource::Structured);
                }
                self.note_compaction_done_anomaly(seq, id.as_deref());
                self.strand_compaction();
                self.compaction.count = self.compaction.count.saturating_add(1);
                self.close_segment(seq, SegmentEnd::Compaction);
                self.transcript = summary
                    .iter()
                    .map(|summary| Message::new(Role::System, summary.clone()))
                    .collect();
                self.last_done_id.clone_from(id);
            }
            Event::HandoffSent {
                id,
                from,
                to,
                version,
                timeout_ms,
                ..
            } => {
                self.handoffs.push(HandoffState {
                    id: id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    status: HandoffStatus::Pending,
                    version: version.clone(),
                    deadline_ts: envelope.ts.saturating_add(*timeout_ms),
                });
            }
            Event::HandoffAcked { id, .. } => self.answer_handoff(envelope, id, HandoffStatus::Acknowledged),
            Event::HandoffRejected { id, .. } => self.answer_handoff(envelope, id, HandoffStatus::Rejected),
            Event::HandoffTimedOut { id } => self.settle_handoff(id, HandoffStatus::TimedOut),
            Event::TaskClaimed {
                task,
                agent,
                priority,
                confidence,
            } => self.claim(task, agent, *priority, *confidence),
            Event::TaskCompleted { task, .. } => {
                if let Some(state) = self.tasks.iter_mut().find(|state| state.task == *task) {
                    state.status = TaskStatus::Completed;
                }
            }
            Event::AgentDied { reason, exit_code } => {
                self.died = Some(Died {
                    reason: reason.clone(),
                    exit_code: *exit_code,
                });
                self.strand_compaction();
            }
            Event::Teardown { resource, error } => self.tear_down_resource(resource, error.as_ref()),
            Event::Custom { .. } => {}
            Event::RunCompleted { output } => {
                self.output.clone_from(output);
                self.strand_compaction();
            }
            Event::RunFailed { error, cleanup_errors } => {
                self.failure = Some(Failure {
                    error: error.clone(),
                    cleanup_errors: cleanup_errors.clone(),
                });
                self.strand_compaction();
            }
            Event::RunInterrupted { .. } => {
                self.strand_compaction();
            }
            Event::Usage {
                input_tokens,
                output_tokens,
                cost_usd,
                counters,
            } => self
                .usage
                .add(*input_tokens, *output_tokens, *cost_usd, counters.as_ref()),
            Event::SegmentRotated { reason, provenance, .. } => {
                self.close_segment(seq, SegmentEnd::from(*reason));
                self.transcript.clear();
                if let Some(provenance) = provenance {
                    self.fill_provenance(provenance);
                }
            }
            Event::ResourceAcquired { resource } => self.acquire_resource(resource, seq),
        }
        self.status = rules::status_after(self.status, &envelope.event);
        self.recoverable = self.status.is_recoverable();
    }

    /// Records the anomaly, if any, of an effective `compaction_done` with
    /// `id` at `seq`: no compaction active, or another id than its start's (rule 4).
    fn note_compaction_done_anomaly(&mut self, seq: u64, id: Option<&str>) {
        let (kind, detail) = match (id, self.compaction_start_id.as_deref()) {
            _ if !self.compaction.active => (
                Anomaly::COMPACTION_DONE_WITHOUT_START,
                match id {
                    Some(id) => format!("compaction_done {id:?} with no compaction active; it still counts"),
                    None => "compaction_done with no compaction active; it still counts".to_owned(),
                },
            ),
            (Some(done), Some(started)) if done != started => (
                Anomaly::COMPACTION_ID_MISMATCH,
                format!("compaction_done {done:?} while compaction {started:?} is active; it still counts"),
            ),
            _ => return,
        };
        self.anomalies.push(Anomaly {
            seq,
            kind: kind.to_owned(),
            detail,
        });
    }

    /// An ack or reject by the receiver of pending handoff `id` settles it
    /// as `status`, unless it comes past the deadline: then the handoff timed
    /// out (rule 7).
    fn answer_handoff(&mut self, envelope: &Envelope, id: &str, status: HandoffStatus) {
        let deadline = self.handoff(id).map_or(u64::MAX, |handoff| handoff.deadline_ts);
        if envelope.ts <= deadline {
            self.settle_handoff(id, status);
            return;
        }
        self.settle_handoff(id, HandoffStatus::TimedOut);
        self.anomalies.push(Anomaly {
            seq: envelope.seq,
            kind: Anomaly::LATE_HANDOFF_EVENT.to_owned(),
            detail: format!(
                "{} for handoff {id:?} at ts {}, past its deadline {deadline} (sent + timeout_ms); \
                 the handoff timed out",
                envelope.event.type_name(),
                envelope.ts
            ),
        });
    }

    /// Moves handoff `id` to a final status and recomputes the success rate.
    #[expect(
        clippy::cast_precision_loss,
        reason = "a success rate from handoff counts far below 2^52"
    )]
    fn settle_handoff(&mut self, id: &str, status: HandoffStatus) {
        if let Some(handoff) = self.handoffs.iter_mut().find(|handoff| handoff.id == id) {
            handoff.status = status;
        }
        let count = |wanted: HandoffStatus| self.handoffs.iter().filter(|handoff| handoff.status == wanted).count();
        let acked = count(HandoffStatus::Acknowledged);
        let finals = acked + count(HandoffStatus::Rejected) + count(HandoffStatus::TimedOut);
        self.handoff_success_rate = (finals > 0).then(|| acked as f64 / finals as f64);
    }

    /// A claim of `task` by `agent` on a task that is not completed (rule 8).
    fn claim(&mut self, task: &str, agent: &str, priority: u8, confidence: f64) {
        let strategy = self.conflict_strategy();
        let Some(state) = self.tasks.iter_mut().find(|state| state.task == task) else {
            self.tasks.push(TaskState {
                task: task.to_owned(),
                status: TaskStatus::Claimed,
                claimed_by: Some(agent.to_owned()),
                contenders: vec![agent.to_owned()],
                holder_priority: priority,
                holder_confidence: confidence,
            });
            return;
        };
        if !state.contenders.iter().any(|contender| contender == agent) {
            state.contenders.push(agent.to_owned());
        }
        if state.status != TaskStatus::Claimed || state.claimed_by.as_deref() == Some(agent) {
            // Escalated stays escalated; a holder's repeated claim is a retry.
            return;
        }
        // A conflict: the new claim is the later one, so every tie keeps the holder.
        let new_claim_wins = match strategy {
            ConflictStrategy::FirstClaim => state.claimed_by.is_none(),
            ConflictStrategy::HighestConfidence => state.claimed_by.is_none() || confidence > state.holder_confidence,
            ConflictStrategy::HighestPriority => state.claimed_by.is_none() || priority < state.holder_priority,
            ConflictStrategy::Escalate => {
                state.status = TaskStatus::Escalated;
                state.claimed_by = None;
                return;
            }
        };
        if new_claim_wins {
            state.claimed_by = Some(agent.to_owned());
            state.holder_priority = priority;
            state.holder_confidence = confidence;
        }
    }
}

fn late_handoff(handoff: &HandoffState, event_type: &str) -> (&'static str, String) {
    (
        Anomaly::LATE_HANDOFF_EVENT,
        format!(
            "{event_type} for handoff {:?}, which is already {}; ignored",
            handoff.id,
            handoff.status.as_str()
        ),
    )
}

fn unknown_handoff(id: &str, event_type: &str) -> (&'static str, String) {
    (
        Anomaly::UNKNOWN_HANDOFF,
        format!("{event_type} for handoff {id:?}, which was never sent; ignored"),
    )
}
