//! The read endpoints: verified reads on the blocking pool, pages bounded by
//! `limit`, the export as a chunked stream of JSON lines.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::api::{blocking, ok, path_key, Answer, ApiError, Query, ServerState};
use crate::wire::{
    self, DiffBody, EpisodeResponse, EventsPage, HealthResponse, ParentResponse, RunsResponse, StatesResponse,
    VerifyBody,
};
use runjournal_core::{Envelope, RunFilter, RunStatus};

/// `GET /v1/health`.
pub(crate) fn health() -> Response {
    ok(&HealthResponse {
        server: "runjournal".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api: wire::API_VERSION,
    })
}

/// `GET /v1/metrics`, `GET /metrics`.
pub(crate) fn metrics(state: &ServerState) -> Response {
    let text = state.counters.prometheus(&state.journal.metrics());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn status_named(text: &str) -> Result<RunStatus, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| ApiError::invalid(format!("query status={text:?} is not a run status")))
}

/// `GET /v1/runs?status&goal&agent&parent&limit`.
pub(crate) async fn runs(state: Arc<ServerState>, request: Request) -> Answer {
    let query = Query::parse(request.uri().query())?;
    let filter = RunFilter {
        goal: query.text("goal")?,
        agent: query.text("agent")?,
        status: query.text("status")?.map(|status| status_named(&status)).transpose()?,
    };
    let parent = query.key("parent")?;
    let limit = query.limit(wire::MAX_QUERY_LIMIT)?;
    let mut runs = state.journal.runs_async(filter).await?;
    if let Some(parent) = parent {
        runs.retain(|record| record.fork.as_ref().is_some_and(|fork| fork.parent_key == parent));
    }
    runs.truncate(limit);
    Ok(ok(&RunsResponse { runs }))
}

/// `GET /v1/runs/{k}`.
pub(crate) async fn run_info(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    Ok(ok(&state.journal.run_info_async(key).await?))
}

/// `GET /v1/runs/{k}/state[?at=SEQ]`.
pub(crate) async fn state(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let query = Query::parse(request.uri().query())?;
    let snapshot = match query.text("form")?.as_deref() {
        None | Some("json") => false,
        Some("snapshot") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "query form={other:?} is not json or snapshot"
            )))
        }
    };
    let resume_state = match query.number::<u64>("at")? {
        Some(seq) => state.journal.state_at_async(key, seq).await?,
        None => state.journal.state_async(key).await?,
    };
    if !snapshot {
        return Ok(ok(&resume_state));
    }
    // The whole fold (its bookkeeping too) as a snapshot record, for a
    // client that goes on folding from it.
    let mut response = runjournal_core::snapshot::encode_snapshot(&resume_state).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// `GET /v1/runs/{k}/events?from&limit` (own log) and `/history` (whole history).
pub(crate) async fn events(state: Arc<ServerState>, request: Request, history: bool) -> Answer {
    let key = path_key(&request)?;
    let query = Query::parse(request.uri().query())?;
    let from = query.number::<u64>("from")?.unwrap_or(0);
    let limit = query.limit(wire::DEFAULT_EVENT_LIMIT)?;
    let journal = state.journal.clone();
    let page = blocking(move || -> Result<EventsPage, crate::Error> {
        let mut envelopes = Vec::new();
        let mut more = false;
        // The page holds at most `limit` envelopes, never the whole log.
        let mut fill = |envelope: Envelope| {
            if envelopes.len() == limit {
                more = true;
                return ControlFlow::Break(());
            }
            envelopes.push(envelope);
            ControlFlow::Continue(())
        };
        if history {
            // History positions count from the oldest ancestor's seq 0.
            let mut skipped = 0u64;
            journal.for_each_in_history(&key, |envelope| {
                if skipped < from {
                    skipped += 1;
                    return ControlFlow::Continue(());
                }
                fill(envelope)
            })?;
        } else {
            journal.for_each_event(&key, from, fill)?;
        }
        let next = more.then(|| from + envelopes.len() as u64);
        Ok(EventsPage { envelopes, next })
    })
    .await??;
    Ok(ok(&page))
}

/// `GET /v1/runs/{k}/verify`.
pub(crate) async fn verify(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    Ok(ok(&VerifyBody::from(state.journal.verify_async(key).await?)))
}

