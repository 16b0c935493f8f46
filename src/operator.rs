//! Operator actions: a person (or a supervisor acting for one) interrupts,
//! fails or resumes a run from outside the agent that writes it.
//!
//! Invariants:
//! - Every action is a resume: it opens a new epoch with an `attached` whose
//!   owner names the operator, so the agent's handle (an older epoch) is
//!   fenced: its next append fails with `Fenced` and writes nothing, in this
//!   process (the epoch cell) and in any other (the store's epoch check).
//! - An action that ends the run writes its outcome in the same atomic batch
//!   as the `attached`: a crash never leaves the operator's epoch open.
//! - An action the ordering rules refuse writes nothing, and its error names
//!   the rule (docs/format.md#ordering-rules).
//! - Each action is one method on [`Journal`], so a served API can expose the
//!   same operations one to one.

use runjournal_core::fold::ResumeState;
use runjournal_core::{ErrorInfo, Event, InterruptCause, RunKey, RunStatus};

use crate::error::{AppendError, ReadError, ResumeError};
use crate::journal::Local;
use crate::run::Run;

/// The error kind of a `run_failed` an operator records.
pub const OPERATOR_FAILURE_KIND: &str = "operator";

/// What an operator action wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorReport {
    /// The run.
    pub run: RunKey,
    /// The seq of the operator's `attached`.
    pub attached_seq: u64,
    /// The epoch the action opened (the agent's older handles are fenced).
    pub epoch: u64,
    /// The run's last seq after the action.
    pub last_seq: u64,
    /// The run's status after the action.
    pub status: RunStatus,
}

/// An operator action failed and wrote nothing (or, for `Append`, its
/// outcome is the append error's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// No run has the key.
    #[error("run {run} not found")]
    NotFound {
        /// The key looked for.
        run: RunKey,
    },
    /// The run's status refuses the action; `rule` names the rule.
    #[error("cannot {action} run {run}: {rule}; nothing was written")]
    Refused {
        /// The run.
        run: RunKey,
        /// The action refused (`interrupt`, `fail`, `resume`).
        action: &'static str,
        /// The run's status.
        status: RunStatus,
        /// The rule, in words, with where it is documented.
        rule: String,
    },
    /// Reading the run failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing the action's batch failed.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The resume the action is made of failed in another way (the epoch is
    /// exhausted, a stale snapshot could not be replaced).
    #[error(transparent)]
    Resume(Box<ResumeError>),
}

impl OperatorError {
    /// The error's stable machine code (see [`Error::code`](crate::Error::code)).
    pub fn code(&self) -> &'static str {
        match self {
            OperatorError::NotFound { .. } => "not_found",
            OperatorError::Refused { .. } => "not_allowed",
            OperatorError::Read(error) => error.code(),
            OperatorError::Append(error) => error.code(),
            OperatorError::Resume(error) => error.code(),
        }
    }
}

/// Why an action is refused for a run of this status, if it is.
fn refusal(action: &'static str, status: RunStatus) -> Option<String> {
    const RULES: &str = "(docs/format.md#ordering-rules)";
    match status {
        RunStatus::Completed => Some(format!("run is completed: nothing may follow run_completed {RULES}")),
        RunStatus::Failed => Some(format!("run is failed: nothing may follow run_failed {RULES}")),
        RunStatus::Superseded => Some(
            "run is superseded: a rewind replaced it by a fork and it is never resumed \
             (docs/library.md#lineage-fork-fanout-diff-purge)"
                .into(),
        ),
        RunStatus::Interrupted if action == "interrupt" => Some(format!(
            "run is interrupted already: after run_interrupted only a resume may follow {RULES}"
        )),
        _ => None,
    }
}

impl Local {
    /// The embedded [`Journal::interrupt`].
    pub(crate) fn interrupt(&self, key: &RunKey, operator: &str) -> Result<OperatorReport, OperatorError> {
        let events = vec![Event::RunInterrupted {
            cause: InterruptCause::Shutdown,
        }];
        self.operator_action(key, "interrupt", operator, events)
            .map(|(report, _)| report)
    }

    /// The embedded [`Journal::fail_run`].
    pub(crate) fn fail_run(&self, key: &RunKey, operator: &str, reason: &str) -> Result<OperatorReport, OperatorError> {
        let events = vec![Event::RunFailed {
            error: ErrorInfo::new(OPERATOR_FAILURE_KIND, format!("{reason} (failed by {operator})")),
            cleanup_errors: Vec::new(),
        }];
        self.operator_action(key, "fail", operator, events)
            .map(|(report, _)| report)
    }

    /// The embedded [`Journal::resume_as_operator`].
    pub(crate) fn resume_as_operator(
        &self,
        key: &RunKey,
        operator: &str,
    ) -> Result<(OperatorReport, Run, ResumeState), OperatorError> {
        self.operator_action(key, "resume", operator, Vec::new())
            .map(|(report, (run, state))| (report, run, state))
    }

    /// Checks the action against the run's status, then resumes the run with
    /// `attached` (owner: the operator) followed by `then`, in one batch.
    fn operator_action(
        &self,
        key: &RunKey,
        action: &'static str,
        operator: &str,
        then: Vec<Event>,
    ) -> Result<(OperatorReport, (Run, ResumeState)), OperatorError> {
        let record = self.run_info(key).map_err(|error| match error {
            ReadError::NotFound { run } => OperatorError::NotFound { run },
            other => OperatorError::Read(other),
        })?;
        if let Some(rule) = refusal(action, record.status) {
            return Err(OperatorError::Refused {
                run: key.clone(),
                action,
                status: record.status,
                rule,
            });
        }
        let mut events = vec![Event::Attached {
            owner: format!("{operator} (operator: {action})"),
        }];
        events.extend(then);
        let written = events.len() as u64;
        let (run, state) = self.resume_with(key, events).map_err(|error| match error {
            ResumeError::NotFound { run } => OperatorError::NotFound { run },
            ResumeError::Finished { run, status } => OperatorError::Refused {
                rule: refusal(action, status).unwrap_or_else(|| format!("run is {status}")),
                run,
                action,
                status,
            },
            ResumeError::Superseded { run } => OperatorError::Refused {
                rule: refusal(action, RunStatus::Superseded).unwrap_or_else(|| "run is superseded".into()),
                run,
                action,
                status: RunStatus::Superseded,
            },
            ResumeError::Read(error) => OperatorError::Read(error),
            ResumeError::Append(error) => OperatorError::Append(error),
            other => OperatorError::Resume(Box::new(other)),
        })?;
        let last_seq = run.next_seq().saturating_sub(1);
        let report = OperatorReport {
            run: key.clone(),
            attached_seq: last_seq + 1 - written,
            epoch: run.epoch(),
            last_seq,
            status: state.status,
        };
        Ok((report, (run, state)))
    }
}
