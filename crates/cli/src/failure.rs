//! Stable error codes and exit statuses: every error the binary reports has
//! one [`Code`], printed in `--json` errors and mapped to one exit status.
//!
//! Invariants: a code's name and exit status never change (scripts rely on
//! them); each code has its own exit status; an error is classified by the
//! first [`Coded`] error in its chain, else by the library error it wraps,
//! else `other`.

use std::fmt;
use std::io;

use runjournal::{AppendError, ImportError, OpenError, OperatorError, ReadError, ResumeError, StoreError};

/// What kind of failure an error is: its stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// A malformed command line (unknown flag, missing or bad argument).
    Usage,
    /// No such database, run or seq.
    NotFound,
    /// A corrupt event or snapshot, or a chain that does not verify.
    Integrity,
    /// The database is held by another process.
    Locked,
    /// The run was resumed by a newer writer: this one may not write.
    Fenced,
    /// The run moved on (expected seq mismatch, key exists).
    Conflict,
    /// The run's status refuses the action (completed, failed, superseded…).
    Finished,
    /// A bad input: an import line, an event, a key, a value.
    Invalid,
    /// Reading or writing a file failed.
    Io,
    /// Anything else.
    Other,
}

impl Code {
    /// Every code, in exit-status order.
    #[cfg(test)]
    pub const ALL: [Code; 10] = [
        Code::Other,
        Code::Usage,
        Code::NotFound,
        Code::Integrity,
        Code::Locked,
        Code::Fenced,
        Code::Conflict,
        Code::Finished,
        Code::Invalid,
        Code::Io,
    ];

    /// The code's stable name, as `--json` errors print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Usage => "usage",
            Code::NotFound => "not_found",
            Code::Integrity => "integrity",
            Code::Locked => "locked",
            Code::Fenced => "fenced",
            Code::Conflict => "conflict",
            Code::Finished => "finished",
            Code::Invalid => "invalid",
            Code::Io => "io",
            Code::Other => "other",
        }
    }

    /// The process exit status for this code.
    pub fn exit_status(self) -> u8 {
        match self {
            Code::Other => 1,
            Code::Usage => 2,
            Code::NotFound => 3,
            Code::Integrity => 4,
            Code::Locked => 5,
            Code::Fenced => 6,
            Code::Conflict => 7,
            Code::Finished => 8,
            Code::Invalid => 9,
            Code::Io => 10,
        }
    }
}

/// An error message with its code.
#[derive(Debug)]
pub struct Coded {
    /// The code.
    pub code: Code,
    /// The one-line message.
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error with this code and message.
pub fn coded(code: Code, message: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.to_string(),
    })
}

/// The code of an error: the first coded error in its chain, else the
/// library error it wraps, else `other`.
pub fn classify(error: &anyhow::Error) -> Code {
    error
        .chain()
        .find_map(|cause| {
            if let Some(coded) = cause.downcast_ref::<Coded>() {
                return Some(coded.code);
            }
            library_code(cause)
        })
        .unwrap_or(Code::Other)
}

