//! The server's runtime: accept loops, one task per connection under a
//! bounded count, the bearer check on TCP, and the drain at shutdown.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
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
    let permits = Arc::new(tokio::sync::Semaphore::new(state.options.max_connections));
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            accepted = unix.accept() => match accepted {
                Ok((stream, _)) => admit(&state, &router, &permits, stream, false),
                Err(error) => tracing::warn!(%error, "accept on the Unix socket failed"),
            },
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok(stream) => admit(&state, &router, &permits, stream, true),
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

/// Serves `stream` if a connection slot is free; otherwise answers `busy` and closes.
fn admit<S>(
    state: &Arc<ServerState>,
    router: &axum::Router,
    permits: &Arc<tokio::sync::Semaphore>,
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
        tokio::spawn(async move {
            state.counters.rejected(wire::BUSY);
            reject_busy(stream).await;
            state.counters.connection_closed();
        });
    }
}

/// A canned `429 busy` written straight to the stream (no slot to parse with).
async fn reject_busy<S: AsyncWrite + Unpin>(mut stream: S) {
    let body = serde_json::to_string(&wire::ErrorBody::transport(
        wire::BUSY,
        "the server is at its connection limit; retry later",
    ))
    .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let written = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("could not tell a client the server is busy");
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
