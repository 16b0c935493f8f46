//! The served API (docs/http-api.md): an owner process serves its journal
//! over HTTP/1.1 on a Unix socket in the database directory and, with an
//! explicit address and a bearer token, on TCP.
//!
//! Invariants:
//! - Every write goes through the journal's one writer thread, so group
//!   commit spans every client, and fencing and expected-seq checks are the
//!   embedded API's.
//! - The socket is never reachable by another user: it is bound inside a
//!   fresh 0700 directory, set to 0600, then renamed into place. A live
//!   socket (another owner answers) is an error; a stale one is replaced. It
//!   is removed when the handle closes, if it is still this server's.
//! - TCP is never served without a token; the token is compared in constant time.
//! - No request can hold the server: headers are read within
//!   [`ServeOptions::header_timeout`], bodies are bounded and read within
//!   [`ServeOptions::body_timeout`], connections and subscriptions are
//!   bounded, and blocking journal calls run on the blocking pool. A slow
//!   subscriber lags (its own buffer), never the writer.
//! - On close: no new connection is accepted, subscriptions end with
//!   `end: shutdown`, in-flight requests finish (within
//!   [`ServeOptions::shutdown_grace`]), then the socket is removed.

mod api;
mod batch;
mod connection;
mod counters;
mod handles;
mod reads;
mod routes;
mod socket;
mod subscribe;
mod writes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Journal;

pub use routes::{Endpoint, Route, ROUTES};

/// How a journal is served ([`Journal::serve`]).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The Unix socket; default `<database directory>/runjournal.sock`.
    pub socket: Option<PathBuf>,
    /// A TCP address to serve as well (needs [`ServeOptions::token_file`]).
    pub listen: Option<SocketAddr>,
    /// The file holding the bearer token TCP clients must send.
    pub token_file: Option<PathBuf>,
    /// The largest body of a request other than an import; default the
    /// journal's `max_event_size` × 64 + 64 KiB.
    pub max_body_bytes: Option<usize>,
    /// The largest import body (streamed, never held whole); default 256 MiB.
    pub max_import_bytes: u64,
    /// The largest request head (start line and headers); default 16 KiB.
    pub max_header_bytes: usize,
    /// How long a connection may take to send a request's headers, counted
    /// from when it waits for them (so also how long an idle keep-alive
    /// connection stays open); default 10 s.
    pub header_timeout: Duration,
    /// How long a request's body may take between two chunks; default 10 s.
    pub body_timeout: Duration,
    /// Connections served at once; more are answered `busy` and closed. Default 256.
    pub max_connections: usize,
    /// Subscriptions open at once; more are answered `busy`. Default 64.
    pub max_subscriptions: usize,
    /// Live events buffered per subscriber before it lags; default 1024.
    pub subscriber_buffer: usize,
    /// Interval of an SSE stream's keep-alive comments; default 15 s.
    pub keep_alive: Duration,
    /// Write handles kept for clients' runs; default 1024.
    pub handle_cache: usize,
    /// The server's async worker threads; default 2.
    pub worker_threads: usize,
    /// How long close waits for in-flight requests; default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            socket: None,
            listen: None,
            token_file: None,
            max_body_bytes: None,
            max_import_bytes: 256 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_subscriptions: 64,
            subscriber_buffer: 1024,
            keep_alive: Duration::from_secs(15),
            handle_cache: 1024,
            worker_threads: 2,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ServeOptions {
    /// The default options, also serving TCP on `listen` with the token in `token_file`.
    #[must_use]
    pub fn with_tcp(self, listen: SocketAddr, token_file: impl Into<PathBuf>) -> Self {
        ServeOptions {
            listen: Some(listen),
            token_file: Some(token_file.into()),
            ..self
        }
    }
}

/// Serving could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The journal was not opened from a path and no socket was named.
    #[error(
        "the journal has no database directory (it was opened over a store); name the socket in ServeOptions::socket"
    )]
    NoSocketPath,
    /// Another owner answers on the socket.
    #[error("{path}: another process is serving this database (its socket answers)")]
    AlreadyServed {
        /// The socket.
        path: PathBuf,
    },
    /// Something that is not a socket is where the socket goes.
    #[error("{path}: exists and is not a socket; remove it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// TCP was asked for without a token file, or the token file is empty.
    #[error("TCP needs a bearer token: {reason}")]
    NoToken {
        /// What is missing.
        reason: String,
    },
    /// A listener could not be set up.
    #[error("{operation} {target}: {source}")]
    Io {
        /// What failed (`bind`, `read token file`, …).
        operation: &'static str,
        /// The path or address.
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ServeError {
    /// The error's stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::NoSocketPath => "no_socket_path",
            ServeError::AlreadyServed { .. } => "already_served",
            ServeError::NotASocket { .. } => "not_a_socket",
            ServeError::NoToken { .. } => "no_token",
            ServeError::Io { .. } => "io",
        }
    }
}

/// A running server. Closing it (or dropping it) stops accepting, ends
/// subscriptions with `end: shutdown`, lets in-flight requests finish and
/// removes the socket.
pub struct ServeHandle {
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    socket: Option<socket::BoundSocket>,
    tcp: Option<SocketAddr>,
}

