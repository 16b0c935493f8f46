//! `OpenTelemetry` export (docs/otlp.md): a run's history as one OTLP trace
//! following the `GenAI` semantic conventions, written as OTLP/JSON or posted to
//! an OTLP/HTTP collector.
//!
//! Invariants: the trace is built from `opentelemetry-proto` types and
//! serialized by their serde form, never by hand; trace and span ids are
//! derived from the run key and history positions only ([`ids`]), so a
//! re-export yields the same ids; message content is left out unless asked for.

mod attrs;
pub mod ids;
mod post;
mod trace;

pub use post::post;
pub use trace::{request, RunTrace};
