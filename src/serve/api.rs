//! What every handler shares: the server state, the typed error answer,
//! bounded body reading, queries and run keys in paths.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::counters::Counters;
use super::handles::HandleCache;
use super::ServeOptions;
use crate::run::Run;
use crate::wire::{self, ErrorBody, Handle};
use crate::Journal;
use runjournal_core::RunKey;

/// Everything the handlers share.
pub(crate) struct ServerState {
    pub(crate) journal: Journal,
    pub(crate) options: ServeOptions,
    /// The bearer token TCP requests must carry.
    pub(crate) token: Option<Vec<u8>>,
    pub(crate) handles: HandleCache,
    pub(crate) counters: Counters,
    /// Becomes `true` when the server shuts down.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Bumped after every purge: subscriptions check their run is still there.
    pub(crate) purges: tokio::sync::watch::Sender<u64>,
    /// Subscriptions open at once.
    pub(crate) subscriptions: std::sync::Arc<tokio::sync::Semaphore>,
    /// The body bound of every request but an import.
    pub(crate) max_body: usize,
}

impl ServerState {
    pub(crate) fn new(
        journal: Journal,
        options: ServeOptions,
        token: Option<Vec<u8>>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> ServerState {
        let max_body = options
            .max_body_bytes
            .unwrap_or_else(|| super::default_body_limit(journal.options().max_event_size));
        ServerState {
            handles: HandleCache::new(options.handle_cache),
            subscriptions: std::sync::Arc::new(tokio::sync::Semaphore::new(options.max_subscriptions)),
            counters: Counters::default(),
            purges: tokio::sync::watch::channel(0).0,
            journal,
            options,
            token,
            shutdown,
            max_body,
        }
    }
}

/// The error code of an error answer, for the counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

/// An error answer: the status of its code and the JSON error body.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Box<ErrorBody>);

impl ApiError {
    /// A transport error (`invalid_request`, `unauthorized`, …).
    pub(crate) fn transport(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(ErrorBody::transport(code, message)))
    }

    /// `invalid_request` with `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::transport(wire::INVALID_REQUEST, message)
    }
}

impl<E: Into<crate::Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(Box::new(ErrorBody::from(&error.into())))
    }
}

/// The code as a `&'static str` for the counters (codes are a closed set;
/// an unknown one is counted as `other`).
pub(crate) fn static_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "invalid_request",
        "unauthorized",
        "payload_too_large",
        "timeout",
        "busy",
        "unknown_route",
        "method_not_allowed",
        "not_allowed",
        "invalid_key",
        "invalid_event",
        "too_large",
        "unencodable",
        "out_of_order",
        "empty_batch",
        "refused",
        "already_exists",
        "not_found",
        "finished",
        "superseded",
        "exhausted",
        "mismatch",
        "deleted",
        "seq_out_of_range",
        "has_live_fork",
        "fenced",
        "conflict",
        "abandoned",
        "lagged",
        "closed",
        "integrity",
        "snapshot_corrupt",
        "parent_missing",
        "storage",
        "poisoned",
        "writer_stopped",
        "thread",
        "io",
        "parse",
        "seq_gap",
        "hash_mismatch",
        "locked",
        "corrupt",
    ];
    KNOWN.iter().find(|known| **known == code).copied().unwrap_or("other")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = static_code(&self.0.error.code);
        let mut response = (status, json_bytes(&self.0)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.extensions_mut().insert(ErrorCode(code));
        response
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Every wire type serialises (no map with non-string keys, no failing impl).
    serde_json::to_vec(value).unwrap_or_else(|error| format!("{{\"serialisation_failed\":\"{error}\"}}").into_bytes())
}

/// A JSON answer with `status`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut response = (status, json_bytes(value)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A `200` JSON answer.
pub(crate) fn ok<T: Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

/// The result of a handler.
pub(crate) type Answer = Result<Response, ApiError>;

