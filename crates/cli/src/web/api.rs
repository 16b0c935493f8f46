//! The JSON routes of `runjournal ui` (docs/ui.md): the read routes of the
//! served API, the writes a live view needs (begin, resume, append, fork),
//! and the page's outline.
//!
//! Invariants: every handler runs on the blocking pool and answers either a
//! status with a JSON value or an [`ApiError`] carrying the library error's
//! code; range reads are bounded by [`MAX_LIMIT`]; a write goes through the
//! handle this server holds for the run (begun or resumed here), with the
//! caller's epoch and expected seq checked by the library (fenced, conflict).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use hyper::{HeaderMap, Method, StatusCode};
use runjournal::{Event, Journal, Run, RunFilter, RunKey, RunMeta, RunStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::outline;
use super::shapes::{
    handle_json, key_from_query, key_from_segments, key_json, library, query_number, query_pairs, query_value,
    record_json, ApiError,
};

/// The most events or runs one read returns.
pub const MAX_LIMIT: u64 = 10_000;
/// The events one read returns when no `limit` is given.
const DEFAULT_LIMIT: u64 = 1_000;

/// What the server holds: the journal, the write handles, the token.
pub struct App {
    /// The journal this process owns.
    pub journal: Journal,
    /// The handles of runs begun or resumed through this server.
    handles: Mutex<HashMap<RunKey, Run>>,
    /// The bearer token every API request needs, when set.
    token: Option<String>,
}

impl App {
    /// A server over `journal`, requiring `token` when given.
    pub fn new(journal: Journal, token: Option<String>) -> Self {
        App {
            journal,
            handles: Mutex::new(HashMap::new()),
            token,
        }
    }

    /// Checks the request's token (`Authorization: Bearer`, or
    /// `access_token=` in the query) when one is required.
    pub fn authorize(&self, headers: &HeaderMap, query: &str) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let from_header = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let from_query = || {
            query_pairs(query)
                .ok()
                .and_then(|pairs| query_value(&pairs, "access_token").map(str::to_owned))
        };
        match from_header.or_else(from_query) {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<RunKey, Run>> {
        self.handles.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Answer = Result<(StatusCode, Value), ApiError>;

#[expect(
    clippy::unnecessary_wraps,
    reason = "the success answer of every handler, in one place"
)]
fn ok(value: Value) -> Answer {
    Ok((StatusCode::OK, value))
}

/// Answers one API request.
pub fn handle(app: &App, method: &Method, path: &str, query: &str, body: &[u8]) -> Answer {
    let pairs = query_pairs(query)?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["v1", "health"]) => ok(json!({
            "server": "runjournal",
            "version": env!("CARGO_PKG_VERSION"),
            "api": 1,
        })),
        (&Method::GET, ["v1", "runs"]) => runs(app, &pairs),
        (&Method::POST, ["v1", "runs"]) => begin(app, body),
        (&Method::GET, ["v1", "recoverable"]) => {
            let states = app.journal.recoverable().map_err(library)?;
            ok(json!({"states": states}))
        }
        (_, ["v1", "runs", goal, episode, agent, rest @ ..]) => {
            let key = key_from_segments(goal, episode, agent)?;
            run_route(app, method, &key, rest, &pairs, body)
        }
        (&Method::GET, ["ui", "outline", goal, episode, agent]) => {
            let key = key_from_segments(goal, episode, agent)?;
            ok(outline::of(&app.journal, &key)?)
        }
        _ => Err(ApiError::not_found_route(path)),
    }
}

fn run_route(
    app: &App,
    method: &Method,
    key: &RunKey,
    rest: &[&str],
    pairs: &[(String, String)],
    body: &[u8],
) -> Answer {
    let journal = &app.journal;
    match (method, rest) {
        (&Method::GET, []) => {
            let record = journal.run_info(key).map_err(library)?;
            ok(record_json(journal, &record).map_err(library)?)
        }
        (&Method::GET, ["state"]) => {
            let state = match query_number(pairs, "at")? {
                Some(at) => journal.state_at(key, at),
                None => journal.state(key),
            }
            .map_err(library)?;
            ok(json!(state))
        }
        (&Method::GET, ["events"]) => events(journal, key, pairs, false),
        (&Method::GET, ["history"]) => events(journal, key, pairs, true),
        (&Method::GET, ["verify"]) => {
            let report = journal.verify(key).map_err(library)?;
            ok(json!({"run": key_json(&report.run), "events": report.events, "head": report.head.to_hex()}))
        }
        (&Method::GET, ["parent"]) => {
            let parent = journal.parent(key).map_err(library)?;
            ok(json!({"parent": parent.as_ref().map(key_json)}))
        }
        (&Method::GET, ["children"]) => {
            let children = journal.children(key).map_err(library)?;
            ok(json!({"runs": children.iter().map(key_json).collect::<Vec<_>>()}))
        }
        (&Method::GET, ["descendants"]) => {
            let descendants = journal.descendants(key).map_err(library)?;
            ok(json!({"runs": descendants.iter().map(key_json).collect::<Vec<_>>()}))
        }
        (&Method::POST, ["resume"]) => resume(app, key),
        (&Method::POST, ["events"]) => append(app, key, body),
        (&Method::POST, ["fork"]) => fork(app, key, body),
        _ => Err(ApiError::not_found_route(&format!(
            "/v1/runs/{{run}}/{}",
            rest.join("/")
        ))),
    }
}

