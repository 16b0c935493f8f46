//! `Run`: the handle a runtime appends through.

use pyo3::prelude::*;
use runjournal::{CompactionInfo, ErrorInfo, Event, Handoff, Outcome};

use crate::errors::{plain, to_py, InvalidError};
use crate::journal::{check_pid, from_json, py_key, to_json, PyKey};

/// A run handle writing with one epoch (`runjournal.Run` wraps it).
#[pyclass(frozen, module = "runjournal._native")]
pub(crate) struct Run {
    run: Option<runjournal::Run>,
    pid: u32,
}

impl Run {
    pub(crate) fn new(run: runjournal::Run, pid: u32) -> Run {
        Run { run: Some(run), pid }
    }

    fn get(&self) -> PyResult<&runjournal::Run> {
        check_pid(self.pid)?;
        // `run` is `None` only inside `drop`.
        self.run
            .as_ref()
            .ok_or_else(|| plain::<InvalidError>("closed", "the run handle is gone".into()))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // See `Journal`'s drop: a forked child must not close the parent's journal.
            std::mem::forget(self.run.take());
        }
    }
}

/// Appends one typed event through its typed Rust method (refused, writing
/// nothing, when the fold would ignore it).
fn typed(run: &runjournal::Run, event: Event) -> Result<u64, TypedError> {
    let seq = match event {
        Event::Step { messages } => run.step(messages)?,
        Event::TurnCompleted => run.turn_completed()?,
        Event::PhaseStarted { index, name } => run.phase_started(index, name)?,
        Event::PhaseCompleted { index, name, output } => run.phase_completed(index, name, output)?,
        Event::CompactionStarted {
            id,
            source,
            messages_before,
            tokens_before,
        } => run.compaction_started(
            source,
            CompactionInfo {
                id,
                summary: None,
                messages: messages_before,
                tokens: tokens_before,
            },
        )?,
        Event::CompactionDone {
            id,
            source,
            summary,
            messages_after,
            tokens_after,
        } => run.compaction_done(
            source,
            CompactionInfo {
                id,
                summary,
                messages: messages_after,
                tokens: tokens_after,
            },
        )?,
        Event::HandoffSent {
            id,
            from,
            to,
            generation,
            version,
            content_hash,
            timeout_ms,
        } => run.handoff_sent(Handoff {
            id,
            from,
            to,
            generation,
            version,
            content_hash,
            timeout_ms,
        })?,
        Event::HandoffAcked { id, by } => run.handoff_acked(id, by)?,
        Event::HandoffRejected { id, by, reason } => run.handoff_rejected(id, by, reason)?,
        Event::HandoffTimedOut { id } => run.handoff_timed_out(id)?,
        Event::TaskClaimed {
            task,
            agent,
            priority,
            confidence,
        } => run.task_claimed(task, agent, priority, confidence)?,
        Event::TaskCompleted {
            task,
            agent,
            result,
            summary,
        } => run.task_completed(task, agent, result, summary)?,
        Event::AgentDied { reason, exit_code } => run.agent_died(reason, exit_code)?,
        Event::Teardown { resource, error } => run.teardown(resource, error)?,
        Event::Custom { kind, data } => run.custom(kind, data)?,
        other => return Err(TypedError::NoTypedMethod(other.type_name())),
    };
    Ok(seq)
}

/// Why a typed append failed.
enum TypedError {
    Append(runjournal::AppendError),
    NoTypedMethod(&'static str),
}

impl From<runjournal::AppendError> for TypedError {
    fn from(error: runjournal::AppendError) -> Self {
        TypedError::Append(error)
    }
}

#[pymethods]
impl Run {
    /// The run's key `(goal, episode, agent)`.
    #[getter]
    fn key(&self) -> PyResult<PyKey> {
        Ok(py_key(self.get()?.key()))
    }

    /// The epoch this handle writes with.
    #[getter]
    fn epoch(&self) -> PyResult<u64> {
        Ok(self.get()?.epoch())
    }

    /// The seq the next append gets.
    #[getter]
    fn next_seq(&self) -> PyResult<u64> {
        Ok(self.get()?.next_seq())
    }

    /// The run's resume state including this handle's appends (JSON).
    fn state(&self) -> PyResult<String> {
        Ok(to_json(&self.get()?.state()))
    }

    /// Appends one event (JSON, `type`-tagged) through its typed method.
    fn typed(&self, py: Python<'_>, event: &str) -> PyResult<u64> {
        let run = self.get()?;
        let event: Event = from_json("event", event)?;
        py.detach(|| typed(run, event)).map_err(|error| match error {
            TypedError::Append(error) => to_py(error),
            TypedError::NoTypedMethod(name) => plain::<InvalidError>(
                "no_typed_method",
                format!("{name} has no typed append; use append([...]) or finish()"),
            ),
        })
    }

    /// Appends events (JSON list) as one atomic batch; with `expected_seq`,
    /// the batch must start there (else `ConflictError`). Returns the last seq.
    #[pyo3(signature = (events, expected_seq = None))]
    fn append(&self, py: Python<'_>, events: &str, expected_seq: Option<u64>) -> PyResult<u64> {
        let run = self.get()?;
        let events: Vec<Event> = from_json("events", events)?;
        py.detach(|| match expected_seq {
            Some(expected) => run.append_at(expected, events),
            None => run.append(events),
        })
        .map_err(to_py)
    }

    /// Records the outcome: `"success"` (with `output`), `"shutdown"`, or
    /// `"failure"` (with `kind` and `message`). Durable when it returns.
    #[pyo3(signature = (outcome, output = None, kind = None, message = None))]
    fn finish(
        &self,
        py: Python<'_>,
        outcome: &str,
        output: Option<String>,
        kind: Option<String>,
        message: Option<String>,
    ) -> PyResult<u64> {
        let run = self.get()?;
        let outcome = match outcome {
            "success" => Outcome::Success { output },
            "shutdown" => Outcome::Shutdown,
            "failure" => Outcome::Failure {
                error: ErrorInfo::new(kind.unwrap_or_else(|| "error".into()), message.unwrap_or_default()),
                cleanup_errors: Vec::new(),
            },
            other => {
                return Err(plain::<InvalidError>(
                    "invalid_outcome",
                    format!("outcome must be \"success\", \"shutdown\" or \"failure\", not {other:?}"),
                ))
            }
        };
        py.detach(|| run.conclude(outcome)).map_err(to_py)
    }
}
