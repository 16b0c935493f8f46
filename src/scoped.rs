//! Scoped runs: begin or resume a run, run the caller's work on it, and
//! record its outcome on every exit, so a run left by an early `?` return
//! never stays running forever.
//!
//! Invariants:
//! - The work runs only on a run this call began (the key was absent) or
//!   resumed (it was running or interrupted); a completed, failed or
//!   superseded run is [`ScopedError::Finished`] and nothing runs. A resume
//!   expects the `backend` and `model` the given meta sets
//!   ([`Expect::from_meta`]).
//! - Every exit records exactly one outcome, classified by [`Outcome::of`]:
//!   `Ok` → `run_completed` (with [`RunOutput::output`]), an error whose
//!   [`ErrorOutcome::is_shutdown`] holds → `run_interrupted` (left for
//!   recovery), any other error → `run_failed` with its kind and message, a
//!   panic → `run_failed` with kind `panic`, after which the panic resumes.
//! - The outcome is a run boundary: it is durable when the call returns.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::task::Poll;

use runjournal_core::fold::ResumeState;
use runjournal_core::{RunKey, RunMeta, RunStatus};

use crate::backend::Journal;
use crate::error::{AppendError, FinishError, ResumeError};
use crate::journal::Expect;
use crate::run::{Outcome, Run};

/// How an error that ends a scoped run is recorded: `run_interrupted` when it
/// means the process is shutting down, otherwise `run_failed` with
/// [`ErrorOutcome::kind`] and the error's message (its `Display`).
pub trait ErrorOutcome: std::fmt::Display {
    /// Whether the error means the process is shutting down: the run is
    /// recorded `run_interrupted` and left for recovery. `false` by default.
    fn is_shutdown(&self) -> bool {
        false
    }

    /// The short, machine-readable kind recorded in `run_failed`
    /// (`backend`, `timeout`, …). `"error"` by default.
    fn kind(&self) -> String {
        "error".into()
    }
}

impl ErrorOutcome for crate::Error {
    fn kind(&self) -> String {
        "journal".into()
    }
}

impl ErrorOutcome for AppendError {
    fn kind(&self) -> String {
        "journal".into()
    }
}

impl ErrorOutcome for std::io::Error {
    fn is_shutdown(&self) -> bool {
        self.kind() == std::io::ErrorKind::Interrupted
    }

    fn kind(&self) -> String {
        "io".into()
    }
}

impl ErrorOutcome for String {}

impl ErrorOutcome for &'static str {}

impl ErrorOutcome for Box<dyn std::error::Error + Send + Sync> {}

/// What a scoped run's `Ok` value records as `run_completed`'s `output`.
pub trait RunOutput {
    /// The output to record, if any.
    fn output(&self) -> Option<String>;
}

impl RunOutput for () {
    fn output(&self) -> Option<String> {
        None
    }
}

impl RunOutput for String {
    fn output(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl RunOutput for Option<String> {
    fn output(&self) -> Option<String> {
        self.clone()
    }
}

impl Outcome {
    /// The outcome a result records: `Ok` → `Success` with its output, an
    /// error classified as shutdown → `Shutdown`, any other error → `Failure`
    /// with its kind and message.
    pub fn of<T: RunOutput, E: ErrorOutcome>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(value) => Outcome::Success { output: value.output() },
            Err(error) if error.is_shutdown() => Outcome::Shutdown,
            Err(error) => Outcome::failure(error.kind(), error.to_string()),
        }
    }
}

/// A scoped run could not run its work, or could not record its outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScopedError<E> {
    /// The run is completed, failed or superseded: nothing ran and nothing
    /// was appended. A new attempt is a new episode
    /// ([`Journal::next_episode`]).
    #[error("run {run} is {status}: nothing ran; a new attempt is a new episode (next_episode)")]
    Finished {
        /// The run.
        run: RunKey,
        /// Its status.
        status: RunStatus,
    },
    /// Beginning or resuming the run failed (storage, corruption, a
    /// [`ResumeError::Mismatch`] of its meta): nothing ran.
    #[error(transparent)]
    Start(Box<crate::Error>),
    /// The work returned this error; its outcome (`run_interrupted` or
    /// `run_failed`) is recorded.
    #[error("{0}")]
    Run(E),
    /// Recording the outcome failed. `error` is the work's own error (`None`
    /// when it succeeded): never lost.
    #[error("{source}")]
    Finish {
        /// The work's error, if it failed.
        error: Option<E>,
        /// Why the outcome could not be stored (it carries the failure too).
        source: Box<FinishError>,
    },
}

impl<E> ScopedError<E> {
    fn start(error: impl Into<crate::Error>) -> Self {
        ScopedError::Start(Box::new(error.into()))
    }