/// `GET /v1/runs/{k}/parent`: the parent's record, `null` for a run that is not a fork.
pub(crate) async fn parent(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let journal = state.journal.clone();
    let parent = blocking(move || -> Result<_, crate::Error> {
        match journal.parent(&key)? {
            Some(parent) => Ok(Some(journal.run_info(&parent)?)),
            None => Ok(None),
        }
    })
    .await??;
    Ok(ok(&ParentResponse { run: parent }))
}

/// `GET /v1/runs/{k}/children` and `/descendants`: their records, ordered by key.
pub(crate) async fn children(state: Arc<ServerState>, request: Request, all: bool) -> Answer {
    let key = path_key(&request)?;
    let journal = state.journal.clone();
    let runs = blocking(move || -> Result<_, crate::Error> {
        let keys = if all {
            journal.descendants(&key)?
        } else {
            journal.children(&key)?
        };
        keys.iter()
            .map(|key| journal.run_info(key).map_err(crate::Error::from))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok(ok(&RunsResponse { runs }))
}

/// `GET /v1/diff?a=K&b=K`.
pub(crate) async fn diff(state: Arc<ServerState>, request: Request) -> Answer {
    let query = Query::parse(request.uri().query())?;
    let a = query
        .key("a")?
        .ok_or_else(|| ApiError::invalid("query a= (a run key) is missing"))?;
    let b = query
        .key("b")?
        .ok_or_else(|| ApiError::invalid("query b= (a run key) is missing"))?;
    let journal = state.journal.clone();
    let diff = blocking(move || journal.diff(&a, &b)).await??;
    Ok(ok(&DiffBody::from(diff)))
}

/// `GET /v1/recoverable`.
pub(crate) async fn recoverable(state: Arc<ServerState>) -> Answer {
    let states = state.journal.recoverable_async().await?;
    Ok(ok(&StatesResponse { states }))
}

/// `GET /v1/episodes/latest?goal&agent`.
pub(crate) async fn latest_episode(state: Arc<ServerState>, request: Request) -> Answer {
    let query = Query::parse(request.uri().query())?;
    let goal = query
        .text("goal")?
        .ok_or_else(|| ApiError::invalid("query goal= is missing"))?;
    let agent = query
        .text("agent")?
        .ok_or_else(|| ApiError::invalid("query agent= is missing"))?;
    let episode = state.journal.latest_episode_async(goal, agent).await?;
    Ok(ok(&EpisodeResponse { episode }))
}

/// `GET /v1/episodes/next?goal`.
pub(crate) async fn next_episode(state: Arc<ServerState>, request: Request) -> Answer {
    let query = Query::parse(request.uri().query())?;
    let goal = query
        .text("goal")?
        .ok_or_else(|| ApiError::invalid("query goal= is missing"))?;
    let episode = state.journal.next_episode_async(goal).await?;
    Ok(ok(&EpisodeResponse { episode: Some(episode) }))
}

/// `GET /v1/export[?run=K]`: JSON lines (the export format), parents before
/// children, streamed in chunks. A read failure mid-stream ends the body
/// with an error (the client sees a broken chunked body, never a short
/// export that looks whole).
pub(crate) async fn export(state: Arc<ServerState>, request: Request) -> Answer {
    let query = Query::parse(request.uri().query())?;
    let run = query.key("run")?;
    let journal = state.journal.clone();
    let order = blocking(move || journal.export_order(run.as_ref())).await??;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let journal = state.journal.clone();
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(64 * 1024);
        for item in order {
            let walked = journal.for_each_event(&item.key, 0, |envelope| {
                if envelope.seq >= item.end_seq {
                    return ControlFlow::Break(());
                }
                chunk.extend_from_slice(envelope.to_json_line().as_bytes());
                chunk.push(b'\n');
                if chunk.len() >= 64 * 1024 {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(64 * 1024));
                    if sender.blocking_send(Ok(Bytes::from(full))).is_err() {
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            if let Err(error) = walked {
                // The client is gone when this fails: nobody to tell.
                drop(sender.blocking_send(Err(std::io::Error::other(error.to_string()))));
                return;
            }
        }
        if !chunk.is_empty() {
            drop(sender.blocking_send(Ok(Bytes::from(chunk))));
        }
    });
    let mut response = Body::from_stream(super::subscribe::ReceiverStream(receiver)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}
