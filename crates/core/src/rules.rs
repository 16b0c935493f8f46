//! The log's ordering rules (docs/format.md) and the run status they imply (docs/resume-state.md
//! rule 1): the one definition the handle, import and the fold share.
//!
//! Invariants:
//! - Seqs are 0-based and gapless per run; `run_started` is seq 0 and only
//!   seq 0.
//! - The status after an event depends only on the status before it and the
//!   event: `run_completed` → completed, `run_failed` → failed,
//!   `run_interrupted` → interrupted, `run_started` → running, and `attached`
//!   turns interrupted into running (it never reopens a completed or failed
//!   run).
//! - Nothing follows `run_completed`, `run_failed` or `run_interrupted` in the
//!   same epoch but `teardown` (resources are released after the outcome) and,
//!   after `run_interrupted`, a resume (`attached`, new epoch).
//! - No event makes a run `superseded`: that status is set by the store when a
//!   rewind forks the run (see `NewRun::supersedes`).
//! - A run starts in epoch 0; epochs never decrease and only rise at an
//!   `attached`, which must open a higher epoch.
//!
//! Every check is a pure function returning an [`OrderViolation`]; callers add
//! the run, the seq and (for import) the line.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Where a run stands (rule 1 (docs/resume-state.md)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being written, or died without finishing.
    Running,
    /// Ended with `run_completed`.
    Completed,
    /// Ended with `run_failed`.
    Failed,
    /// Ended with `run_interrupted`; a resume may continue it.
    Interrupted,
    /// Abandoned by a rewind, which forked it into the branch that goes on:
    /// never recoverable. Set on the run record by the store, never by an event.
    Superseded,
}

impl RunStatus {
    /// Running or interrupted: a new process may resume it.
    pub fn is_recoverable(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Interrupted)
    }

    /// The status name as in docs/resume-state.md.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Superseded => "superseded",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of docs/resume-state.md's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {found:?} (expected running, completed, failed or interrupted)")]
pub struct UnknownStatus {
    /// The text that was parsed.
    pub found: String,
}

impl std::str::FromStr for RunStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "running" => Ok(RunStatus::Running),
            "completed" => Ok(RunStatus::Completed),
            "failed" => Ok(RunStatus::Failed),
            "interrupted" => Ok(RunStatus::Interrupted),
            "superseded" => Ok(RunStatus::Superseded),
            other => Err(UnknownStatus { found: other.into() }),
        }
    }
}

/// How an event arrives in the log, for the rule on what may follow an
/// interruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// In the epoch of the events before it.
    SameEpoch,
    /// Opening a newer epoch: a resume's `attached` (its epoch is checked by
    /// [`epoch_of`]).
    NewEpoch,
}

/// An event out of place in a run's log: which rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderViolation {
    /// The event's seq is not the run's next seq.
    #[error("seq {seq} where seq {expected} was expected (seqs are gapless and start at 0)")]
    SeqGap {
        /// The event's seq.
        seq: u64,
        /// The run's next seq.
        expected: u64,
    },
    /// Seq 0 holds another event than `run_started`.
    #[error("the first event of a run must be run_started, not {event}")]
    FirstIsNotRunStarted {
        /// The type of the event at seq 0.
        event: &'static str,
    },
    /// `run_started` at a seq other than 0.
    #[error("run_started is only ever seq 0")]
    RunStartedAfterFirst,
    /// `attached` appended through a run handle: only a resume writes it,
    /// opening the new epoch (import checks its epoch instead).
    #[error("attached opens a new epoch and is written by resume")]
    AttachedOutsideResume,
    /// An event after the run's outcome in the same epoch.
    #[error(
        "{event} follows {ended_by} in the same epoch; nothing may follow {ended_by}{}",
        resume_exception(.status)
    )]
    AfterOutcome {
        /// The type of the event.
        event: &'static str,
        /// The terminal event that ended the epoch.
        ended_by: &'static str,
        /// The run's status.
        status: RunStatus,
    },
    /// `run_started` in an epoch other than 0.
    #[error("run_started has epoch {epoch}; a run starts in epoch 0")]
    StartEpochNotZero {
        /// The stated epoch.
        epoch: u64,
    },
    /// `attached` that does not open a higher epoch.
    #[error("attached has epoch {epoch}, not higher than the run's epoch {current}; a resume opens a new epoch")]
    AttachEpochNotHigher {
        /// The stated epoch.
        epoch: u64,
        /// The run's epoch.
        current: u64,
    },
    /// `attached` at the last epoch there is (or after it): no later resume
    /// could ever open a higher one.
    #[error("attached opens epoch {epoch}, the last there is (u64::MAX); the run could never be resumed again")]
    EpochExhausted {
        /// The epoch the `attached` would open (or states).
        epoch: u64,
    },
    /// Another event than `attached` changing the epoch.
    #[error(
        "{event} has epoch {epoch} but the run is in epoch {current}; epochs never decrease and only rise at an attached"
    )]
    EpochChanged {
        /// The type of the event.
        event: &'static str,
        /// The stated epoch.
        epoch: u64,
        /// The run's epoch.
        current: u64,
    },
}

