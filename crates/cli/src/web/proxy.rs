//! Forwarding to the served API on the owner's Unix socket: each request on
//! a connection of its own, its body and the answer streamed through (so a
//! subscription stays a live event stream).
//!
//! Invariants: the browser's token (header or `access_token=`) is never
//! forwarded; a socket that does not answer is `disconnected` (503) naming
//! it; the answer's status, headers and body are the served API's own.

use std::path::Path;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::http::{transport, Body, Failure};

/// The transport code of a socket that does not answer.
const UNAVAILABLE: &str = "disconnected";

/// The `access_token` of a query, if any.
pub fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .and_then(|value| runjournal::wire::decode_segment(value).ok())
}

/// `path?query` without its `access_token`.
fn without_token(path: &str, query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("access_token="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

fn unavailable(socket: &Path, error: &impl std::fmt::Display) -> Failure {
    transport(
        UNAVAILABLE,
        format!("the served API on {} does not answer: {error}", socket.display()),
    )
}

async fn send<B>(socket: &Path, request: Request<B>) -> Result<Response<Incoming>, Failure>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|error| unavailable(socket, &error))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| unavailable(socket, &error))?;
    // The connection lives as long as the answer's body is read.
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|error| unavailable(socket, &error))
}

/// Forwards `request` to the socket; the answer streams back as it comes.
pub async fn forward(socket: &Path, request: Request<Incoming>) -> Result<Response<Body>, Failure> {
    let (mut parts, body) = request.into_parts();
    let target = without_token(parts.uri.path(), parts.uri.query());
    parts.uri = target
        .parse()
        .map_err(|_| transport(runjournal::wire::INVALID_REQUEST, format!("bad path {target}")))?;
    parts.headers.remove(header::AUTHORIZATION);
    parts
        .headers
        .insert(header::HOST, header::HeaderValue::from_static("localhost"));
    let response = send(socket, Request::from_parts(parts, body)).await?;
    Ok(response.map(BodyExt::boxed))
}

/// `GET path` on the socket, its JSON answer decoded (an error answer as
/// the served API's error).
pub async fn get_json<T: DeserializeOwned>(socket: &Path, path: &str) -> Result<T, Failure> {
    let request = Request::get(path)
        .header(header::HOST, "localhost")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|error| unavailable(socket, &error))?;
    let response = send(socket, request).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| unavailable(socket, &error))?
        .to_bytes();
    if !status.is_success() {
        return Err(serde_json::from_slice(&bytes).map_or_else(
            |_| transport(UNAVAILABLE, format!("{path} answered {status} without an error body")),
            Box::new,
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| transport(UNAVAILABLE, format!("{path}: undecodable answer: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_token_is_not_forwarded() {
        assert_eq!(
            without_token("/v1/runs", Some("access_token=abc&goal=g")),
            "/v1/runs?goal=g"
        );
        assert_eq!(without_token("/v1/runs", Some("access_token=abc")), "/v1/runs");
        assert_eq!(without_token("/v1/runs", None), "/v1/runs");
        assert_eq!(query_token("from=3&access_token=a%2Fb"), Some("a/b".to_owned()));
        assert_eq!(query_token("from=3"), None);
    }
}
