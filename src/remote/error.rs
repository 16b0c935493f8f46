//! Wire errors back into the library's typed errors.
//!
//! Invariant: a code this client knows becomes the variant the embedded
//! journal returns, with the fields its `details` carry; anything else keeps
//! the server's code and message in [`RemoteError::Refused`]. A failure to
//! get an answer is never mapped to a success, nor to a refusal.

use std::sync::Arc;

use runjournal_core::{RunKey, RunStatus, StoreError};

use crate::error::{AppendError, BeginError, ReadError, ResumeError, WriteError};
use crate::lineage::{ForkError, PurgeError};
use crate::operator::OperatorError;
use crate::subscription::SubscribeError;

/// A failure of a connected journal ([`Journal::connect`](crate::Journal::connect))
/// that has no embedded counterpart.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No connection to the server could be made, or it refused the request
    /// before it was sent: nothing was done.
    #[error("cannot reach the journal's server at {endpoint}: {detail}; nothing was sent (is the owner serving? `runjournal serve --db PATH`)")]
    Unreachable {
        /// Where the server was expected.
        endpoint: String,
        /// Why.
        detail: String,
    },
    /// The connection failed after the request was sent: the write may or
    /// may not have been applied. Read the run back (its next seq) before
    /// writing again.
    #[error("the connection to {endpoint} failed after the request was sent ({detail}): its outcome is unknown; read the run back before writing again")]
    OutcomeUnknown {
        /// The server.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The server refused the request with a code this client has no typed
    /// error for (a transport code such as `unauthorized`, `busy`,
    /// `payload_too_large`, `invalid_request`, `timeout`, or a newer code).
    #[error("the journal's server at {} answered {} {}: {}", .0.endpoint, .0.status, .0.code, .0.message)]
    Refused(Box<Refusal>),
    /// The server answered outside the wire contract.
    #[error("the journal's server at {endpoint} answered outside the wire contract: {detail}")]
    Protocol {
        /// The server.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// The client's runtime could not be started.
    #[error("could not start the connection's runtime: {detail}")]
    Runtime {
        /// Why.
        detail: String,
    },
}

/// An answer of the server that has no typed error here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The server.
    pub endpoint: String,
    /// The HTTP status.
    pub status: u16,
    /// The wire code (see [`RemoteError::code`] for the stable one).
    pub code: String,
    /// The server's message.
    pub message: String,
    /// The run it names, if any.
    pub run: Option<RunKey>,
    /// The seq it names, if any.
    pub seq: Option<u64>,
}

/// Every code the served API may send: a refused code keeps its own.
const KNOWN_CODES: &[&str] = &[
    "invalid_request",
    "unauthorized",
    "payload_too_large",
    "timeout",
    "busy",
    "fenced",
    "conflict",
    "not_found",
    "finished",
    "superseded",
    "already_exists",
    "mismatch",
    "too_large",
    "invalid_event",
    "invalid_key",
    "out_of_order",
    "empty_batch",
    "refused",
    "not_allowed",
    "deleted",
    "abandoned",
    "seq_out_of_range",
    "has_live_fork",
    "exhausted",
    "poisoned",
    "writer_stopped",
    "storage",
    "io",
    "integrity",
    "snapshot_corrupt",
    "parent_missing",
    "lagged",
    "closed",
    "locked",
    "parse",
    "seq_gap",
    "hash_mismatch",
    "unencodable",
];

impl RemoteError {
    /// The error's stable machine code: `unreachable`, `outcome_unknown`,
    /// `protocol`, `thread`, or for a refusal the server's code (`remote`
    /// when it is one this version does not know).
    pub fn code(&self) -> &'static str {
        match self {
            RemoteError::Unreachable { .. } => "unreachable",
            RemoteError::OutcomeUnknown { .. } => "outcome_unknown",
            RemoteError::Refused(refusal) => KNOWN_CODES
                .iter()
                .find(|known| **known == refusal.code.as_str())
                .copied()
                .unwrap_or("remote"),
            RemoteError::Protocol { .. } => "protocol",
            RemoteError::Runtime { .. } => "thread",
        }
    }
}

/// An error answer as sent: `{"error": {code, message, run, seq, details}}`.
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct WireFailure {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) run: Option<RunKey>,
    #[serde(default)]
    pub(crate) seq: Option<u64>,
    #[serde(default)]
    pub(crate) details: serde_json::Value,
    #[serde(skip)]
    pub(crate) status: u16,
    #[serde(skip)]
    pub(crate) endpoint: String,
}

impl WireFailure {
    fn detail_u64(&self, field: &str) -> Option<u64> {
        self.details.get(field).and_then(serde_json::Value::as_u64)
    }

    fn detail_str(&self, field: &str) -> Option<String> {
        self.details
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    }