/// The code of a library error, when `cause` is one.
fn library_code(cause: &(dyn std::error::Error + 'static)) -> Option<Code> {
    if let Some(error) = cause.downcast_ref::<runjournal::RemoteError>() {
        return Some(remote_code(error));
    }
    if let Some(runjournal::WriteError::Remote(error)) = cause.downcast_ref::<runjournal::WriteError>() {
        return Some(remote_code(error));
    }
    if let Some(error) = cause.downcast_ref::<ReadError>() {
        return Some(read_code(error));
    }
    if let Some(error) = cause.downcast_ref::<AppendError>() {
        return Some(append_code(error));
    }
    if let Some(error) = cause.downcast_ref::<ResumeError>() {
        return Some(match error {
            ResumeError::NotFound { .. } => Code::NotFound,
            ResumeError::Finished { .. } => Code::Finished,
            ResumeError::Read(error) => read_code(error),
            ResumeError::Append(error) => append_code(error),
            _ => Code::Other,
        });
    }
    if let Some(error) = cause.downcast_ref::<OperatorError>() {
        return Some(match error {
            OperatorError::Refused { .. } => Code::Finished,
            OperatorError::NotFound { .. } => Code::NotFound,
            OperatorError::Read(error) => read_code(error),
            OperatorError::Append(error) => append_code(error),
            _ => Code::Other,
        });
    }
    if let Some(error) = cause.downcast_ref::<ImportError>() {
        return Some(import_code(error));
    }
    if let Some(OpenError::Store(error)) = cause.downcast_ref::<OpenError>() {
        return Some(store_code(error));
    }
    if let Some(error) = cause.downcast_ref::<StoreError>() {
        return Some(store_code(error));
    }
    if cause.downcast_ref::<runjournal::KeyError>().is_some() {
        return Some(Code::Invalid);
    }
    cause.downcast_ref::<io::Error>().map(|_| Code::Io)
}

/// The code of a refused import: a bad line of the input is `invalid`.
pub fn import_code(error: &ImportError) -> Code {
    match error {
        ImportError::Read { .. } => Code::Io,
        ImportError::AlreadyExists { .. } => Code::Conflict,
        ImportError::Database(error) => read_code(error),
        ImportError::Staging(error) => store_code(error),
        ImportError::Write(_) => Code::Other,
        // Every other refusal names a line of the input that is wrong.
        _ => Code::Invalid,
    }
}

fn read_code(error: &ReadError) -> Code {
    match error {
        ReadError::NotFound { .. } | ReadError::SeqOutOfRange { .. } => Code::NotFound,
        ReadError::Integrity(_) | ReadError::SnapshotCorrupt { .. } | ReadError::ParentMissing { .. } => {
            Code::Integrity
        }
        ReadError::Store(error) => store_code(error),
        ReadError::Remote(error) => remote_code(error),
        _ => Code::Other,
    }
}

/// The code of a served journal's answer this client keeps as a wire code:
/// the code the same error has embedded.
fn remote_code(error: &runjournal::RemoteError) -> Code {
    match error.code() {
        "not_found" | "seq_out_of_range" => Code::NotFound,
        "integrity" | "snapshot_corrupt" | "parent_missing" => Code::Integrity,
        "fenced" => Code::Fenced,
        "conflict" => Code::Conflict,
        "finished" | "superseded" | "out_of_order" | "refused" | "not_allowed" => Code::Finished,
        "invalid_event" | "invalid_key" | "too_large" | "unencodable" | "empty_batch" | "parse" | "seq_gap"
        | "hash_mismatch" | "invalid_request" | "payload_too_large" => Code::Invalid,
        "locked" => Code::Locked,
        "io" => Code::Io,
        _ => Code::Other,
    }
}

fn append_code(error: &AppendError) -> Code {
    match error {
        AppendError::Fenced { .. } => Code::Fenced,
        AppendError::Conflict { .. } => Code::Conflict,
        AppendError::OutOfOrder { .. } | AppendError::Refused { .. } => Code::Finished,
        AppendError::InvalidEvent { .. } | AppendError::EventTooLarge { .. } => Code::Invalid,
        AppendError::Remote(error) => remote_code(error),
        _ => Code::Other,
    }
}

fn store_code(error: &StoreError) -> Code {
    match error {
        StoreError::Missing { .. } => Code::NotFound,
        StoreError::Locked { .. } => Code::Locked,
        StoreError::Corrupt { .. } => Code::Integrity,
        StoreError::Io { .. } => Code::Io,
        _ => Code::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_exit_status_and_name() {
        let mut statuses: Vec<u8> = Code::ALL.iter().map(|code| code.exit_status()).collect();
        statuses.dedup();
        assert_eq!(statuses, (1..=10).collect::<Vec<u8>>());
        let mut names: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
    }

    #[test]
    fn a_coded_error_keeps_its_code_under_context() {
        let error = coded(Code::Locked, "held").context("opening");
        assert_eq!(classify(&error), Code::Locked);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Code::Other);
    }
}
