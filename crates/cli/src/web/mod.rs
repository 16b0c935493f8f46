//! `runjournal ui`: the web timeline (docs/ui.md). One hyper HTTP/1.1 server
//! on tokio serves the page (static assets embedded in the binary,
//! [`assets`]) and the page's outline route ([`outline`]), and forwards every
//! `/v1` request to the served API on the owner's Unix socket ([`proxy`]):
//! this process's own `Journal::serve` when it opened the database, or the
//! process that holds it.
//!
//! Invariants: loopback addresses only unless a token file is given; with a
//! token every `/v1` and `/ui` request carries it (`Authorization: Bearer`,
//! or `access_token=` for an `EventSource`), compared in constant time, and
//! neither is forwarded; the served API answers every `/v1` route, so the
//! page sees exactly the wire contract, subscriptions streamed through.

mod assets;
mod http;
pub mod outline;
mod proxy;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use runjournal::wire::{self, ErrorBody};

use self::http::{error_response, transport, Body, Failure};
pub use outline::Source;

/// What the server holds: where the API is and the token.
pub struct App {
    /// The owner's Unix socket.
    pub socket: PathBuf,
    /// Where outlines are read from.
    pub source: Source,
    /// The bearer token every API request needs, when set.
    pub token: Option<String>,
}

impl App {
    /// Checks the request's token when one is required.
    fn authorize(&self, headers: &HeaderMap, query: &str) -> Result<(), Failure> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let from_header = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let from_query = || proxy::query_token(query);
        match from_header.or_else(from_query) {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(transport(
                wire::UNAUTHORIZED,
                "this server needs `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// Whether `given` equals `expected`, in time that depends only on their lengths.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (index, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(index).copied().unwrap_or(!byte));
    }
    difference == 0
}

/// Whether `address` may be served without a token.
pub fn is_loopback(address: &SocketAddr) -> bool {
    address.ip().is_loopback()
}

/// Serves `app` on `listener` until `stop` resolves (the command's
/// [`StopSignals`](crate::stop_signals::StopSignals), listened for before
/// the listener existed).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut stop => return Ok(()),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(&app, request).await) }
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

async fn route(app: &App, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    if request.method() == Method::GET {
        if let Some(asset) = assets::find(&path) {
            return http::asset(asset);
        }
    }
    let api = path.starts_with("/v1/") || path == "/metrics";
    if !(api || path.starts_with("/ui/")) {
        return error_response(&ErrorBody::transport(wire::UNKNOWN_ROUTE, format!("no route {path}")));
    }
    if let Err(error) = app.authorize(request.headers(), &query) {
        return error_response(&error);
    }
    let answer = if api {
        proxy::forward(&app.socket, request).await
    } else if request.method() == Method::GET {
        outline::route(app, &path).await
    } else {
        Err(transport(
            wire::METHOD_NOT_ALLOWED,
            format!("{} is not served on {path}", request.method()),
        ))
    };
    answer.unwrap_or_else(|error| error_response(&error))
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