    fn run_or(&self, key: &RunKey) -> RunKey {
        self.run.clone().unwrap_or_else(|| key.clone())
    }

    /// The answer kept as it is.
    fn refused(self) -> RemoteError {
        RemoteError::Refused(Box::new(Refusal {
            endpoint: self.endpoint,
            status: self.status,
            code: self.code,
            message: self.message,
            run: self.run,
            seq: self.seq,
        }))
    }

    /// The owner's storage failure, as a store failure named by its message.
    fn store_failure(&self) -> Arc<StoreError> {
        Arc::new(StoreError::Backend {
            operation: "the journal's owner",
            detail: self.message.clone(),
        })
    }
}

/// Why a call failed, before it is given its operation family's type.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// The server answered with an error.
    Answer(Box<WireFailure>),
    /// No (complete) answer.
    Transport(RemoteError),
}

impl Failure {
    /// The failure as a [`RemoteError`] (for the calls that have no family).
    pub(crate) fn into_remote(self) -> RemoteError {
        match self {
            Failure::Answer(answer) => answer.refused(),
            Failure::Transport(error) => error,
        }
    }

    /// A read's failure.
    pub(crate) fn read(self, key: Option<&RunKey>) -> ReadError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return ReadError::Remote(error),
        };
        let run = answer.run.clone().or_else(|| key.cloned());
        match (answer.code.as_str(), run) {
            ("not_found", Some(run)) => ReadError::NotFound { run },
            ("seq_out_of_range", Some(run)) => match (answer.seq, answer.detail_u64("last")) {
                (Some(seq), Some(last)) => ReadError::SeqOutOfRange { run, seq, last },
                _ => ReadError::Remote(answer.refused()),
            },
            ("exhausted", _) if answer.detail_str("goal").is_some() => ReadError::EpisodesExhausted {
                goal: answer.detail_str("goal").unwrap_or_default(),
            },
            _ => ReadError::Remote(answer.refused()),
        }
    }

    /// A write's failure (not an append).
    pub(crate) fn write(self) -> WriteError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return WriteError::Remote(error),
        };
        match answer.code.as_str() {
            "poisoned" => WriteError::Poisoned {
                source: answer.store_failure(),
            },
            "storage" | "io" => WriteError::Storage {
                source: answer.store_failure(),
            },
            "writer_stopped" => WriteError::WriterStopped,
            _ => WriteError::Remote(answer.refused()),
        }
    }

    /// An append's failure: `seq` is the first seq it would have written.
    pub(crate) fn append(self, key: &RunKey, seq: u64, epoch: u64) -> AppendError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return AppendError::Remote(error),
        };
        let run = answer.run_or(key);
        let at = answer.seq.unwrap_or(seq);
        match answer.code.as_str() {
            "fenced" => AppendError::Fenced {
                run,
                seq: at,
                epoch: answer.detail_u64("epoch").unwrap_or(epoch),
                current: answer.detail_u64("current").unwrap_or(epoch.saturating_add(1)),
            },
            "conflict" => match (answer.detail_u64("expected"), answer.detail_u64("actual")) {
                (Some(expected), Some(actual)) => AppendError::Conflict { run, expected, actual },
                _ => AppendError::Remote(answer.refused()),
            },
            "too_large" => match (answer.detail_u64("size"), answer.detail_u64("max")) {
                (Some(size), Some(max)) => AppendError::EventTooLarge {
                    run,
                    seq: at,
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                },
                _ => AppendError::Remote(answer.refused()),
            },
            "deleted" => AppendError::Deleted { run, seq: at },
            "poisoned" => AppendError::Poisoned {
                source: answer.store_failure(),
            },
            "storage" | "io" => AppendError::Storage {
                run,
                seq: at,
                source: answer.store_failure(),
            },
            "writer_stopped" => AppendError::WriterStopped,
            _ => AppendError::Remote(answer.refused()),
        }
    }

    /// A begin's failure.
    pub(crate) fn begin(self, key: &RunKey) -> BeginError {
        match self {
            Failure::Answer(answer) if answer.code == "already_exists" => BeginError::AlreadyExists {
                run: answer.run_or(key),
            },
            Failure::Answer(answer) if answer.code == "too_large" => match Failure::Answer(answer).append(key, 0, 0) {
                AppendError::EventTooLarge { run, seq, size, max } => BeginError::EventTooLarge { run, seq, size, max },
                other => BeginError::Write(WriteError::Remote(remote_of(other))),
            },
            Failure::Answer(answer) if answer.code == "not_found" => Failure::Answer(answer).read(Some(key)).into(),
            failure => BeginError::Write(failure.write()),
        }
    }

    /// A resume's failure.
    pub(crate) fn resume(self, key: &RunKey) -> ResumeError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return ResumeError::Write(WriteError::Remote(error)),
        };
        let run = answer.run_or(key);
        match answer.code.as_str() {
            "not_found" => ResumeError::NotFound { run },
            "finished" => match answer.detail_str("status").as_deref().and_then(status_named) {
                Some(status) => ResumeError::Finished { run, status },
                None => ResumeError::Write(WriteError::Remote(answer.refused())),
            },
            "superseded" => ResumeError::Superseded { run },
            "mismatch" => match (
                answer.detail_str("field").as_deref().and_then(meta_field),
                answer.detail_str("expected"),
            ) {
                (Some(field), Some(expected)) => ResumeError::Mismatch {
                    run,
                    field,
                    stored: answer.detail_str("stored"),
                    expected,
                },
                _ => ResumeError::Write(WriteError::Remote(answer.refused())),
            },
            "exhausted" => match answer.detail_u64("epoch") {
                Some(epoch) => ResumeError::EpochExhausted { run, epoch },
                None => ResumeError::Write(WriteError::Remote(answer.refused())),
            },
            "fenced" | "conflict" | "deleted" => {
                ResumeError::Append(Failure::Answer(Box::new(answer)).append(key, 0, 0))
            }
            _ => ResumeError::Write(Failure::Answer(Box::new(answer)).write()),
        }
    }

    /// A fork's (fanout's, rewind's) failure.
    pub(crate) fn fork(self, key: &RunKey) -> ForkError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return ForkError::Write(WriteError::Remote(error)),
        };
        match answer.code.as_str() {
            "seq_out_of_range" => match (answer.seq, answer.detail_u64("last")) {
                (Some(seq), Some(last)) => ForkError::SeqOutOfRange {
                    run: answer.run_or(key),
                    seq,
                    last,
                },
                _ => ForkError::Write(WriteError::Remote(answer.refused())),
            },
            "already_exists" => ForkError::AlreadyExists {
                run: answer.run_or(key),
            },
            "not_found" | "exhausted" => ForkError::Read(Failure::Answer(Box::new(answer)).read(Some(key))),
            _ => ForkError::Write(Failure::Answer(Box::new(answer)).write()),
        }
    }

    /// A purge's failure.
    pub(crate) fn purge(self) -> PurgeError {
        match self {
            Failure::Answer(answer) if answer.code == "has_live_fork" => {
                let child = answer
                    .details
                    .get("child")
                    .and_then(|child| serde_json::from_value::<RunKey>(child.clone()).ok());
                match (answer.run.clone(), child) {
                    (Some(run), Some(child)) => PurgeError::HasLiveFork { run, child },
                    _ => PurgeError::Write(WriteError::Remote(answer.refused())),
                }
            }
            failure => PurgeError::Write(failure.write()),
        }
    }

    /// An operator action's failure.
    pub(crate) fn operator(self, key: &RunKey, action: &'static str) -> OperatorError {
        let answer = match self {
            Failure::Answer(answer) => *answer,
            Failure::Transport(error) => return OperatorError::Append(AppendError::Remote(error)),
        };
        let run = answer.run_or(key);
        match answer.code.as_str() {
            "not_found" => OperatorError::NotFound { run },
            "not_allowed" | "refused" if answer.detail_str("rule").is_some() => {
                match answer.detail_str("status").as_deref().and_then(status_named) {
                    Some(status) => OperatorError::Refused {
                        run,
                        action,
                        status,
                        rule: answer.detail_str("rule").unwrap_or_default(),
                    },
                    None => OperatorError::Append(AppendError::Remote(answer.refused())),
                }
            }
            _ => OperatorError::Append(Failure::Answer(Box::new(answer)).append(key, 0, 0)),
        }
    }

    /// A subscription's failure.
    pub(crate) fn subscribe(self, key: Option<&RunKey>) -> SubscribeError {
        match self {
            Failure::Answer(answer) if answer.code == "poisoned" => SubscribeError::Poisoned {
                source: answer.store_failure(),
            },
            Failure::Answer(answer) if answer.code == "writer_stopped" => SubscribeError::WriterStopped,
            failure => SubscribeError::Read(failure.read(key)),
        }
    }
}

/// The remote error an append error carries, or the append error as a refusal.
fn remote_of(error: AppendError) -> RemoteError {
    match error {
        AppendError::Remote(error) => error,
        other => RemoteError::Protocol {
            endpoint: String::new(),
            detail: other.to_string(),
        },
    }
}

/// A status by its wire name.
pub(crate) fn status_named(name: &str) -> Option<RunStatus> {
    [
        RunStatus::Running,
        RunStatus::Interrupted,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Superseded,
    ]
    .into_iter()
    .find(|status| status.as_str() == name)
}

/// A `meta` field a resume expectation names.
fn meta_field(name: &str) -> Option<&'static str> {
    ["backend", "model", "agent_name"]
        .into_iter()
        .find(|field| *field == name)
}
