//! The resume-state projection (SPEC §3).
//!
//! [`ResumeState`] folds a run's envelopes, in order, into the state a runtime
//! needs to resume it. The fold is pure and deterministic: it reads nothing but
//! the envelopes (their `seq`, `epoch`, `hash` and `event`), so the same events
//! always give the same state, live or replayed, whole or from a snapshot plus
//! its tail. A snapshot is the state's bincode encoding (every field, including
//! the bookkeeping that the JSON form leaves out); a snapshot written by another
//! [`FOLD_VERSION`] is rebuilt from the log.
//!
//! Every event is either applied or ignored. An ignored event leaves the state
//! unchanged except for one added [`Anomaly`] and `last_seq`/`head`;
//! [`ResumeState::rejection`] predicts exactly that outcome without mutating.
//! Two anomalies are recorded for events that still take effect and are
//! therefore not rejections: `compaction_done_without_start` (rule 4) and
//! `phase_completed_again` (see below). Scraped compaction signals ignored
//! because of the structured gate (rule 3) are neither applied nor anomalies.
//!
//! Choices where SPEC §3 leaves room (documented here so that the fold stays one
//! definition):
//! - `run_started` sets `status` to running and `epoch` to its own epoch (0):
//!   a forked run's state starts from its parent's history, but the child is a
//!   new, running run in its own epoch 0. It also records the run's
//!   `conflict_strategy` (default `first_claim`).
//! - `attached` sets `epoch` and turns `interrupted` into `running`; it never
//!   reopens a completed or failed run.
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

use serde::Serialize;

use crate::envelope::Envelope;
use crate::event::{CompactionSource, ConflictStrategy, ErrorInfo, Event, Message, Role};
use crate::hash::ChainHash;
use crate::key::RunKey;
use crate::rules::{self, RunStatus};

/// The version of the fold's semantics. Bump it when the fold changes; stored
/// snapshots of another version are rebuilt from the log.
pub const FOLD_VERSION: u32 = 1;

/// The resume state of a run: the fold of its events (SPEC §3).
///
/// Its JSON form ([`ResumeState::to_json`], or serde) has exactly the keys of
/// SPEC §3, in that order; the fold's own bookkeeping is left out of it but is
/// part of the bincode snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ResumeState {
    /// The run's key.
    pub run: RunKey,
    /// Where the run stands (rule 1).
    pub status: RunStatus,
    /// `status` is running or interrupted.
    pub recoverable: bool,
    /// The seq of the last folded event; `None` before any.
    pub last_seq: Option<u64>,
    /// The chain hash of the last folded event ([`ChainHash::GENESIS`] before any).
    pub head: ChainHash,
    /// The epoch of the latest `attached` (0 before any).
    pub epoch: u64,
    /// The number of `step` events (rule 2).
    pub iteration: u64,
    /// The context segment: +1 per effective compaction (rule 4).
    pub segment: u64,
    /// The messages of the current segment only.
    pub transcript: Vec<Message>,
    /// Compaction tracking (rules 3–5).
    pub compaction: CompactionState,
    /// Completed and active phases (rule 6).
    pub phases: Phases,
    /// Every handoff sent, in the order sent (rule 7).
    pub handoffs: Vec<HandoffState>,
    /// acked / (acked + rejected + timed_out); `None` when no handoff is final.
    pub handoff_success_rate: Option<f64>,
    /// Every task claimed, in the order first claimed (rule 8).
    pub tasks: Vec<TaskState>,
    /// The latest death of the agent's process (rule 9).
    pub died: Option<Died>,
    /// The output of `run_completed`.
    pub output: Option<String>,
    /// The failure of `run_failed` (rule 10).
    pub failure: Option<Failure>,
    /// Everything the fold found odd, in order.
    pub anomalies: Vec<Anomaly>,
    /// The run's task-conflict strategy, from `run_started`.
    #[serde(skip)]
    conflict_strategy: ConflictStrategy,
    /// The id of the previous effective `compaction_done`.
    #[serde(skip)]
    last_done_id: Option<String>,
}

/// Compaction tracking (SPEC §3 rules 3–5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct CompactionState {
    /// A compaction has started and not yet finished.
    pub active: bool,
    /// Effective compactions so far; never decreases.
    pub count: u64,
    /// `Some(Structured)` once a structured signal was seen; `None` until then.
    pub gate: Option<CompactionSource>,
}

/// Completed and active phases (SPEC §3 rule 6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct Phases {
    /// Completed phases, ordered by index, one per index.
    pub completed: Vec<CompletedPhase>,
    /// The phase started and not yet completed, if any.
    pub active: Option<ActivePhase>,
}

/// A completed phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct CompletedPhase {
    /// Its position in the plan.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// What it produced.
    pub output: String,
}

/// A phase that started and has not completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ActivePhase {
    /// Its position in the plan.
    pub index: u32,
    /// Its name.
    pub name: String,
}

/// A handoff and where it stands (SPEC §3 rule 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
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
}

