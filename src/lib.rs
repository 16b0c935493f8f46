//! runjournal: an embedded, event-sourced, hash-chained journal for AI-agent runs.
//!
//! Every fact of a run is appended to an immutable per-run log, chained with
//! blake3; projections fold the log into the state a runtime resumes from.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod history;
mod hub;
mod journal;
mod options;
mod run;
mod writer;

pub use error::{AppendError, BeginError, Error, FinishError, OpenError, ReadError, ResumeError};
pub use hub::LagPoint;
pub use journal::{Journal, VerifyReport};
pub use options::{Durability, Options};
pub use run::{CompactionInfo, Handoff, Outcome, Run};
pub use writer::StoreFailure;

pub use runjournal_core as core;
pub use runjournal_core::fold::{self, ResumeState};
pub use runjournal_core::{
    ChainHash, CompactionSource, ConflictStrategy, Envelope, ErrorInfo, Event, ForkPoint, IntegrityError,
    IntegrityProblem, KeyError, Message, Role, RunFilter, RunKey, RunMeta, RunRecord, RunStatus, StoreError,
    TaskResult,
};
