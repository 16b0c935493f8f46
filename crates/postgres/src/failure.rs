//! How a driver error becomes a [`StoreError`]: what was applied is decided
//! here, once. Before the commit nothing is applied (a serialization failure
//! or deadlock may be retried; a lost connection is `Disconnected`); at the
//! commit, only an answer from the server that rolls back is definite, and
//! anything else is `CommitOutcomeUnknown`.

use runjournal_core::{KeyExists, StoreError};

/// A failure inside a transaction body.
pub(crate) enum TxError {
    /// A statement failed.
    Sql(postgres::Error),
    /// The store decided the operation fails (corruption found inside it).
    Store(StoreError),
    /// A create found its key taken: roll back and report it.
    KeyExists(KeyExists),
}

impl From<postgres::Error> for TxError {
    fn from(error: postgres::Error) -> Self {
        TxError::Sql(error)
    }
}

/// What a failed statement or commit means for the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Rolled back by concurrency control (40001, 40P01): may be retried.
    Retry,
    /// The connection is gone.
    ConnectionLost,
    /// The server refused it and rolled back.
    Refused,
}

/// The verdict on a failure with SQLSTATE `code` (none for a client-side
/// failure), `closed` telling whether the driver saw the connection close.
pub(crate) fn verdict(code: Option<&str>, closed: bool) -> Verdict {
    match code {
        _ if closed => Verdict::ConnectionLost,
        Some("40001" | "40P01") => Verdict::Retry,
        // Class 08: connection exception; 57P: the server is shutting the
        // session down (terminated, crashed, not accepting connections);
        // 40003: the statement's completion is unknown (CockroachDB's
        // ambiguous result).
        Some(code) if code.starts_with("08") || code.starts_with("57P") || code == "40003" => Verdict::ConnectionLost,
        Some(_) => Verdict::Refused,
        None => Verdict::ConnectionLost,
    }
}

/// The verdict on a driver error. An error with no SQLSTATE is a client-side
/// one: I/O, a closed connection, or a value that did not convert; the last
/// is the only one not about the connection.
pub(crate) fn verdict_of(error: &postgres::Error) -> Verdict {
    let code = error.code().map(postgres::error::SqlState::code);
    if code.is_none() && !error.is_closed() && io_source(error).is_none() && is_conversion(error) {
        return Verdict::Refused;
    }
    verdict(code, error.is_closed())
}

fn io_source(error: &postgres::Error) -> Option<&std::io::Error> {
    std::error::Error::source(error).and_then(|source| source.downcast_ref::<std::io::Error>())
}

fn is_conversion(error: &postgres::Error) -> bool {
    let text = error.to_string();
    text.starts_with("error serializing") || text.starts_with("error deserializing")
}

/// The message of a driver error, with the server's SQLSTATE and detail.
pub(crate) fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("SQLSTATE {}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(" (");
                text.push_str(detail);
                text.push(')');
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// A statement before the commit failed: nothing of the transaction applied.
pub(crate) fn before_commit(operation: &'static str, error: &postgres::Error) -> StoreError {
    match verdict_of(error) {
        Verdict::ConnectionLost => StoreError::Disconnected {
            operation,
            detail: describe(error),
        },
        Verdict::Retry | Verdict::Refused => StoreError::Backend {
            operation,
            detail: describe(error),
        },
    }
}

/// The commit failed: rolled back only if the server said so.
pub(crate) fn at_commit(operation: &'static str, error: &postgres::Error) -> StoreError {
    match verdict_of(error) {
        Verdict::Refused | Verdict::Retry => StoreError::Backend {
            operation,
            detail: format!("the commit was refused and rolled back: {}", describe(error)),
        },
        Verdict::ConnectionLost => StoreError::CommitOutcomeUnknown {
            operation,
            detail: describe(error),
        },
    }
}

/// A value read from the database that breaks the schema's rules.
pub(crate) fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_failures_and_deadlocks_are_retried() {
        assert_eq!(verdict(Some("40001"), false), Verdict::Retry);
        assert_eq!(verdict(Some("40P01"), false), Verdict::Retry);
    }

    #[test]
    fn connection_exceptions_and_terminated_sessions_are_connection_losses() {
        for code in ["08006", "08003", "57P01", "57P02", "57P03", "40003"] {
            assert_eq!(verdict(Some(code), false), Verdict::ConnectionLost, "{code}");
        }
        assert_eq!(verdict(None, false), Verdict::ConnectionLost, "an I/O failure");
        assert_eq!(verdict(Some("23505"), true), Verdict::ConnectionLost, "closed wins");
    }

    #[test]
    fn other_server_errors_are_definite_refusals() {
        for code in ["23505", "23503", "42P01", "53100"] {
            assert_eq!(verdict(Some(code), false), Verdict::Refused, "{code}");
        }
    }
}
