//! `runjournal ui`: the web timeline. One hyper HTTP/1.1 server on tokio
//! serves the page (static assets embedded in the binary, [`assets`]), the
//! served API's JSON routes of docs/ui.md ([`api`]) and its Server-Sent
//! Events subscriptions ([`sse`]), over the journal this process owns.
//!
//! Invariants: loopback addresses only unless a token file is given; with a
//! token every `/v1` and `/ui` request carries it (`Authorization: Bearer`,
//! or `access_token=` for an `EventSource`), compared in constant time;
//! journal calls run on tokio's blocking pool, never on a reactor thread;
//! request bodies are bounded ([`MAX_BODY`]).

pub mod api;
mod assets;
mod http;
mod outline;
mod shapes;
mod sse;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use self::http::{error_response, Body};
use self::shapes::ApiError;
pub use api::App;

/// The largest request body accepted (a batch of events).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Serves `app` on `listener` until the process is stopped (ctrl-c or SIGTERM).
pub async fn serve(app: Arc<App>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(app, request).await) }
            });
            // A client that goes away mid-request is its own business.
            drop(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await,
            );
        });
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            drop(tokio::signal::ctrl_c().await);
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    drop(tokio::signal::ctrl_c().await);
}

/// Whether `address` may be served without a token.
pub fn is_loopback(address: &SocketAddr) -> bool {
    address.ip().is_loopback()
}

async fn route(app: Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    if request.method() == Method::GET {
        if let Some(asset) = assets::find(&path) {
            return http::asset(asset);
        }
    }
    if !(path.starts_with("/v1/") || path.starts_with("/ui/") || path == "/metrics") {
        return error_response(&ApiError::not_found_route(&path));
    }
    if let Err(error) = app.authorize(request.headers(), &query) {
        return error_response(&error);
    }
    let method = request.method().clone();
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if method == Method::GET && (path == "/v1/subscribe" || path.ends_with("/subscribe")) {
        return match sse::subscribe(&app, &path, &query, last_event_id) {
            Ok(response) => response,
            Err(error) => error_response(&error),
        };
    }
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(error) => return error_response(&error),
    };
    let answer = tokio::task::spawn_blocking(move || api::handle(&app, &method, &path, &query, &body)).await;
    match answer {
        Ok(Ok((status, value))) => http::json(status, &value),
        Ok(Err(error)) => error_response(&error),
        Err(join) => error_response(&ApiError::internal(format!("the request's handler failed: {join}"))),
    }
}

async fn read_body(body: Incoming) -> Result<Vec<u8>, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(ApiError::payload_too_large(MAX_BODY)),
        Err(error) => Err(ApiError::invalid_request(format!("reading the request body: {error}"))),
    }
}
