//! The pure core of runjournal: keys, events, the stored format, the blake3
//! hash chain, the resume-state fold and the storage trait. Nothing here does
//! I/O; stores and the journal handle build on it.
//!
//! - [`key`]: run identity `(goal, episode, agent)` and its validation.
//! - [`event`]: every event type of docs/format.md, in JSON and stored form.
//! - [`envelope`]: an event with its run, seq, epoch, time and hash
//!   (`event_json`: the decoder of an event that reads its `type` first).
//! - [`codec`]: the byte layout of stored records; [`chunk`]: several event
//!   records of one run in one stored value (store format version 2).
//! - [`hash`]: the chain.
//! - [`chain`]: verified reading of a run's records; [`chain_writer`]: its
//!   twin, the one way records are built.
//! - [`rules`]: the log's ordering rules and the run status they imply.
//! - [`fold`]: the resume-state projection of docs/resume-state.md.
//! - [`store`]: the storage trait; [`memory`]: its in-memory reference model.
//! - `testing` (feature `testing`): the storage conformance suite every store
//!   runs, and the fault-injecting `FaultyStore`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod chain_writer;
pub mod chunk;
pub mod codec;
pub mod envelope;
pub mod event;
mod event_json;
pub mod fold;
pub mod hash;
pub mod key;
pub mod memory;
pub mod rules;
pub mod snapshot;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use chain::{ChainReader, IntegrityError, IntegrityProblem};
pub use chain_writer::{ChainWriteError, ChainWriteProblem, ChainWriter, ChainedEvent};
pub use codec::{CodecError, DEFAULT_MAX_EVENT_SIZE};
pub use envelope::{Envelope, PartialEnvelope};
pub use event::{
    CompactionSource, ConflictStrategy, ErrorInfo, Event, EventError, ForkPoint, InterruptCause, Message, Role,
    RotationReason, RunMeta, TaskResult,
};
pub use hash::ChainHash;
pub use key::{KeyError, KeyPart, RunKey};
pub use memory::MemoryStore;
pub use rules::{Arrival, OrderViolation, RunStatus, UnknownStatus};
pub use store::{
    AppendBatch, AppendRejection, ForkBase, Head, KeyExists, NewRun, RunFilter, RunId, RunRecord, ScanControl,
    SnapshotRecord, Store, StoreError, Watch,
};