/// Where a handoff stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, bincode::Encode, bincode::Decode)]
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

    /// The status name as in SPEC §3.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Pending => "pending",
            HandoffStatus::Acknowledged => "acknowledged",
            HandoffStatus::Rejected => "rejected",
            HandoffStatus::TimedOut => "timed_out",
        }
    }
}

/// A task and who holds it (SPEC §3 rule 8).
#[derive(Clone, Debug, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, bincode::Encode, bincode::Decode)]
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
    /// The status name as in SPEC §3.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Claimed => "claimed",
            TaskStatus::Completed => "completed",
            TaskStatus::Escalated => "escalated",
        }
    }
}

/// The agent's process died (SPEC §3 rule 9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct Died {
    /// Why.
    pub reason: String,
    /// Its exit code, when known.
    pub exit_code: Option<i32>,
}

/// The run's failure (SPEC §3 rule 10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
pub struct Failure {
    /// The primary failure; never replaced by a cleanup failure.
    pub error: ErrorInfo,
    /// Failures of cleanup after the primary one, in order.
    pub cleanup_errors: Vec<ErrorInfo>,
}

/// Something the fold found odd: an ignored event, or one applied despite a
/// missing predecessor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, bincode::Encode, bincode::Decode)]
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
    /// An event for a handoff that is already final; ignored.
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
            anomalies: Vec::new(),
            conflict_strategy: ConflictStrategy::default(),
            last_done_id: None,
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

    /// Folds one more event. `last_seq` and `head` always move to the
    /// envelope; the event is either applied or, when [`Self::rejection`] says
    /// so, ignored with that anomaly (at the envelope's seq).
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
    }

    /// Predicts, without mutating, whether applying `event` would be ignored
    /// with an anomaly, and returns that anomaly. Its `seq` is the seq after
    /// `last_seq` (0 before any event); a caller that knows the real seq may
    /// overwrite it.
    ///
    /// Events that take effect are never reported, even when they add an
    /// anomaly (`compaction_done_without_start`, `phase_completed_again`), and
    /// neither are scraped compaction signals ignored because of the structured
    /// gate (they are not anomalies).
    pub fn rejection(&self, event: &Event) -> Option<Anomaly> {
        self.check(event).map(|(kind, detail)| Anomaly {
            seq: self.last_seq.map_or(0, |seq| seq.saturating_add(1)),
            kind: kind.to_owned(),
            detail,
        })
    }

    /// The state in the JSON form of SPEC §3.
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
        self.conflict_strategy
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
    fn effect(&mut self, envelope: &Envelope) {
        let seq = envelope.seq;
        match &envelope.event {
            Event::RunStarted { meta } => {
                self.conflict_strategy = meta.conflict_strategy.unwrap_or_default();
                self.epoch = envelope.epoch;
            }
            Event::Attached { .. } => {
                self.epoch = envelope.epoch;
            }
            Event::Step { messages } => {
                self.iteration = self.iteration.saturating_add(1);
                self.transcript.extend(messages.iter().cloned());
            }
            Event::TurnCompleted => self.compaction.active = false,
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
            Event::CompactionStarted { source, .. } => {
                if self.gated_out(*source) {
                    return;
                }
                if *source == CompactionSource::Structured {
                    self.compaction.gate = Some(CompactionSource::Structured);
                }
                self.compaction.active = true;
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
                if !self.compaction.active {
                    self.anomalies.push(Anomaly {
                        seq,
                        kind: Anomaly::COMPACTION_DONE_WITHOUT_START.to_owned(),
                        detail: match id {
                            Some(id) => format!("compaction_done {id:?} with no compaction active; it still counts"),
                            None => "compaction_done with no compaction active; it still counts".to_owned(),
                        },
                    });
                }
                self.compaction.active = false;
                self.compaction.count = self.compaction.count.saturating_add(1);
                self.segment = self.segment.saturating_add(1);
                self.transcript = summary
                    .iter()
                    .map(|summary| Message::new(Role::System, summary.clone()))
                    .collect();
                self.last_done_id = id.clone();
            }
            Event::HandoffSent {
                id, from, to, version, ..
            } => {
                self.handoffs.push(HandoffState {
                    id: id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    status: HandoffStatus::Pending,
                    version: version.clone(),
                });
            }
            Event::HandoffAcked { id, .. } => self.settle_handoff(id, HandoffStatus::Acknowledged),
            Event::HandoffRejected { id, .. } => self.settle_handoff(id, HandoffStatus::Rejected),
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
                self.compaction.active = false;
            }
            Event::Teardown { .. } | Event::Custom { .. } => {}
            Event::RunCompleted { output } => {
                self.output = output.clone();
                self.compaction.active = false;
            }
            Event::RunFailed { error, cleanup_errors } => {
                self.failure = Some(Failure {
                    error: error.clone(),
                    cleanup_errors: cleanup_errors.clone(),
                });
                self.compaction.active = false;
            }
            Event::RunInterrupted { .. } => {
                self.compaction.active = false;
            }
        }
        self.status = rules::status_after(self.status, &envelope.event);
        self.recoverable = self.status.is_recoverable();
    }

    /// Moves handoff `id` to a final status and recomputes the success rate.
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
        let strategy = self.conflict_strategy;
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
