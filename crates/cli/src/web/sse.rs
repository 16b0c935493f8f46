//! Server-Sent Events: `GET /v1/runs/{run}/subscribe?from=SEQ` (a run's
//! stored events from SEQ, then its live ones) and `GET /v1/subscribe` (every
//! run, from now), framed as docs/ui.md says.
//!
//! Invariants: `Last-Event-ID: n` resumes at n + 1 and overrides `from`, so
//! a reconnect has no gap and no duplicate; a subscriber that lagged gets
//! `event: lagged` with the seq to resume from and the stream ends; every
//! other end is `event: end` with its reason; a comment line every
//! [`KEEP_ALIVE`] keeps idle connections open; the forwarding task stops as
//! soon as the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::{header, Response};
use runjournal::{AsyncSubscription, Envelope, SubscribeError};
use serde_json::json;
use tokio::sync::mpsc;

use super::api::App;
use super::http::Body;
use super::shapes::{key_from_segments, library, query_number, query_pairs, ApiError};

/// The interval of keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events buffered per subscriber before it counts as lagging.
const BUFFER: usize = 4096;

/// The response of a subscription route.
pub fn subscribe(app: &App, path: &str, query: &str, last_event_id: Option<u64>) -> Result<Response<Body>, ApiError> {
    let pairs = query_pairs(query)?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (subscription, per_run) = match segments.as_slice() {
        ["v1", "subscribe"] => (app.journal.subscribe_all_async(BUFFER).map_err(library)?, false),
        ["v1", "runs", goal, episode, agent, "subscribe"] => {
            let key = key_from_segments(goal, episode, agent)?;
            app.journal.run_info(&key).map_err(library)?;
            let from = match last_event_id {
                Some(seen) => seen + 1,
                None => query_number(&pairs, "from")?.unwrap_or(0),
            };
            (app.journal.subscribe_async(&key, from, BUFFER).map_err(library)?, true)
        }
        _ => return Err(ApiError::not_found_route(path)),
    };
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(forward(subscription, sender, per_run));
    let mut response = Response::new(SseBody { receiver }.boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One SSE frame.
fn frame(id: Option<&str>, event: &str, data: &str) -> Bytes {
    let mut text = String::new();
    if let Some(id) = id {
        text.push_str("id: ");
        text.push_str(id);
        text.push('\n');
    }
    text.push_str("event: ");
    text.push_str(event);
    text.push_str("\ndata: ");
    text.push_str(data);
    text.push_str("\n\n");
    Bytes::from(text)
}

fn envelope_frame(envelope: &Envelope, per_run: bool) -> Bytes {
    let id = if per_run {
        envelope.seq.to_string()
    } else {
        format!(
            "{}/{}/{}/{}",
            envelope.run.goal, envelope.run.episode, envelope.run.agent, envelope.seq
        )
    };
    frame(Some(&id), "envelope", &envelope.to_json_line())
}

async fn next(subscription: &mut AsyncSubscription) -> Option<Result<Envelope, SubscribeError>> {
    std::future::poll_fn(|context| Pin::new(&mut *subscription).poll_next(context)).await
}

async fn forward(mut subscription: AsyncSubscription, sender: mpsc::Sender<Bytes>, per_run: bool) {
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        let (chunk, last) = tokio::select! {
            item = next(&mut subscription) => match item {
                Some(Ok(envelope)) => (envelope_frame(&envelope, per_run), false),
                Some(Err(SubscribeError::Lagged(point))) => {
                    (frame(None, "lagged", &json!({"next_seq": point.seq}).to_string()), true)
                }
                Some(Err(SubscribeError::Closed)) | None => {
                    (frame(None, "end", &json!({"reason": "shutdown"}).to_string()), true)
                }
                Some(Err(error)) => {
                    let error = library(error);
                    (frame(None, "end", &json!({"reason": error.code, "message": error.message}).to_string()), true)
                }
            },
            _ = keep_alive.tick() => (Bytes::from_static(b": keep-alive\n\n"), false),
            () = sender.closed() => return,
        };
        if sender.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// The streamed body: frames from the forwarding task until it ends.
struct SseBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(context)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
