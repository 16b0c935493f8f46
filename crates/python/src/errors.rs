//! Rust errors as Python exceptions: the class is chosen by the error's
//! stable `code()`, and every exception carries `code`, `run` (a
//! `(goal, episode, agent)` tuple or `None`) and `seq` (or `None`).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use runjournal::{Error as JournalError, RunKey};

create_exception!(runjournal, Error, PyException, "Every runjournal error.");
create_exception!(runjournal, FencedError, Error, "The run was resumed by a newer handle.");
create_exception!(
    runjournal,
    ConflictError,
    Error,
    "The run's next seq is not the expected one."
);
create_exception!(runjournal, NotFoundError, Error, "No such run.");
create_exception!(runjournal, AlreadyExistsError, Error, "The run exists already.");
create_exception!(runjournal, FinishedError, Error, "The run is finished or superseded.");
create_exception!(
    runjournal,
    MismatchError,
    Error,
    "The run's meta differs from the expected one."
);
create_exception!(runjournal, IntegrityError, Error, "Stored data is corrupt or missing.");
create_exception!(
    runjournal,
    InvalidError,
    Error,
    "A key, an event or a batch breaks the format's rules."
);
create_exception!(
    runjournal,
    OutOfOrderError,
    Error,
    "An event breaks the run's ordering rules."
);
create_exception!(runjournal, RefusedError, Error, "A typed append the fold would ignore.");
create_exception!(
    runjournal,
    StorageError,
    Error,
    "Storage failed, or the journal is poisoned or stopped."
);
create_exception!(runjournal, ClosedError, Error, "The journal is closed.");
create_exception!(runjournal, LaggedError, Error, "A subscriber fell behind.");
create_exception!(
    runjournal,
    RemoteError,
    Error,
    "The journal's server could not be reached, or a write's outcome is unknown."
);
create_exception!(
    runjournal,
    ForkedProcessError,
    Error,
    "The journal was opened by another process (os.fork())."
);

/// Adds the exception classes to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("Error", py.get_type::<Error>())?;
    module.add("FencedError", py.get_type::<FencedError>())?;
    module.add("ConflictError", py.get_type::<ConflictError>())?;
    module.add("NotFoundError", py.get_type::<NotFoundError>())?;
    module.add("AlreadyExistsError", py.get_type::<AlreadyExistsError>())?;
    module.add("FinishedError", py.get_type::<FinishedError>())?;
    module.add("MismatchError", py.get_type::<MismatchError>())?;
    module.add("IntegrityError", py.get_type::<IntegrityError>())?;
    module.add("InvalidError", py.get_type::<InvalidError>())?;
    module.add("OutOfOrderError", py.get_type::<OutOfOrderError>())?;
    module.add("RefusedError", py.get_type::<RefusedError>())?;
    module.add("StorageError", py.get_type::<StorageError>())?;
    module.add("ClosedError", py.get_type::<ClosedError>())?;
    module.add("LaggedError", py.get_type::<LaggedError>())?;
    module.add("ForkedProcessError", py.get_type::<ForkedProcessError>())?;
    module.add("RemoteError", py.get_type::<RemoteError>())?;
    Ok(())
}

/// A Python exception for a runjournal error.
pub(crate) fn to_py(error: impl Into<JournalError>) -> PyErr {
    let error = error.into();
    let code = error.code();
    let message = error.to_string();
    let err = match code {
        "fenced" => FencedError::new_err(message),
        "conflict" => ConflictError::new_err(message),
        "not_found" => NotFoundError::new_err(message),
        "already_exists" => AlreadyExistsError::new_err(message),
        "finished" | "superseded" => FinishedError::new_err(message),
        "mismatch" => MismatchError::new_err(message),
        "integrity" | "snapshot_corrupt" | "parent_missing" => IntegrityError::new_err(message),
        "invalid_key" | "invalid_event" | "too_large" | "unencodable" | "empty_batch" | "seq_out_of_range"
        | "exhausted" => InvalidError::new_err(message),
        "out_of_order" => OutOfOrderError::new_err(message),
        "refused" => RefusedError::new_err(message),
        "closed" => ClosedError::new_err(message),
        "lagged" => LaggedError::new_err(message),
        "unreachable" | "outcome_unknown" | "protocol" | "unauthorized" | "busy" | "timeout" => {
            RemoteError::new_err(message)
        }
        _ if matches!(error, JournalError::Integrity(_)) => IntegrityError::new_err(message),
        _ => StorageError::new_err(message),
    };
    Python::attach(|py| {
        annotate(py, &err, code, run_of(&error), seq_of(&error));
    });
    err
}

