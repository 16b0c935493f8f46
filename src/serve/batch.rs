//! `POST /v1/appends`: many appends (to any runs) in one request.
//!
//! Invariants:
//! - Each item is checked and applied exactly as `POST /v1/runs/{k}/events`
//!   with `?answer=receipts` applies it, and gets that answer or that error.
//! - Every item is handed to the writer before any is awaited, in list
//!   order (so items on one run apply in that order): they share commits.
//!   They are queued under a writer hold, so the writer takes them into one
//!   group; the hold ends before any wait (for a handle to be built).
//! - A body over the bound, more than [`wire::MAX_BATCH_APPENDS`] items, no
//!   items or malformed JSON is refused whole: nothing is stored.
//! - A durable item on a buffered journal is answered after a sync.

use std::sync::Arc;

use axum::extract::Request;

use super::api::{self, ok, Answer, ApiError, ServerState};
use crate::run::{Checks, ClientAppend, Run};
use crate::wire::{self, AppendItem, AppendResult, AppendsRequest, AppendsResponse, WireDurability};

/// `POST /v1/appends`.
pub(crate) async fn appends(state: Arc<ServerState>, request: Request) -> Answer {
    let length = api::content_length(&request);
    let limit = batch_body_limit(state.max_body);
    let bytes = api::read_body(&state, request.into_body(), length, limit).await?;
    let body: AppendsRequest = api::parse_json(&bytes)?;
    if body.appends.is_empty() {
        return Err(ApiError::invalid(
            "the request has no appends (as an append of no events is refused); nothing was appended",
        ));
    }
    if body.appends.len() > wire::MAX_BATCH_APPENDS {
        return Err(ApiError::transport(
            wire::PAYLOAD_TOO_LARGE,
            format!(
                "the request has {} appends, more than the limit of {}; nothing was appended",
                body.appends.len(),
                wire::MAX_BATCH_APPENDS
            ),
        ));
    }
    state.counters.batch(body.appends.len());
    let mut results: Vec<Option<Result<Written, ApiError>>> = Vec::with_capacity(body.appends.len());
    let mut queued = Vec::with_capacity(body.appends.len());
    let writer = state.journal.embedded_inner().map(|inner| &inner.writer);
    // Items are handed over under one writer hold, so the writer takes them
    // into one group; the hold ends before any wait for a handle.
    let mut hold = None;
    for item in body.appends {
        let run = match state.handles.cached(&item.run, item.epoch) {
            Ok(Some(run)) => Ok(run),
            Ok(None) => {
                drop(hold.take());
                state.handles.get(&state.journal, &item.run, item.epoch).await
            }
            Err(error) => Err(error),
        };
        let index = results.len();
        results.push(None);
        let queued_item = run.and_then(|run| {
            if hold.is_none() {
                hold = writer.map(crate::writer::Writer::hold);
            }
            queue(&state, run, item)
        });
        match queued_item {
            Ok(append) => queued.push((index, append)),
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    drop(hold);
    let mut sync = false;
    for (index, append) in queued {
        sync |= append.durable;
        results[index] = Some(append.wait(&state).await);
    }
    let buffered_journal = state.journal.options().durability == crate::Durability::Buffered;
    let mut sync_failure = None;
    if buffered_journal && sync {
        sync_failure = state.journal.sync_async().await.err().map(ApiError::from);
    }
    let results = results
        .into_iter()
        .map(|result| match result {
            Some(Ok(answer)) => match &sync_failure {
                Some(failure) if answer.durable => failed(&state, &ApiError(failure.0.clone())),
                _ => AppendResult::Appended(answer.receipts),
            },
            Some(Err(error)) => failed(&state, &error),
            None => failed(&state, &ApiError::transport("other", "the append was not answered")),
        })
        .collect();
    Ok(ok(&AppendsResponse { results }))
}

/// The body bound of `POST /v1/appends`: [`wire::BATCH_BODY_FACTOR`]
/// single append bodies, so any append the single endpoint takes fits.
pub(crate) fn batch_body_limit(max_body: usize) -> usize {
    max_body.saturating_mul(wire::BATCH_BODY_FACTOR)
}

fn failed(state: &ServerState, error: &ApiError) -> AppendResult {
    state.counters.batch_item_failed(api::static_code(&error.0.error.code));
    AppendResult::Failed {
        status: error.0.status(),
        error: error.0.error.clone(),
    }
}

/// An item handed to the writer.
struct Queued {
    run: Arc<Run>,
    key: runjournal_core::RunKey,
    epoch: u64,
    expected_seq: u64,
    durable: bool,
    append: ClientAppend,
}

/// The answer of an item that was written.
struct Written {
    receipts: wire::ReceiptsResponse,
    durable: bool,
}

/// Hands `item` to the writer through `run`, its handle; never waits.
fn queue(state: &ServerState, run: Arc<Run>, item: AppendItem) -> Result<Queued, ApiError> {
    match run.queue_for_client(item.expected_seq, item.events, Checks::from(item.checks)) {
        Ok(append) => Ok(Queued {
            run,
            key: item.run,
            epoch: item.epoch,
            expected_seq: item.expected_seq,
            durable: item.durability == Some(WireDurability::Durable),
            append,
        }),
        Err(error) => {
            state.handles.evict_if_broken(&run);
            Err(error.into())
        }
    }
}

impl Queued {
    async fn wait(self, state: &ServerState) -> Result<Written, ApiError> {
        match self.run.wait_for_client(self.append).await {
            Ok(envelopes) => {
                let handle = super::writes::handle_after(&self.key, self.epoch, self.expected_seq, &envelopes);
                let receipts = envelopes.iter().map(wire::Receipt::from).collect();
                Ok(Written {
                    receipts: wire::ReceiptsResponse { receipts, handle },
                    durable: self.durable,
                })
            }
            Err(error) => {
                state.handles.evict_if_broken(&self.run);
                Err(error.into())
            }
        }
    }
}