/// The status after `event`, from `status` (rule 1 (docs/resume-state.md)).
pub fn status_after(status: RunStatus, event: &Event) -> RunStatus {
    match event {
        Event::RunStarted { .. } => RunStatus::Running,
        Event::Attached { .. } if status == RunStatus::Interrupted => RunStatus::Running,
        Event::RunCompleted { .. } => RunStatus::Completed,
        Event::RunFailed { .. } => RunStatus::Failed,
        Event::RunInterrupted { .. } => RunStatus::Interrupted,
        _ => status,
    }
}

/// Whether `event` is a run boundary: `run_started`, `attached`, `agent_died`
/// or a terminal event. A boundary returns only once durable, in every
/// durability mode (docs/library.md), so a crash never loses how a run began or ended.
pub fn is_boundary(event: &Event) -> bool {
    event.is_terminal()
        || matches!(
            event,
            Event::RunStarted { .. } | Event::Attached { .. } | Event::AgentDied { .. }
        )
}

/// Seqs are gapless: the next event must have the run's next seq.
pub fn check_seq(seq: u64, expected: u64) -> Result<(), OrderViolation> {
    if seq == expected {
        Ok(())
    } else {
        Err(OrderViolation::SeqGap { seq, expected })
    }
}

/// `run_started` is seq 0, and seq 0 is `run_started`.
pub fn check_position(seq: u64, event: &Event) -> Result<(), OrderViolation> {
    match (seq, event) {
        (0, Event::RunStarted { .. }) => Ok(()),
        (0, other) => Err(OrderViolation::FirstIsNotRunStarted {
            event: other.type_name(),
        }),
        (_, Event::RunStarted { .. }) => Err(OrderViolation::RunStartedAfterFirst),
        _ => Ok(()),
    }
}

/// Whether `event`, arriving as `arrival`, may follow events that left the run
/// in `status`: anything while running; after an outcome, `teardown` in the
/// same epoch (resources are released after the outcome); after
/// `run_interrupted` also a resume (`attached`, new epoch); nothing else.
pub fn check_follows(status: RunStatus, event: &Event, arrival: Arrival) -> Result<(), OrderViolation> {
    let resume = arrival == Arrival::NewEpoch && matches!(event, Event::Attached { .. });
    let teardown = arrival == Arrival::SameEpoch && matches!(event, Event::Teardown { .. });
    match ended_by(status) {
        None => Ok(()),
        Some(_) if teardown && status != RunStatus::Superseded => Ok(()),
        Some(_) if status == RunStatus::Interrupted && resume => Ok(()),
        Some(ended_by) => Err(OrderViolation::AfterOutcome {
            event: event.type_name(),
            ended_by,
            status,
        }),
    }
}