/// Reads the whole body, at most `limit` bytes (refused from `content-length`
/// before reading), each chunk within the body timeout.
pub(crate) async fn read_body(
    state: &ServerState,
    body: Body,
    length: Option<u64>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::transport(
            wire::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this request's limit of {limit} bytes"),
        )
    };
    if length.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut collected = Vec::new();
    // A body in one frame (a small request) is taken as it is, not copied.
    let mut single: Option<Bytes> = None;
    loop {
        let frame = tokio::time::timeout(state.options.body_timeout, body.frame())
            .await
            .map_err(|_| ApiError::transport(wire::TIMEOUT, "the request body was not sent in time"))?;
        match frame {
            None => break,
            Some(Err(error)) => return Err(ApiError::invalid(format!("the body could not be read: {error}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let held = single.as_ref().map_or(collected.len(), Bytes::len);
                    if held + data.len() > limit {
                        return Err(too_large());
                    }
                    if collected.is_empty() && single.is_none() {
                        single = Some(data);
                    } else {
                        if let Some(first) = single.take() {
                            collected.extend_from_slice(&first);
                        }
                        collected.extend_from_slice(&data);
                    }
                }
            }
        }
    }
    Ok(single.unwrap_or_else(|| Bytes::from(collected)))
}

/// The `content-length` of a request, if it gives one.
pub(crate) fn content_length(request: &axum::extract::Request) -> Option<u64> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// The request's body as JSON of `T` (bounded by the server's body limit).
pub(crate) async fn json_body<T: DeserializeOwned>(
    state: &ServerState,
    request: axum::extract::Request,
) -> Result<T, ApiError> {
    let length = content_length(&request);
    let bytes = read_body(state, request.into_body(), length, state.max_body).await?;
    parse_json(&bytes)
}

/// `bytes` as JSON of `T`; an empty body is `{}`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid(format!("the body is not the expected JSON: {error}")))
}

/// A request's query: each value percent-decoded, except run keys (see [`Query::key`]).
pub(crate) struct Query {
    raw: HashMap<String, String>,
}

impl Query {
    /// Parses `name=value&…`; a name given twice is refused.
    pub(crate) fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut raw = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = wire::decode_segment(name).map_err(|error| ApiError::invalid(error.to_string()))?;
            if raw.insert(name.clone(), value.to_string()).is_some() {
                return Err(ApiError::invalid(format!("query parameter {name:?} is given twice")));
            }
        }
        Ok(Query { raw })
    }

    /// The decoded text of `name`.
    pub(crate) fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.raw
            .get(name)
            .map(|value| {
                wire::decode_segment(value).map_err(|error| ApiError::invalid(format!("query {name}: {error}")))
            })
            .transpose()
    }

    /// `name` as a number.
    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.text(name)?
            .map(|text| {
                text.parse()
                    .map_err(|_| ApiError::invalid(format!("query {name}={text:?} is not a number in range")))
            })
            .transpose()
    }

    /// `name` as a run key `goal/episode/agent` (each segment encoded).
    pub(crate) fn key(&self, name: &str) -> Result<Option<RunKey>, ApiError> {
        self.raw
            .get(name)
            .map(|value| wire::decode_key(value).map_err(|error| ApiError::invalid(format!("query {name}: {error}"))))
            .transpose()
    }

    /// `limit`, at most [`wire::MAX_QUERY_LIMIT`], `default` when absent.
    pub(crate) fn limit(&self, default: usize) -> Result<usize, ApiError> {
        let limit = self.number::<usize>("limit")?.unwrap_or(default);
        if limit == 0 || limit > wire::MAX_QUERY_LIMIT {
            return Err(ApiError::invalid(format!(
                "query limit={limit} is outside 1..={}",
                wire::MAX_QUERY_LIMIT
            )));
        }
        Ok(limit)
    }
}

/// The run key of a `/v1/runs/{goal}/{episode}/{agent}[/...]` path, from the
/// raw (still encoded) path.
pub(crate) fn path_key(request: &axum::extract::Request) -> Result<RunKey, ApiError> {
    let mut segments = request.uri().path().split('/').skip(3);
    match (segments.next(), segments.next(), segments.next()) {
        (Some(goal), Some(episode), Some(agent)) => wire::decode_key_segments(goal, episode, agent)
            .map_err(|error| ApiError::invalid(format!("the path's run key: {error}"))),
        _ => Err(ApiError::invalid("the path has no run key")),
    }
}

/// The handle a client keeps appending with, from a journal handle.
pub(crate) fn handle_of(run: &Run) -> Handle {
    Handle {
        run: run.key().clone(),
        epoch: run.epoch(),
        next_seq: run.next_seq(),
        head: run.head_hash(),
    }
}

/// Runs blocking journal work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::transport("other", format!("the journal call failed: {error}")))
}
