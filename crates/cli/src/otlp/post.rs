//! `--otlp-endpoint`: one OTLP/HTTP JSON POST to a collector, with hyper's
//! HTTP/1.1 client on a current-thread tokio runtime.
//!
//! Invariants: only `http://` endpoints (a local collector); an endpoint
//! without a path gets the OTLP traces path `/v1/traces`; any status but 2xx
//! is an error naming the endpoint, the status and the collector's answer.

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::rt::TokioIo;

/// How long the whole exchange with the collector may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a POST to the collector failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PostError {
    /// The endpoint is not an `http://host:port/path` URL.
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting, sending or reading failed.
    Transport {
        /// The endpoint.
        endpoint: String,
        /// The underlying failure.
        reason: String,
    },
    /// The collector answered with a status other than 2xx.
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The collector's body (its first 500 bytes).
        body: String,
    },
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::BadEndpoint { endpoint, reason } => write!(f, "bad OTLP endpoint {endpoint}: {reason}"),
            PostError::Transport { endpoint, reason } => write!(f, "posting to the OTLP endpoint {endpoint}: {reason}"),
            PostError::Refused { endpoint, status, body } => {
                write!(f, "the OTLP endpoint {endpoint} answered {status}: {body}")
            }
        }
    }
}

impl std::error::Error for PostError {}

/// Posts `body` (OTLP/JSON) to `endpoint`; returns the collector's answer.
pub fn post(endpoint: &str, body: Vec<u8>) -> Result<String, PostError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| transport(endpoint, error))?;
    runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, exchange(endpoint, body))
            .await
            .map_err(|_| transport(endpoint, "timed out"))?
    })
}

fn transport(endpoint: &str, reason: impl fmt::Display) -> PostError {
    PostError::Transport {
        endpoint: endpoint.to_owned(),
        reason: reason.to_string(),
    }
}

async fn exchange(endpoint: &str, body: Vec<u8>) -> Result<String, PostError> {
    let bad = |reason: &str| PostError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// endpoints are supported"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = match uri.path() {
        "" | "/" => "/v1/traces",
        path => path,
    };
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|error| transport(endpoint, error))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| transport(endpoint, error))?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| transport(endpoint, error))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| transport(endpoint, error))?;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|error| transport(endpoint, error))?
        .to_bytes();
    driver.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    if !status.is_success() {
        return Err(PostError::Refused {
            endpoint: endpoint.to_owned(),
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        });
    }
    Ok(text)
}
