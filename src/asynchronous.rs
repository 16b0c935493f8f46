//! The tokio API of [`Journal`]: every blocking method as an `_async` one.
//!
//! Invariants: no method here blocks a runtime worker thread. Writes await
//! the writer thread's answer on a oneshot channel; reads, which may touch the
//! disk, run on tokio's blocking pool. A panic there resumes in the caller, as
//! the blocking method's would.

use runjournal_core::fold::ResumeState;
use runjournal_core::{Envelope, RunFilter, RunKey, RunMeta, RunRecord};

use crate::backend::Journal;
use crate::error::{BeginError, ReadError, ResumeError, WriteError};
use crate::journal::{Expect, VerifyReport};
use crate::run::Run;
use crate::writer::{Command, Operation, Reply};

/// Runs `work` on tokio's blocking pool with a clone of the journal.
async fn blocking<T: Send + 'static>(journal: &Journal, work: impl FnOnce(Journal) -> T + Send + 'static) -> T {
    let journal = journal.clone();
    match tokio::task::spawn_blocking(move || work(journal)).await {
        Ok(value) => value,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => unreachable!("blocking journal tasks are never cancelled: {error}"),
        },
    }
}

impl Journal {
    /// [`Journal::begin`] without blocking the runtime.
    pub async fn begin_async(&self, key: RunKey, meta: RunMeta) -> Result<Run, BeginError> {
        blocking(self, move |journal| journal.begin(key, meta)).await
    }

    /// [`Journal::resume`] without blocking the runtime.
    pub async fn resume_async(&self, key: RunKey) -> Result<(Run, ResumeState), ResumeError> {
        blocking(self, move |journal| journal.resume(&key)).await
    }

    /// [`Journal::resume_expecting`] without blocking the runtime.
    pub async fn resume_expecting_async(&self, key: RunKey, expect: Expect) -> Result<(Run, ResumeState), ResumeError> {
        blocking(self, move |journal| journal.resume_expecting(&key, &expect)).await
    }

    /// [`Journal::resume_latest`] without blocking the runtime.
    pub async fn resume_latest_async(&self, goal: String, agent: String) -> Result<(Run, ResumeState), ResumeError> {
        blocking(self, move |journal| journal.resume_latest(&goal, &agent)).await
    }

    /// [`Journal::run_info`] without blocking the runtime.
    pub async fn run_info_async(&self, key: RunKey) -> Result<RunRecord, ReadError> {
        blocking(self, move |journal| journal.run_info(&key)).await
    }

    /// [`Journal::read`] without blocking the runtime.
    pub async fn read_async(&self, key: RunKey, from_seq: u64) -> Result<Vec<Envelope>, ReadError> {
        blocking(self, move |journal| journal.read(&key, from_seq)).await
    }

    /// [`Journal::history`] without blocking the runtime.
    pub async fn history_async(&self, key: RunKey) -> Result<Vec<Envelope>, ReadError> {
        blocking(self, move |journal| journal.history(&key)).await
    }

    /// [`Journal::verify`] without blocking the runtime.
    pub async fn verify_async(&self, key: RunKey) -> Result<VerifyReport, ReadError> {
        blocking(self, move |journal| journal.verify(&key)).await
    }

    /// [`Journal::state`] without blocking the runtime.
    pub async fn state_async(&self, key: RunKey) -> Result<ResumeState, ReadError> {
        blocking(self, move |journal| journal.state(&key)).await
    }

    /// [`Journal::state_at`] without blocking the runtime.
    pub async fn state_at_async(&self, key: RunKey, seq: u64) -> Result<ResumeState, ReadError> {
        blocking(self, move |journal| journal.state_at(&key, seq)).await
    }

    /// [`Journal::runs`] without blocking the runtime.
    pub async fn runs_async(&self, filter: RunFilter) -> Result<Vec<RunRecord>, ReadError> {
        blocking(self, move |journal| journal.runs(&filter)).await
    }

    /// [`Journal::recoverable`] without blocking the runtime.
    pub async fn recoverable_async(&self) -> Result<Vec<ResumeState>, ReadError> {
        blocking(self, |journal| journal.recoverable()).await
    }

    /// [`Journal::latest_episode`] without blocking the runtime.
    pub async fn latest_episode_async(&self, goal: String, agent: String) -> Result<Option<u32>, ReadError> {
        blocking(self, move |journal| journal.latest_episode(&goal, &agent)).await
    }

    /// [`Journal::next_episode`] without blocking the runtime.
    pub async fn next_episode_async(&self, goal: String) -> Result<u32, ReadError> {
        blocking(self, move |journal| journal.next_episode(&goal)).await
    }

    /// [`Journal::sync`], awaiting the writer without blocking the runtime.
    pub async fn sync_async(&self) -> Result<(), WriteError> {
        let Some(inner) = self.embedded_inner() else {
            return blocking(self, |journal| journal.sync()).await;
        };
        if let Some(source) = inner.writer.health.failure() {
            return Err(WriteError::Poisoned { source });
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        if !inner.writer.send(Command::Apply(Operation::Sync {
            reply: Reply::Async(sender),
        })) {
            return Err(WriteError::WriterStopped);
        }
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(WriteError::Storage { source }),
            // The writer drops a reply unanswered only when it panics.
            Err(_) => Err(WriteError::WriterStopped),
        }
    }
}