impl ServeHandle {
    /// The Unix socket served.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(|socket| socket.path.as_path())
    }

    /// The TCP address served (with the port the OS chose for port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Stops serving and waits until the server is down and the socket removed.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Nobody listening means the server is already down.
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the server thread panicked");
            }
        }
        if let Some(socket) = self.socket.take() {
            socket.remove();
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for ServeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeHandle")
            .field("socket", &self.socket_path())
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

/// The server a journal opened with [`crate::Options::serve`] owns.
///
/// Invariant: only the caller's handles hold it (`Local::serving`); the
/// server's own journal is an unserved clone. Dropping the last holder, or
/// [`Serving::stop`] (the journal's close), stops the server and removes
/// its socket.
pub(crate) struct Serving {
    handle: Mutex<Option<ServeHandle>>,
    socket: Option<PathBuf>,
    tcp: Option<SocketAddr>,
}

impl Serving {
    pub(crate) fn new(handle: ServeHandle) -> Serving {
        Serving {
            socket: handle.socket_path().map(Path::to_path_buf),
            tcp: handle.tcp_addr(),
            handle: Mutex::new(Some(handle)),
        }
    }

    /// The Unix socket served.
    pub(crate) fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The TCP address served.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Stops the server now (also while other handles hold this).
    pub(crate) fn stop(&self) {
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.close();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The default body bound of a journal with `max_event_size`.
pub(crate) fn default_body_limit(max_event_size: usize) -> usize {
    max_event_size.saturating_mul(64).saturating_add(64 * 1024)
}

impl Journal {
    /// Serves this journal (docs/http-api.md) on its Unix socket and, with
    /// [`ServeOptions::listen`], on TCP; returns once listening. The server
    /// keeps the store open until the handle is closed or dropped, but not a
    /// server of [`crate::Options::serve`] running: it holds the journal
    /// without that server's guard.
    pub fn serve(&self, options: ServeOptions) -> Result<ServeHandle, ServeError> {
        let socket_path = match (&options.socket, self.path()) {
            (Some(path), _) => path.clone(),
            (None, Some(dir)) => dir.join(crate::wire::SOCKET_NAME),
            (None, None) => return Err(ServeError::NoSocketPath),
        };
        let token = match (&options.listen, &options.token_file) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ServeError::NoToken {
                    reason: "--listen needs --token-file".into(),
                })
            }
            (Some(_), Some(file)) => Some(read_token(file)?),
        };
        let (bound, std_listener) = socket::bind(&socket_path)?;
        let tcp_listener = match options.listen {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Io {
                    operation: "bind",
                    target: addr.to_string(),
                    source,
                })?;
                Some(listener)
            }
            None => None,
        };
        let tcp = match &tcp_listener {
            Some(listener) => Some(listener.local_addr().map_err(|source| ServeError::Io {
                operation: "local address of",
                target: format!("{:?}", options.listen),
                source,
            })?),
            None => None,
        };
        let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
        let state = Arc::new(api::ServerState::new(
            self.unserved(),
            options,
            token,
            shutdown_receiver,
        ));
        let thread = connection::start(state, std_listener, tcp_listener).map_err(|source| ServeError::Io {
            operation: "start the server thread for",
            target: socket_path.display().to_string(),
            source,
        })?;
        Ok(ServeHandle {
            shutdown,
            thread: Some(thread),
            socket: Some(bound),
            tcp,
        })
    }
}

/// The token in `file`, trimmed; an empty one is refused.
fn read_token(file: &Path) -> Result<Vec<u8>, ServeError> {
    let text = std::fs::read_to_string(file).map_err(|source| ServeError::Io {
        operation: "read the token file",
        target: file.display().to_string(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ServeError::NoToken {
            reason: format!("{} is empty", file.display()),
        });
    }
    Ok(token.as_bytes().to_vec())
}

/// Whether `given` equals `expected`, in time that depends only on their lengths.
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (index, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(index).copied().unwrap_or(!byte));
    }
    difference == 0
}

/// Serves one in-memory connection whose client sends `input` and then
/// closes its side, and returns every byte the server answered: the request
/// handling without a socket, for the fuzz target. A subscription still
/// streaming half a second after the input is ended as at shutdown.
#[doc(hidden)]
pub fn serve_bytes(journal: &Journal, options: ServeOptions, input: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let input = input.to_vec();
    runtime.block_on(async move {
        let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
        let state = Arc::new(api::ServerState::new(
            journal.unserved(),
            options,
            None,
            shutdown_receiver,
        ));
        let router = routes::router(state.clone());
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut serving = tokio::spawn(connection::serve_connection(state, router, server, false));
        let (mut reader, mut writer) = tokio::io::split(client);
        let reading = tokio::spawn(async move {
            let mut output = Vec::new();
            // A connection the server cut off ends the output; that is an answer too.
            drop(reader.read_to_end(&mut output).await);
            output
        });
        // The server may close before reading everything: what it wrote is the answer.
        if writer.write_all(&input).await.is_ok() {
            drop(writer.shutdown().await);
        }
        if tokio::time::timeout(Duration::from_millis(500), &mut serving)
            .await
            .is_err()
        {
            shutdown.send_replace(true);
            drop(serving.await);
        }
        drop(writer);
        reading.await.unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"secrets", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
