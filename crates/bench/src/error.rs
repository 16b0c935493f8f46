//! [`BenchError`]: why a bench run stopped. Every variant names the operation
//! that failed.

/// A failure that stops a bench run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The configuration cannot be run.
    #[error("invalid bench configuration: {0}")]
    Config(String),
    /// A file-system operation failed.
    #[error("{operation} failed: {source}")]
    Io {
        /// What the bench was doing.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Raw sled access failed.
    #[error("sled failed during {operation}: {source}")]
    Sled {
        /// What the bench was doing.
        operation: &'static str,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// The journal failed.
    #[error("the journal failed during {operation}: {source}")]
    Journal {
        /// What the bench was doing.
        operation: &'static str,
        /// The journal's error.
        #[source]
        source: Box<runjournal::Error>,
    },
    /// Serving the journal on its socket failed.
    #[error("serving the journal failed during {operation}: {source}")]
    Serve {
        /// What the bench was doing.
        operation: &'static str,
        /// The server's error.
        #[source]
        source: runjournal::ServeError,
    },
    /// SQLite failed.
    #[error("SQLite failed during {operation}: {source}")]
    Sqlite {
        /// What the bench was doing.
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A workload's result was not what it wrote (a bench that measures a
    /// wrong answer measures nothing).
    #[error("{workload}: {detail}")]
    Check {
        /// The workload.
        workload: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A writer thread panicked.
    #[error("a writer thread of {workload} panicked")]
    Panicked {
        /// The workload.
        workload: &'static str,
    },
}

pub(crate) fn io_error(operation: &'static str) -> impl FnOnce(std::io::Error) -> BenchError {
    move |source| BenchError::Io { operation, source }
}

pub(crate) fn sled_error(operation: &'static str) -> impl FnOnce(sled::Error) -> BenchError {
    move |source| BenchError::Sled { operation, source }
}

pub(crate) fn journal_error<E: Into<runjournal::Error>>(operation: &'static str) -> impl FnOnce(E) -> BenchError {
    move |source| BenchError::Journal {
        operation,
        source: Box::new(source.into()),
    }
}

pub(crate) fn sqlite_error(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> BenchError {
    move |source| BenchError::Sqlite { operation, source }
}
