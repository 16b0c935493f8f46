//! The server's runtime: accept loops, one task per connection under a
//! bounded count, the bearer check on TCP, and the drain at shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::api::{ApiError, ErrorCode, ServerState};
use crate::wire;

/// Starts the server thread: its runtime serves both listeners until shutdown.
pub(crate) fn start(
    state: Arc<ServerState>,
    unix: std::os::unix::net::UnixListener,
    tcp: Option<std::net::TcpListener>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(state.options.worker_threads.max(1))
        .thread_name("runjournal-serve")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("runjournal-serve-main".into())
        .spawn(move || runtime.block_on(run(state, unix, tcp)))
}

async fn run(state: Arc<ServerState>, unix: std::os::unix::net::UnixListener, tcp: Option<std::net::TcpListener>) {
    let unix = match tokio::net::UnixListener::from_std(unix) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "could not register the Unix socket with the runtime");
            return;
        }
    };
    let tcp = match tcp.map(|listener| {
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }) {
        Some(Ok(listener)) => Some(listener),
        Some(Err(error)) => {
            tracing::error!(%error, "could not register the TCP listener with the runtime");
            None
        }
        None => None,
    };
    let router = super::routes::router(state.clone());
    let permits = Arc::new(Semaphore::new(state.options.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            accepted = unix.accept() => match accepted {
                Ok((stream, _)) => admit(&state, &router, &permits, &refusing, stream, false),
                Err(error) => tracing::warn!(%error, "accept on the Unix socket failed"),
            },
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok(stream) => admit(&state, &router, &permits, &refusing, stream, true),
                Err(error) => tracing::warn!(%error, "accept on TCP failed"),
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(unix);
    drop(tcp);
    // Every connection holds a permit: all of them back means all are done.
    let all = u32::try_from(state.options.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(state.options.shutdown_grace, permits.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

async fn accept_tcp(listener: Option<&tokio::net::TcpListener>) -> std::io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// The most over-limit connections being answered `busy` at once; past it
/// one is closed unanswered (a flood cannot pile up refusing tasks).
const MAX_REFUSING: usize = 64;
/// The most bytes of an over-limit connection's request head read before
/// its `busy` answer (the head's end is looked for, nothing is parsed).
const BUSY_HEAD_BYTES: usize = 4096;
/// The most bytes read and dropped after the `busy` answer, so that closing
/// does not reset a connection with the rest of its request unread.
const BUSY_DRAIN_BYTES: usize = 64 * 1024;
/// The bound of each step of a `busy` answer: reading the head, writing
/// the answer, draining what follows. A refusing task ends within three.
const BUSY_STEP: Duration = Duration::from_secs(1);

/// Serves `stream` if a connection slot is free; otherwise answers `busy` and closes.
fn admit<S>(
    state: &Arc<ServerState>,
    router: &axum::Router,
    permits: &Arc<Semaphore>,
    refusing: &Arc<Semaphore>,
    stream: S,
    tcp: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.counters.connection_opened();
    let state = state.clone();
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        let router = router.clone();
        tokio::spawn(async move {
            serve_connection(state.clone(), router, stream, tcp).await;
            state.counters.connection_closed();
            drop(permit);
        });
    } else {
        state.counters.rejected(wire::BUSY);
        let Ok(refusal) = refusing.clone().try_acquire_owned() else {
            tracing::debug!("too many connections over the limit at once; closing one unanswered");
            drop(stream);
            state.counters.connection_closed();
            return;
        };
        tokio::spawn(async move {
            reject_busy(stream).await;
            state.counters.connection_closed();
            drop(refusal);
        });
    }
}

/// A canned `429 busy` (no slot to parse with), written after the request
/// head has arrived and followed by a drain of the rest, so that the client
/// reads the answer instead of a broken pipe or a reset. Every step is
/// bounded in time and bytes: an over-limit slow-loris holds the task for
/// at most three [`BUSY_STEP`]s.
async fn reject_busy<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let body = serde_json::to_string(&wire::ErrorBody::transport(
        wire::BUSY,
        "the server is at its connection limit; retry later",
    ))
    .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // A head that does not arrive in time is answered all the same.
    drop(tokio::time::timeout(BUSY_STEP, read_head(&mut stream)).await);
    let written = tokio::time::timeout(BUSY_STEP, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("could not tell a client the server is busy");
        return;
    }
    // Until the client closes, or the bound: closing earlier with unread
    // bytes would reset the connection under the answer.
    drop(tokio::time::timeout(BUSY_STEP, drain(&mut stream, BUSY_DRAIN_BYTES)).await);
}

/// Reads until the end of a request head (a blank line), the end of the
/// stream, or [`BUSY_HEAD_BYTES`].
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut head = vec![0; BUSY_HEAD_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        let Ok(read @ 1..) = stream.read(&mut head[filled..]).await else {
            return;
        };
        let searched = filled.saturating_sub(3);
        filled += read;
        if head[searched..filled].windows(4).any(|window| window == b"\r\n\r\n") {
            return;
        }
    }
}

/// Reads and drops up to `limit` bytes, until the end of the stream.
async fn drain<S: AsyncRead + Unpin>(stream: &mut S, limit: usize) {
    let mut scratch = vec![0; 4096];
    let mut left = limit;
    while left > 0 {
        let Ok(read @ 1..) = stream.read(&mut scratch).await else {
            return;
        };
        left = left.saturating_sub(read);
    }
}

/// Serves one connection, HTTP/1.1 with keep-alive, until it closes or the
/// server shuts down (then after its in-flight request).
pub(crate) async fn serve_connection<S>(state: Arc<ServerState>, router: axum::Router, stream: S, tcp: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let state = service_state.clone();
        let router = router.clone();
        async move { Ok::<_, Infallible>(respond(&state, router, request.map(Body::new), tcp).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.header_timeout)
        .max_buf_size(state.options.max_header_bytes.max(8192) + 8192)
        .max_header_size(state.options.max_header_bytes);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut shutdown = state.shutdown.clone();
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        if error.is_timeout() {
            state.counters.rejected(wire::TIMEOUT);
        }
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// One request: the bearer check on TCP, the router, the counters.
pub(crate) async fn respond(
    state: &ServerState,
    router: axum::Router,
    request: hyper::Request<Body>,
    tcp: bool,
) -> Response {
    state.counters.request();
    if tcp && !authorized(state, &request) {
        let response = ApiError::transport(
            wire::UNAUTHORIZED,
            "this TCP request needs Authorization: Bearer <token>",
        )
        .into_response();
        state.counters.rejected(wire::UNAUTHORIZED);
        return response;
    }
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        state.counters.rejected(code);
    }
    response
}

fn authorized(state: &ServerState, request: &hyper::Request<Body>) -> bool {
    let Some(token) = &state.token else {
        return false;
    };
    request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| super::constant_time_eq(given, token))
}
