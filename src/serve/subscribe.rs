//! Subscriptions as Server-Sent Events.
//!
//! Invariants:
//! - A run's stream starts at `Last-Event-ID + 1` when the header is given
//!   (else at `from`), so a reconnect sees no gap and no duplicate: the
//!   journal's subscription delivers stored then live events exactly once.
//! - A subscriber that falls behind gets `event: lagged` with the seq to
//!   reconnect from, and the stream ends; a purged run and a shutdown end it
//!   with `event: end`. The writer never waits for a subscriber.
//! - At most [`super::ServeOptions::max_subscriptions`] are open at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;

use super::api::{Answer, ApiError, Query, ServerState};
use crate::subscription::{AsyncSubscription, SubscribeError};
use crate::wire::{self, EndBody, LaggedBody};
use runjournal_core::{Envelope, RunKey};

/// A `Stream` over a tokio channel.
pub(crate) struct ReceiverStream<T>(pub(crate) tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(context)
    }
}

/// Where a run's stream starts: after `Last-Event-ID`, else at `from`.
pub(crate) fn start_seq(last_event_id: Option<&[u8]>, from: Option<u64>) -> Result<u64, ApiError> {
    match last_event_id {
        Some(id) => std::str::from_utf8(id)
            .ok()
            .and_then(|id| id.trim().parse::<u64>().ok())
            .and_then(|seq| seq.checked_add(1))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Last-Event-ID {:?} is not the seq of an event",
                    String::from_utf8_lossy(id)
                ))
            }),
        None => Ok(from.unwrap_or(0)),
    }
}

fn permit(state: &ServerState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state.subscriptions.clone().try_acquire_owned().map_err(|_| {
        ApiError::transport(
            wire::BUSY,
            format!(
                "the server has {} subscriptions open, its limit; retry later",
                state.options.max_subscriptions
            ),
        )
    })
}

/// `GET /v1/runs/{k}/subscribe?from=SEQ`.
pub(crate) async fn run(state: Arc<ServerState>, request: Request) -> Answer {
    let key = super::api::path_key(&request)?;
    let query = Query::parse(request.uri().query())?;
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .map(axum::http::HeaderValue::as_bytes);
    let from = start_seq(last_event_id, query.number("from")?)?;
    let permit = permit(&state)?;
    let journal = state.journal.clone();
    let buffer = state.options.subscriber_buffer;
    let subscribe_key = key.clone();
    let subscription = super::api::blocking(move || journal.subscribe_async(&subscribe_key, from, buffer)).await??;
    Ok(stream(state, Some(key), subscription, permit))
}

/// `GET /v1/subscribe`: every run's live events from now.
pub(crate) async fn all(state: Arc<ServerState>, _request: Request) -> Answer {
    let permit = permit(&state)?;
    let journal = state.journal.clone();
    let buffer = state.options.subscriber_buffer;
    let subscription = super::api::blocking(move || journal.subscribe_all_async(buffer)).await??;
    Ok(stream(state, None, subscription, permit))
}

fn envelope_event(envelope: &Envelope, all: bool) -> SseEvent {
    let id = if all {
        format!("{}/{}", wire::encode_key(&envelope.run), envelope.seq)
    } else {
        envelope.seq.to_string()
    };
    SseEvent::default()
        .id(id)
        .event("envelope")
        .data(serde_json::to_string(envelope).unwrap_or_default())
}

fn end_event(reason: &str) -> SseEvent {
    SseEvent::default().event("end").data(
        serde_json::to_string(&EndBody {
            reason: reason.to_string(),
        })
        .unwrap_or_default(),
    )
}

/// The SSE response fed by a task that forwards the subscription.
fn stream(
    state: Arc<ServerState>,
    key: Option<RunKey>,
    mut subscription: AsyncSubscription,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> axum::response::Response {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(64);
    let keep_alive = state.options.keep_alive;
    state.counters.subscriber_opened();
    tokio::spawn(async move {
        let all = key.is_none();
        let mut shutdown = state.shutdown.clone();
        let mut purges = state.purges.subscribe();
        let mut check = tokio::time::interval(keep_alive);
        check.tick().await;
        let last = loop {
            tokio::select! {
                item = subscription.recv() => match item {
                    Some(Ok(envelope)) => {
                        if sender.send(Ok(envelope_event(&envelope, all))).await.is_err() {
                            break None;
                        }
                    }
                    Some(Err(SubscribeError::Lagged(point))) => {
                        let body = LaggedBody { next_seq: point.seq };
                        break Some(SseEvent::default().event("lagged").data(serde_json::to_string(&body).unwrap_or_default()));
                    }
                    Some(Err(SubscribeError::Purged { .. })) => break Some(end_event("purged")),
                    Some(Err(error)) => {
                        let body = wire::ErrorBody::from(&crate::Error::from(error));
                        break Some(SseEvent::default().event("error").data(serde_json::to_string(&body).unwrap_or_default()));
                    }
                    None => break Some(end_event("shutdown")),
                },
                _ = shutdown.changed() => break Some(end_event("shutdown")),
                changed = purges.changed() => {
                    if changed.is_err() || purged(&state, key.as_ref()).await {
                        break Some(end_event("purged"));
                    }
                }
                _ = check.tick() => {
                    if purged(&state, key.as_ref()).await {
                        break Some(end_event("purged"));
                    }
                }
                () = sender.closed() => break None,
            }
        };
        if let Some(event) = last {
            // A client already gone needs no last word.
            drop(sender.send(Ok(event)).await);
        }
        state.counters.subscriber_closed();
        drop(permit);
    });
    Sse::new(ReceiverStream(receiver))
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

/// Whether `key`'s run is gone from the store (a stream of every run never is).
async fn purged(state: &ServerState, key: Option<&RunKey>) -> bool {
    match key {
        Some(key) => matches!(
            state.journal.run_info_async(key.clone()).await,
            Err(crate::ReadError::NotFound { .. })
        ),
        None => false,
    }
}
