//! The JSON shapes of the served API (docs/ui.md): records, handles, errors;
//! and the run key in a path (three percent-encoded segments) or a query
//! (`goal/episode/agent`).
//!
//! Invariants: an error's `code` is the library error's `code()` (or a
//! transport code: `invalid_request`, `unauthorized`, `payload_too_large`,
//! `internal`), and its status follows the code's family.

use hyper::StatusCode;
use runjournal::{Journal, ReadError, RunKey, RunRecord};
use serde_json::{json, Value};

/// An error answer: status and `{"error": {"code", "message", "run", "seq", "details"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// One line for a person.
    pub message: String,
    /// The run it is about, if any.
    pub run: Option<Box<RunKey>>,
    /// The seq it is about, if any.
    pub seq: Option<u64>,
    /// Fields a client needs to rebuild the typed error.
    pub details: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            run: None,
            seq: None,
            details: json!({}),
        }
    }

    /// A malformed request: bad JSON, path or query.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// No such route.
    pub fn not_found_route(path: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route {path}"))
    }

    /// A missing or wrong token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs `Authorization: Bearer <token>`",
        )
    }

    /// A body over the limit.
    pub fn payload_too_large(max: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is over {max} bytes"),
        )
    }

    /// A failure of the server itself.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The error's JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "run": self.run,
            "seq": self.seq,
            "details": self.details,
        }})
    }
}

/// The status of a library error code.
fn status_of(code: &str) -> StatusCode {
    match code {
        "not_found" | "seq_out_of_range" => StatusCode::NOT_FOUND,
        "conflict" | "fenced" | "finished" | "superseded" | "already_exists" | "has_live_fork" => StatusCode::CONFLICT,
        "invalid_event" | "invalid_key" | "out_of_order" | "mismatch" | "too_large" | "refused" | "empty_batch"
        | "unencodable" => StatusCode::BAD_REQUEST,
        "poisoned" | "writer_stopped" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<runjournal::Error> for ApiError {
    fn from(error: runjournal::Error) -> Self {
        let code = error.code();
        let mut api = ApiError::new(status_of(code), code, error.to_string());
        match &error {
            runjournal::Error::Fenced {
                run,
                seq,
                epoch,
                current,
            } => {
                api.run = Some(Box::new(run.clone()));
                api.seq = Some(*seq);
                api.details = json!({"epoch": epoch, "current": current});
            }
            runjournal::Error::Conflict { run, expected, actual } => {
                api.run = Some(Box::new(run.clone()));
                api.details = json!({"expected": expected, "actual": actual});
            }
            runjournal::Error::Integrity(problem) => {
                api.run = Some(Box::new(problem.run.clone()));
                api.seq = Some(problem.seq);
            }
            runjournal::Error::NotFound { run, .. } => api.run = Some(Box::new(run.clone())),
            _ => {}
        }
        api
    }
}

/// Converts any library error family through the umbrella error.
pub fn library(error: impl Into<runjournal::Error>) -> ApiError {
    ApiError::from(error.into())
}

/// A run key as JSON.
pub fn key_json(key: &RunKey) -> Value {
    json!({"goal": key.goal, "episode": key.episode, "agent": key.agent})
}

/// The record of a run (docs/ui.md#json-shapes), with `history_len`: the
/// number of events in its whole history (fork prefixes included).
pub fn record_json(journal: &Journal, record: &RunRecord) -> Result<Value, ReadError> {
    let parent = match &record.fork {
        Some(fork) => Some(fork.parent_key.clone()),
        None => meta_parent(journal, &record.key)?,
    };
    Ok(json!({
        "run": key_json(&record.key),
        "status": record.status.as_str(),
        "epoch": record.head.epoch,
        "next_seq": record.head.next_seq,
        "head": record.head.hash.to_hex(),
        "created_ts": record.created_ts,
        "updated_ts": record.head.last_ts,
        "parent": parent.as_ref().map(key_json),
        "forked_at": record.fork.as_ref().map(|fork| fork.seq),
        "history_len": history_len(journal, record)?,
    }))
}

/// `meta.parent` of a run that is not a fork (from its `run_started`).
fn meta_parent(journal: &Journal, key: &RunKey) -> Result<Option<RunKey>, ReadError> {
    let mut parent = None;
    journal.for_each_event(key, 0, |envelope| {
        if let runjournal::Event::RunStarted { meta } = envelope.event {
            parent = meta.parent;
        }
        std::ops::ControlFlow::Break(())
    })?;
    Ok(parent)
}

/// The length of a run's history: its own log and its ancestors' prefixes.
fn history_len(journal: &Journal, record: &RunRecord) -> Result<u64, ReadError> {
    let mut total = record.head.next_seq;
    let mut fork = record.fork.clone();
    while let Some(base) = fork {
        total += base.seq + 1;
        fork = journal.run_info(&base.parent_key)?.fork;
    }
    Ok(total)
}

/// A handle: what a client needs to keep appending.
pub fn handle_json(run: &runjournal::Run, head: &runjournal::core::ChainHash) -> Value {
    json!({
        "run": key_json(run.key()),
        "epoch": run.epoch(),
        "next_seq": run.next_seq(),
        "head": head.to_hex(),
    })
}

/// Decodes `%XX` escapes (and, in a query, `+` as a space).
pub fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let hex = text
                    .get(at + 1..at + 3)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| ApiError::invalid_request(format!("bad percent escape in {text:?}")))?;
                out.push(hex);
                at += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid_request(format!("{text:?} is not UTF-8")))
}

/// A key from its three path segments.
pub fn key_from_segments(goal: &str, episode: &str, agent: &str) -> Result<RunKey, ApiError> {
    let goal = percent_decode(goal, false)?;
    let agent = percent_decode(agent, false)?;
    let episode: u32 = percent_decode(episode, false)?
        .parse()
        .map_err(|_| ApiError::invalid_request(format!("episode {episode:?} is not a number")))?;
    RunKey::new(goal, episode, agent).map_err(library)
}

/// A key written `goal/episode/agent` in a query (the goal may hold `/`;
/// the last two parts are the episode and the agent).
pub fn key_from_query(text: &str) -> Result<RunKey, ApiError> {
    let mut parts = text.rsplitn(3, '/');
    let (Some(agent), Some(episode), Some(goal)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::invalid_request(format!("{text:?} is not goal/episode/agent")));
    };
    let episode: u32 = episode
        .parse()
        .map_err(|_| ApiError::invalid_request(format!("episode {episode:?} is not a number")))?;
    RunKey::new(goal, episode, agent).map_err(library)
}

/// A query string's pairs, decoded.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

/// The value of `name` in `pairs`.
pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A numeric query value.
pub fn query_number(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    query_value(pairs, name)
        .map(|value| {
            value
                .parse()
                .map_err(|_| ApiError::invalid_request(format!("{name}={value:?} is not a number")))
        })
        .transpose()
}
