//! `runjournal._native`: the Python extension module of runjournal.
//!
//! The Python package (`python/runjournal/`) is the public API; this module
//! is its engine. Values cross the boundary as JSON text (the same serde
//! form the CLI and the served API use), so the Python objects and their
//! `.to_dict()` equal the JSON of the Rust types.
//!
//! Invariants:
//! - Every call that may block (a durable append waiting for group commit, a
//!   read, verify, a subscription's wait) runs with the GIL released
//!   ([`Python::detach`]), so Python threads append concurrently and share
//!   syncs.
//! - A journal is usable only in the process that opened it: after
//!   `os.fork()` every call in the child raises `ForkedProcessError`, and the
//!   child never waits on the parent's writer thread (dropping the handle in
//!   the child leaks it instead of closing it).
//! - Every Rust error becomes the exception its stable `code()` names, with
//!   `code`, `run` and `seq` attributes.

mod errors;
mod journal;
mod run;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(module)?;
    module.add_class::<journal::Journal>()?;
    module.add_class::<run::Run>()?;
    module.add_class::<journal::Subscription>()?;
    Ok(())
}