/// The epoch of `event` after events of epoch `current`: the `stated` one when
/// it keeps the epoch rules, or when none is stated the one they imply (the
/// current epoch, one more for an `attached`).
pub fn epoch_of(event: &Event, stated: Option<u64>, current: u64) -> Result<u64, OrderViolation> {
    let attach = matches!(event, Event::Attached { .. });
    match (stated, attach) {
        (None, false) => Ok(current),
        (None, true) if current >= u64::MAX - 1 => Err(OrderViolation::EpochExhausted {
            epoch: current.saturating_add(1),
        }),
        (None, true) => Ok(current + 1),
        (Some(epoch), _) if matches!(event, Event::RunStarted { .. }) && epoch != 0 => {
            Err(OrderViolation::StartEpochNotZero { epoch })
        }
        (Some(epoch), true) if epoch <= current => Err(OrderViolation::AttachEpochNotHigher { epoch, current }),
        (Some(u64::MAX), true) => Err(OrderViolation::EpochExhausted { epoch: u64::MAX }),
        (Some(epoch), false) if epoch != current => Err(OrderViolation::EpochChanged {
            event: event.type_name(),
            epoch,
            current,
        }),
        (Some(epoch), _) => Ok(epoch),
    }
}

/// What may still follow an outcome, in words: teardown, and a resume after
/// `run_interrupted`.
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "called from a thiserror format argument, which passes fields by reference"
)]
fn resume_exception(status: &RunStatus) -> &'static str {
    match status {
        RunStatus::Interrupted => " but teardown and a resume (attached, new epoch)",
        RunStatus::Superseded => "",
        _ => " but teardown",
    }
}