    /// What a refused resume means for a scoped run, or `None` when the run
    /// does not exist (begin it).
    fn from_resume(error: ResumeError) -> Option<Self> {
        match error {
            ResumeError::NotFound { .. } => None,
            ResumeError::Finished { run, status } => Some(ScopedError::Finished { run, status }),
            ResumeError::Superseded { run } => Some(ScopedError::Finished {
                run,
                status: RunStatus::Superseded,
            }),
            other => Some(ScopedError::start(other)),
        }
    }
}

impl Journal {
    /// Runs `work` on the run `key`, begun with `meta` when it is absent or
    /// resumed when it is recoverable (expecting `meta`'s backend and model),
    /// and records the outcome on every exit: `Ok` → `run_completed`, an error
    /// classified as shutdown ([`ErrorOutcome`]) → `run_interrupted`, any
    /// other error → `run_failed` with its kind and message, a panic →
    /// `run_failed` kind `panic` (then the panic resumes). `work` gets the
    /// handle and the resume state (empty progress for a new run): skip
    /// `state.completed_phase_indices()`, re-run the active phase.
    ///
    /// A completed, failed or superseded run is [`ScopedError::Finished`]:
    /// nothing runs; begin the next episode for a new attempt.
    pub fn scoped<T, E, F>(&self, key: &RunKey, meta: RunMeta, work: F) -> Result<T, ScopedError<E>>
    where
        T: RunOutput,
        E: ErrorOutcome,
        F: FnOnce(&Run, &ResumeState) -> Result<T, E>,
    {
        let (run, state) = match self.resume_expecting(key, &Expect::from_meta(&meta)) {
            Ok(resumed) => resumed,
            Err(error) => {
                if let Some(error) = ScopedError::from_resume(error) {
                    return Err(error);
                }
                // A run that appeared since the resume looked is
                // `Start(AlreadyExists)`; calling again resumes it.
                let run = self.begin(key.clone(), meta).map_err(ScopedError::start)?;
                let state = run.state();
                (run, state)
            }
        };
        match catch_unwind(AssertUnwindSafe(|| work(&run, &state))) {
            Ok(result) => {
                let outcome = Outcome::of(&result);
                settle(result, run.finish(outcome))
            }
            Err(panic) => {
                record_panic(run.finish(panic_outcome(panic.as_ref())), &state);
                resume_unwind(panic)
            }
        }
    }

    /// [`Journal::scoped`] for async work, without blocking the runtime: the
    /// begin or resume runs on the blocking pool, the outcome awaits the
    /// writer. A panic while the work is polled records `run_failed` kind
    /// `panic` and then resumes.
    pub async fn scoped_async<T, E, F>(&self, key: RunKey, meta: RunMeta, work: F) -> Result<T, ScopedError<E>>
    where
        T: RunOutput,
        E: ErrorOutcome,
        F: AsyncFnOnce(&Run, &ResumeState) -> Result<T, E>,
    {
        let expect = Expect::from_meta(&meta);
        let (run, state) = match self.resume_expecting_async(key.clone(), expect).await {
            Ok(resumed) => resumed,
            Err(error) => {
                if let Some(error) = ScopedError::from_resume(error) {
                    return Err(error);
                }
                let run = self.begin_async(key, meta).await.map_err(ScopedError::start)?;
                let state = run.state();
                (run, state)
            }
        };
        let mut work = Box::pin(work(&run, &state));
        let caught =
            std::future::poll_fn(
                |context| match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(context))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                    Err(panic) => Poll::Ready(Err(panic)),
                },
            )
            .await;
        drop(work);
        match caught {
            Ok(result) => {
                let outcome = Outcome::of(&result);
                settle(result, run.finish_async(outcome).await)
            }
            Err(panic) => {
                record_panic(run.finish_async(panic_outcome(panic.as_ref())).await, &state);
                resume_unwind(panic)
            }
        }
    }
}

/// The work's result once its outcome was recorded (or not).
fn settle<T, E>(result: Result<T, E>, finished: Result<u64, Box<FinishError>>) -> Result<T, ScopedError<E>> {
    match finished {
        Ok(_) => result.map_err(ScopedError::Run),
        Err(source) => Err(ScopedError::Finish {
            error: result.err(),
            source,
        }),
    }
}

/// `run_failed` kind `panic` with the panic's message.
fn panic_outcome(panic: &(dyn Any + Send)) -> Outcome {
    let message = panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the scoped run's work panicked".into());
    Outcome::failure("panic", message)
}

/// The panic resumes whether or not its `run_failed` was stored; a failure
/// to store it is logged.
fn record_panic(finished: Result<u64, Box<FinishError>>, state: &ResumeState) {
    if let Err(error) = finished {
        tracing::error!(run = %state.run, %error, "could not record run_failed for a panic in a scoped run");
    }
}
