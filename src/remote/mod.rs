//! The remote backend: a [`Journal`](crate::Journal) connected to the process
//! that holds the database and serves it (docs/http-api.md).
//!
//! Invariants:
//! - Every request runs on the client's own tokio runtime (its own threads),
//!   so a blocking method works from any thread, also one of the caller's
//!   runtime, and an async one awaits without blocking.
//! - Connections are kept alive and reused, at most
//!   [`ConnectOptions::max_connections`] at once; a caller waits for one.
//! - A request that provably never reached the server (no connection, or the
//!   connection refused it before sending) is retried once on a fresh
//!   connection. A write whose connection failed after it was sent is
//!   [`RemoteError::OutcomeUnknown`], never a success.
//! - An error answer becomes the same typed error the embedded journal
//!   returns (by its wire `code` and `details`); one this client cannot
//!   rebuild keeps its code in [`RemoteError::Refused`].

mod client;
mod coalesce;
mod error;
mod journal;
mod run;
mod subscription;

pub(crate) use client::Client;
pub use error::{Refusal, RemoteError};
pub(crate) use run::RemoteRun;
pub(crate) use subscription::RemoteSubscription;

use std::time::Duration;

use crate::options::Options;

/// How [`Journal::connect`](crate::Journal::connect) connects.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The bearer token for a TCP address (the server's token file's
    /// content); not used on the Unix socket, whose file mode is the access control.
    pub token: Option<String>,
    /// The most connections open to the server at once (default 64); more
    /// concurrent calls wait for one. Concurrent durable appends share a
    /// group commit only while each has a connection.
    pub max_connections: usize,
    /// The longest a request (not a subscription) waits for its answer
    /// (default 5 minutes); past it, a write's outcome is unknown.
    pub timeout: Duration,
    /// What [`Journal::options`](crate::Journal::options) returns for the
    /// connected handle; and `durability`, sent with every write unless it is
    /// the owner's (`durability_override` says).
    pub options: Options,
    /// When set, every write asks for this durability instead of the
    /// owner's default.
    pub durability_override: Option<crate::Durability>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            token: None,
            max_connections: 64,
            timeout: Duration::from_secs(300),
            options: Options::default(),
            durability_override: None,
        }
    }
}

impl ConnectOptions {
    /// The default connect options with `token` for a TCP address.
    #[must_use]
    pub fn with_token(self, token: impl Into<String>) -> Self {
        ConnectOptions {
            token: Some(token.into().trim().to_string()),
            ..self
        }
    }

    /// The connect options `Journal::open` falls back to with
    /// [`Options::connect_if_held`]: the owner's durability, `options` as the
    /// handle's options.
    pub(crate) fn from_options(options: &Options) -> Self {
        ConnectOptions {
            options: options.clone(),
            ..ConnectOptions::default()
        }
    }
}