/// The terminal event that leaves a run in `status`, if `status` is an outcome.
fn ended_by(status: RunStatus) -> Option<&'static str> {
    match status {
        RunStatus::Running => None,
        RunStatus::Completed => Some("run_completed"),
        RunStatus::Failed => Some("run_failed"),
        RunStatus::Interrupted => Some("run_interrupted"),
        RunStatus::Superseded => Some("a rewind (the run is superseded)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorInfo, InterruptCause, RunMeta};

    fn started() -> Event {
        Event::RunStarted {
            meta: RunMeta::default(),
        }
    }

    fn attached() -> Event {
        Event::Attached { owner: "h/1".into() }
    }

    fn completed() -> Event {
        Event::RunCompleted { output: None }
    }

    fn failed() -> Event {
        Event::RunFailed {
            error: ErrorInfo::new("k", "m"),
            cleanup_errors: Vec::new(),
        }
    }

    fn interrupted() -> Event {
        Event::RunInterrupted {
            cause: InterruptCause::Shutdown,
        }
    }

    fn teardown() -> Event {
        Event::Teardown {
            resource: "sandbox".into(),
            error: None,
        }
    }

    const ALL_STATUSES: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Superseded,
    ];

    #[test]
    fn run_completed_makes_the_run_completed() {
        assert_eq!(status_after(RunStatus::Running, &completed()), RunStatus::Completed);
    }

    #[test]
    fn run_failed_makes_the_run_failed() {
        assert_eq!(status_after(RunStatus::Running, &failed()), RunStatus::Failed);
    }

    #[test]
    fn run_interrupted_makes_the_run_interrupted() {
        assert_eq!(status_after(RunStatus::Running, &interrupted()), RunStatus::Interrupted);
    }

    #[test]
    fn run_started_makes_the_run_running() {
        for status in ALL_STATUSES {
            assert_eq!(status_after(status, &started()), RunStatus::Running, "from {status}");
        }
    }

    #[test]
    fn attached_after_run_interrupted_makes_the_run_running_again() {
        assert_eq!(status_after(RunStatus::Interrupted, &attached()), RunStatus::Running);
        assert_eq!(status_after(RunStatus::Running, &attached()), RunStatus::Running);
    }

    #[test]
    fn attached_never_reopens_a_completed_or_failed_run() {
        assert_eq!(status_after(RunStatus::Completed, &attached()), RunStatus::Completed);
        assert_eq!(status_after(RunStatus::Failed, &attached()), RunStatus::Failed);
    }

    #[test]
    fn other_events_keep_the_status() {
        for status in ALL_STATUSES {
            for event in [Event::TurnCompleted, teardown()] {
                assert_eq!(
                    status_after(status, &event),
                    status,
                    "{} from {status}",
                    event.type_name()
                );
            }
        }
    }

    #[test]
    fn seqs_are_gapless() {
        assert_eq!(check_seq(3, 3), Ok(()));
        assert_eq!(check_seq(4, 3), Err(OrderViolation::SeqGap { seq: 4, expected: 3 }));
        assert_eq!(check_seq(2, 3), Err(OrderViolation::SeqGap { seq: 2, expected: 3 }));
    }

    #[test]
    fn seq_0_is_always_run_started() {
        assert_eq!(check_position(0, &started()), Ok(()));
        let error = check_position(0, &Event::TurnCompleted).unwrap_err();
        assert_eq!(
            error,
            OrderViolation::FirstIsNotRunStarted {
                event: "turn_completed"
            }
        );
        assert_eq!(
            error.to_string(),
            "the first event of a run must be run_started, not turn_completed"
        );
    }

    #[test]
    fn run_started_is_only_ever_seq_0() {
        assert_eq!(check_position(1, &started()), Err(OrderViolation::RunStartedAfterFirst));
        assert_eq!(check_position(1, &Event::TurnCompleted), Ok(()));
    }

    #[test]
    fn anything_may_follow_while_running() {
        for event in [Event::TurnCompleted, attached(), completed(), teardown()] {
            for arrival in [Arrival::SameEpoch, Arrival::NewEpoch] {
                assert_eq!(check_follows(RunStatus::Running, &event, arrival), Ok(()));
            }
        }
    }

    #[test]
    fn nothing_follows_run_completed_or_run_failed_in_the_same_epoch() {
        for (status, ended_by) in [
            (RunStatus::Completed, "run_completed"),
            (RunStatus::Failed, "run_failed"),
        ] {
            let error = check_follows(status, &Event::TurnCompleted, Arrival::SameEpoch).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "turn_completed follows {ended_by} in the same epoch; nothing may follow {ended_by} but teardown"
                )
            );
        }
    }

    #[test]
    fn a_resume_never_follows_run_completed_or_run_failed() {
        for status in [RunStatus::Completed, RunStatus::Failed] {
            let error = check_follows(status, &attached(), Arrival::NewEpoch).unwrap_err();
            assert!(
                matches!(error, OrderViolation::AfterOutcome { event: "attached", .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn only_a_resume_follows_run_interrupted() {
        assert_eq!(
            check_follows(RunStatus::Interrupted, &attached(), Arrival::NewEpoch),
            Ok(())
        );
        let same_epoch = check_follows(RunStatus::Interrupted, &attached(), Arrival::SameEpoch).unwrap_err();
        assert!(
            matches!(same_epoch, OrderViolation::AfterOutcome { .. }),
            "{same_epoch}"
        );
        let error = check_follows(RunStatus::Interrupted, &Event::TurnCompleted, Arrival::NewEpoch).unwrap_err();
        assert_eq!(
            error.to_string(),
            "turn_completed follows run_interrupted in the same epoch; nothing may follow run_interrupted \
             but teardown and a resume (attached, new epoch)"
        );
    }

    #[test]
    fn teardown_may_follow_the_outcome_in_its_epoch() {
        for status in [RunStatus::Completed, RunStatus::Failed, RunStatus::Interrupted] {
            assert_eq!(
                check_follows(status, &teardown(), Arrival::SameEpoch),
                Ok(()),
                "after {status}"
            );
            // Teardown keeps the outcome, so another teardown may follow, and nothing else.
            let after = status_after(status, &teardown());
            assert_eq!(after, status);
            assert_eq!(check_follows(after, &teardown(), Arrival::SameEpoch), Ok(()));
            let error = check_follows(after, &Event::TurnCompleted, Arrival::SameEpoch).unwrap_err();
            assert_eq!(
                error,
                OrderViolation::AfterOutcome {
                    event: "turn_completed",
                    ended_by: ended_by(status).unwrap(),
                    status
                }
            );
        }
    }

    #[test]
    fn a_resume_may_follow_teardown_after_run_interrupted() {
        let after = status_after(RunStatus::Interrupted, &teardown());
        assert_eq!(check_follows(after, &attached(), Arrival::NewEpoch), Ok(()));
    }

    #[test]
    fn no_event_makes_a_run_superseded_and_a_superseded_run_is_not_recoverable() {
        assert!(!RunStatus::Superseded.is_recoverable());
        assert_eq!("superseded".parse(), Ok(RunStatus::Superseded));
        for status in ALL_STATUSES
            .into_iter()
            .filter(|status| *status != RunStatus::Superseded)
        {
            for event in [started(), attached(), completed(), failed(), interrupted(), teardown()] {
                assert_ne!(status_after(status, &event), RunStatus::Superseded);
            }
        }
        for event in [teardown(), Event::TurnCompleted] {
            let error = check_follows(RunStatus::Superseded, &event, Arrival::SameEpoch).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{} follows a rewind (the run is superseded) in the same epoch; nothing may follow a rewind \
                     (the run is superseded)",
                    event.type_name()
                )
            );
        }
    }

    #[test]
    fn boundaries_are_run_started_attached_agent_died_and_the_terminal_events() {
        let died = Event::AgentDied {
            reason: "oom".into(),
            exit_code: Some(137),
        };
        for event in [started(), attached(), died, completed(), failed(), interrupted()] {
            assert!(is_boundary(&event), "{}", event.type_name());
        }
        for event in [teardown(), Event::TurnCompleted] {
            assert!(!is_boundary(&event), "{}", event.type_name());
        }
    }

    #[test]
    fn a_run_starts_in_epoch_0() {
        assert_eq!(epoch_of(&started(), None, 0), Ok(0));
        assert_eq!(epoch_of(&started(), Some(0), 0), Ok(0));
        assert_eq!(
            epoch_of(&started(), Some(2), 0),
            Err(OrderViolation::StartEpochNotZero { epoch: 2 })
        );
    }

    #[test]
    fn an_attached_opens_a_higher_epoch() {
        assert_eq!(epoch_of(&attached(), None, 1), Ok(2));
        assert_eq!(
            epoch_of(&attached(), None, u64::MAX - 1),
            Err(OrderViolation::EpochExhausted { epoch: u64::MAX })
        );
        assert_eq!(
            epoch_of(&attached(), Some(u64::MAX), 3),
            Err(OrderViolation::EpochExhausted { epoch: u64::MAX })
        );
        assert_eq!(
            epoch_of(&attached(), None, u64::MAX),
            Err(OrderViolation::EpochExhausted { epoch: u64::MAX }),
            "an attached at the last epoch never raises it"
        );
        assert_eq!(epoch_of(&attached(), Some(5), 1), Ok(5));
        assert_eq!(
            epoch_of(&attached(), Some(1), 1),
            Err(OrderViolation::AttachEpochNotHigher { epoch: 1, current: 1 })
        );
    }

    #[test]
    fn epochs_only_rise_at_an_attached() {
        assert_eq!(epoch_of(&Event::TurnCompleted, None, 3), Ok(3));
        assert_eq!(epoch_of(&Event::TurnCompleted, None, u64::MAX), Ok(u64::MAX));
        assert_eq!(epoch_of(&Event::TurnCompleted, Some(3), 3), Ok(3));
        for stated in [2, 4] {
            assert_eq!(
                epoch_of(&Event::TurnCompleted, Some(stated), 3),
                Err(OrderViolation::EpochChanged {
                    event: "turn_completed",
                    epoch: stated,
                    current: 3
                })
            );
        }
    }
}