/// A Python exception of class `E` with a code and no run.
pub(crate) fn plain<E: pyo3::PyTypeInfo>(code: &str, message: String) -> PyErr {
    let err = PyErr::new::<E, _>(message);
    Python::attach(|py| annotate(py, &err, code, None, None));
    err
}

/// Sets `code`, `run` and `seq` on the exception (best effort: an exception
/// object refusing attributes keeps its message).
fn annotate(py: Python<'_>, err: &PyErr, code: &str, run: Option<&RunKey>, seq: Option<u64>) {
    let value = err.value(py);
    let run = run.map(|run| (run.goal.clone(), run.episode, run.agent.clone()));
    drop(value.setattr("code", code));
    drop(value.setattr("run", run));
    drop(value.setattr("seq", seq));
}

/// The run an error names, if any.
fn run_of(error: &JournalError) -> Option<&RunKey> {
    match error {
        JournalError::InvalidEvent { run, .. }
        | JournalError::EventTooLarge { run, .. }
        | JournalError::Unencodable { run, .. }
        | JournalError::OutOfOrder { run, .. }
        | JournalError::EmptyBatch { run, .. }
        | JournalError::Refused { run, .. }
        | JournalError::AlreadyExists { run }
        | JournalError::NotFound { run, .. }
        | JournalError::Finished { run, .. }
        | JournalError::EpochExhausted { run, .. }
        | JournalError::Superseded { run }
        | JournalError::Mismatch { run, .. }
        | JournalError::Deleted { run, .. }
        | JournalError::SeqOutOfRange { run, .. }
        | JournalError::HasLiveFork { run, .. }
        | JournalError::Fenced { run, .. }
        | JournalError::Conflict { run, .. }
        | JournalError::Abandoned { run, .. }
        | JournalError::SnapshotCorrupt { run, .. }
        | JournalError::ParentMissing { run, .. } => Some(run),
        JournalError::Storage { run, .. } => run.as_ref(),
        JournalError::Lagged(point) => Some(&point.run),
        JournalError::Integrity(integrity) => Some(&integrity.run),
        JournalError::Remote(runjournal::RemoteError::Refused(refusal)) => refusal.run.as_ref(),
        _ => None,
    }
}

/// The seq an error names, if any (for a conflict: the seq the run is at).
fn seq_of(error: &JournalError) -> Option<u64> {
    match error {
        JournalError::InvalidEvent { seq, .. }
        | JournalError::EventTooLarge { seq, .. }
        | JournalError::Unencodable { seq, .. }
        | JournalError::OutOfOrder { seq, .. }
        | JournalError::EmptyBatch { seq, .. }
        | JournalError::Refused { seq, .. }
        | JournalError::Deleted { seq, .. }
        | JournalError::SeqOutOfRange { seq, .. }
        | JournalError::Fenced { seq, .. }
        | JournalError::Abandoned { seq, .. }
        | JournalError::SnapshotCorrupt { seq, .. } => Some(*seq),
        JournalError::Conflict { actual, .. } => Some(*actual),
        JournalError::Storage { seq, .. } => *seq,
        JournalError::Lagged(point) => Some(point.seq),
        JournalError::Integrity(integrity) => Some(integrity.seq),
        JournalError::Remote(runjournal::RemoteError::Refused(refusal)) => refusal.seq,
        _ => None,
    }
}