/// `GET /v1/runs`: records passing the filters, newest activity first.
fn runs(app: &App, pairs: &[(String, String)]) -> Answer {
    let status = query_value(pairs, "status")
        .map(|text| {
            text.parse::<RunStatus>()
                .map_err(|_| ApiError::invalid_request(format!("status={text:?} is not a run status")))
        })
        .transpose()?;
    let filter = RunFilter {
        goal: query_value(pairs, "goal").map(str::to_owned),
        agent: query_value(pairs, "agent").map(str::to_owned),
        status,
    };
    let parent = query_value(pairs, "parent").map(key_from_query).transpose()?;
    let limit = query_number(pairs, "limit")?.unwrap_or(MAX_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::invalid_request(format!("limit {limit} is over {MAX_LIMIT}")));
    }
    let mut records = app.journal.runs(&filter).map_err(library)?;
    records.sort_by(|a, b| b.head.last_ts.cmp(&a.head.last_ts).then_with(|| a.key.cmp(&b.key)));
    let mut listed = Vec::new();
    for record in &records {
        let value = record_json(&app.journal, record).map_err(library)?;
        if parent
            .as_ref()
            .is_some_and(|parent| value["parent"] != key_json(parent))
        {
            continue;
        }
        listed.push(value);
        if listed.len() as u64 >= limit {
            break;
        }
    }
    ok(json!({"runs": listed}))
}

/// `GET …/events` (own log, by seq) and `…/history` (whole history, by position).
fn events(journal: &Journal, key: &RunKey, pairs: &[(String, String)], history: bool) -> Answer {
    let from = query_number(pairs, "from")?.unwrap_or(0);
    let limit = query_number(pairs, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid_request(format!(
            "limit must be 1..={MAX_LIMIT}, not {limit}"
        )));
    }
    let mut envelopes = Vec::new();
    let mut more = false;
    let mut collect = |position: u64, envelope| {
        if position < from {
            return ControlFlow::Continue(());
        }
        if envelopes.len() as u64 == limit {
            more = true;
            return ControlFlow::Break(());
        }
        envelopes.push(envelope);
        ControlFlow::Continue(())
    };
    if history {
        let mut position = 0;
        journal
            .for_each_in_history(key, |envelope| {
                let flow = collect(position, envelope);
                position += 1;
                flow
            })
            .map_err(library)?;
    } else {
        journal
            .for_each_event(key, from, |envelope| collect(envelope.seq, envelope))
            .map_err(library)?;
    }
    let next = more.then_some(from + envelopes.len() as u64);
    ok(json!({"envelopes": envelopes, "next": next}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginBody {
    run: RunKey,
    #[serde(default)]
    meta: RunMeta,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted per the wire contract; this server writes with the journal's durability"
    )]
    durability: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendBody {
    epoch: u64,
    expected_seq: u64,
    events: Vec<Event>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted per the wire contract; this server writes with the journal's durability"
    )]
    durability: Option<String>,
    #[serde(default)]
    checks: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    at_seq: u64,
    child: RunKey,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::invalid_request(format!("bad request body: {error}")))
}

fn head_of(journal: &Journal, key: &RunKey) -> Result<runjournal::core::ChainHash, ApiError> {
    Ok(journal.run_info(key).map_err(library)?.head.hash)
}

/// `POST /v1/runs`: begins a run; this server keeps its handle.
fn begin(app: &App, body: &[u8]) -> Answer {
    let request: BeginBody = parse(body)?;
    let run = app.journal.begin(request.run.clone(), request.meta).map_err(library)?;
    let handle = handle_json(&run, &head_of(&app.journal, &request.run)?);
    app.handles().insert(request.run, run);
    Ok((StatusCode::CREATED, json!({"handle": handle})))
}

/// `POST …/resume`: a new epoch; this server keeps the new handle.
fn resume(app: &App, key: &RunKey) -> Answer {
    let (run, state) = app.journal.resume(key).map_err(library)?;
    let handle = handle_json(&run, &head_of(&app.journal, key)?);
    app.handles().insert(key.clone(), run);
    ok(json!({"handle": handle, "state": state}))
}

/// `POST …/events`: one atomic batch at the caller's epoch and expected seq.
fn append(app: &App, key: &RunKey, body: &[u8]) -> Answer {
    let request: AppendBody = parse(body)?;
    if request.checks.as_deref().is_some_and(|checks| checks != "raw") {
        return Err(ApiError::invalid_request("this server applies raw checks only"));
    }
    let handles = app.handles();
    let Some(run) = handles.get(key) else {
        let record = app.journal.run_info(key).map_err(library)?;
        return Err(library(runjournal::Error::Fenced {
            run: key.clone(),
            seq: request.expected_seq,
            epoch: request.epoch,
            current: record.head.epoch,
        }));
    };
    if run.epoch() != request.epoch {
        return Err(library(runjournal::Error::Fenced {
            run: key.clone(),
            seq: request.expected_seq,
            epoch: request.epoch,
            current: run.epoch(),
        }));
    }
    run.append_at(request.expected_seq, request.events).map_err(library)?;
    let handle = handle_json(run, &head_of(&app.journal, key)?);
    drop(handles);
    let envelopes = app.journal.read(key, request.expected_seq).map_err(library)?;
    ok(json!({"envelopes": envelopes, "handle": handle}))
}

/// `POST …/fork`: the child begins from the parent's seq; its handle is kept.
fn fork(app: &App, key: &RunKey, body: &[u8]) -> Answer {
    let request: ForkBody = parse(body)?;
    let run = app
        .journal
        .fork(key, request.at_seq, request.child.clone())
        .map_err(library)?;
    let handle = handle_json(&run, &head_of(&app.journal, &request.child)?);
    app.handles().insert(request.child, run);
    Ok((StatusCode::CREATED, json!({"handle": handle})))
}
