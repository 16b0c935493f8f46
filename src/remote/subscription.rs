//! Subscriptions of a connected journal: Server-Sent Events.
//!
//! Invariants:
//! - A run's subscription delivers every seq once, in order: a dropped
//!   connection is reopened with `Last-Event-ID` (the last seq delivered), and
//!   a seq at or below it is never delivered again.
//! - `lagged` ends the subscription with [`SubscribeError::Lagged`] (catch up
//!   from its seq); `end` ends it: `shutdown` as a closed journal, `purged`
//!   as [`SubscribeError::Purged`], as embedded. The every-run stream cannot resume without a gap:
//!   a dropped connection ends it with the connection's error.
//! - The receiving task runs on the client's runtime and stops (closing its
//!   connection, so the owner's subscriber slot is freed) as soon as the
//!   subscription is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use runjournal_core::{Envelope, RunKey};

use super::client::{run_path, Shared};
use super::error::{Failure, RemoteError};
use crate::error::ReadError;
use crate::hub::LagPoint;
use crate::subscription::{AsyncSubscription, SubscribeError};

type Item = Result<Envelope, SubscribeError>;

/// How long a dropped run subscription keeps trying to reconnect.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// A blocking subscription's receiving end.
pub(crate) struct RemoteSubscription {
    shared: Arc<Shared>,
    receiver: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Item>>>,
    task: tokio::task::JoinHandle<()>,
    ended: bool,
}

impl RemoteSubscription {
    /// Subscribes to `key` from `from_seq` (every run from now when `None`):
    /// returns once the owner answered the subscription (so "from now"
    /// starts before this returns), or with the owner's refusal.
    pub(crate) fn start(
        shared: Arc<Shared>,
        key: Option<RunKey>,
        from_seq: u64,
        buffer: usize,
    ) -> Result<RemoteSubscription, SubscribeError> {
        let (sender, receiver) = tokio::sync::mpsc::channel(buffer.max(1));
        let first = open_first(&shared, key.as_ref(), from_seq)?;
        let task = shared
            .handle
            .spawn(receive(shared.clone(), key, from_seq, sender, first));
        Ok(RemoteSubscription {
            shared,
            receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
            task,
            ended: false,
        })
    }

    /// The same, as an async stream (the task stops when it is dropped).
    pub(crate) fn start_async(
        shared: &Arc<Shared>,
        key: Option<RunKey>,
        from_seq: u64,
        buffer: usize,
    ) -> Result<AsyncSubscription, SubscribeError> {
        let (sender, receiver) = tokio::sync::mpsc::channel(buffer.max(1));
        let first = open_first(shared, key.as_ref(), from_seq)?;
        shared
            .handle
            .spawn(receive(shared.clone(), key, from_seq, sender, first));
        Ok(AsyncSubscription::from_receiver(receiver))
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn recv(&mut self) -> Result<Envelope, SubscribeError> {
        loop {
            if let Some(envelope) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(envelope);
            }
        }
    }

    pub(crate) fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Envelope>, SubscribeError> {
        if self.ended {
            return Err(SubscribeError::Closed);
        }
        let receiver = self.receiver.clone();
        let (sender, answer) = crossbeam_channel::bounded(1);
        self.shared.handle.spawn(async move {
            let mut receiver = receiver.lock().await;
            let item = tokio::time::timeout(timeout, receiver.recv()).await;
            drop(sender.send(item));
        });
        match answer.recv() {
            Ok(Ok(Some(Ok(envelope)))) => Ok(Some(envelope)),
            Ok(Err(_)) => Ok(None),
            Ok(Ok(Some(Err(error)))) => {
                self.ended = true;
                Err(error)
            }
            Ok(Ok(None)) | Err(_) => {
                self.ended = true;
                Err(SubscribeError::Closed)
            }
        }
    }
}

impl Drop for RemoteSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One parsed server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Splits complete events off the front of `buffer` (keep-alive comments
/// and blank events are dropped).
pub(crate) fn take_events(buffer: &mut String) -> Vec<SseEvent> {
    let mut events = Vec::new();
    loop {
        let normalized = buffer.replace("\r\n", "\n");
        let Some(end) = normalized.find("\n\n") else {
            *buffer = normalized;
            return events;
        };
        let block = normalized[..end].to_string();
        *buffer = normalized[end + 2..].to_string();
        let mut event = SseEvent {
            event: "message".into(),
            ..SseEvent::default()
        };
        let mut data = Vec::new();
        let mut any = false;
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            any = true;
            match field {
                "id" => event.id = Some(value.to_string()),
                "event" => event.event = value.to_string(),
                "data" => data.push(value),
                _ => {}
            }
        }
        event.data = data.join("\n");
        if any {
            events.push(event);
        }
    }
}

/// Why one connection of the stream ended.
enum Ended {
    /// The subscription is over (the item, if any, was sent).
    Done,
    /// The connection dropped; reconnect.
    Dropped(RemoteError),
}

/// Opens the stream (on this thread's behalf, on the client's runtime).
fn open_first(shared: &Arc<Shared>, key: Option<&RunKey>, from_seq: u64) -> Result<Response, SubscribeError> {
    let opener = shared.clone();
    let owned = key.cloned();
    shared
        .block_raw(async move { connect(&opener, owned.as_ref(), from_seq, None).await })
        .unwrap_or_else(|| Err(shared.stopped()))
        .map_err(|failure| failure.subscribe(key))
}

type Response = hyper::Response<hyper::body::Incoming>;

/// Receives the stream from its `first` answer, reconnecting a run's
/// subscription where it stopped.
async fn receive(
    shared: Arc<Shared>,
    key: Option<RunKey>,
    from_seq: u64,
    sender: tokio::sync::mpsc::Sender<Item>,
    first: Response,
) {
    let mut last: Option<u64> = None;
    let mut dropped_at: Option<Instant> = None;
    let mut first = Some(first);
    loop {
        let opened = match first.take() {
            Some(response) => Ok(response),
            None => connect(&shared, key.as_ref(), from_seq, last).await,
        };
        let ended = match opened {
            Ok(response) => {
                dropped_at = None;
                read_stream(response, key.as_ref(), &mut last, &sender).await
            }
            Err(Failure::Transport(error)) if key.is_some() && last.is_some() => Ended::Dropped(error),
            Err(failure) => {
                drop(sender.send(Err(failure.subscribe(key.as_ref()))).await);
                Ended::Done
            }
        };
        match ended {
            Ended::Done => return,
            Ended::Dropped(error) => {
                let since = *dropped_at.get_or_insert_with(Instant::now);
                if key.is_none() || since.elapsed() > RECONNECT_FOR || sender.is_closed() {
                    drop(sender.send(Err(SubscribeError::Read(ReadError::Remote(error)))).await);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connect(shared: &Shared, key: Option<&RunKey>, from_seq: u64, last: Option<u64>) -> Result<Response, Failure> {
    let mut headers = vec![("accept", "text/event-stream".to_string())];
    let path = match key {
        Some(key) => {
            if let Some(last) = last {
                headers.push(("last-event-id", last.to_string()));
            }
            format!("{}/subscribe?from={from_seq}", run_path(key))
        }
        None => "/v1/subscribe".to_string(),
    };
    shared.stream(&path, &headers).await
}

/// Reads one connection's events into `sender`.
async fn read_stream(
    response: Response,
    key: Option<&RunKey>,
    last: &mut Option<u64>,
    sender: &tokio::sync::mpsc::Sender<Item>,
) -> Ended {
    let mut body = response.into_body();
    let mut text = String::new();
    let mut pending = Vec::new();
    loop {
        // A dropped subscription closes its connection at once, not at the next event.
        let next = tokio::select! {
            next = body.frame() => next,
            () = sender.closed() => return Ended::Done,
        };
        let frame = match next {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Ended::Dropped(dropped(&error.to_string())),
            None => return Ended::Dropped(dropped("the stream ended without an end event")),
        };
        let Ok(data) = frame.into_data() else { continue };
        pending.extend_from_slice(&data);
        // Only whole UTF-8 goes into the text; a split character waits.
        let valid = match std::str::from_utf8(&pending) {
            Ok(valid) => valid.len(),
            Err(error) => error.valid_up_to(),
        };
        text.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
        pending.drain(..valid);
        for event in take_events(&mut text) {
            let item = match event.event.as_str() {
                "envelope" => match serde_json::from_str::<Envelope>(&event.data) {
                    Ok(envelope) => {
                        if key.is_some() && last.is_some_and(|last| envelope.seq <= last) {
                            continue;
                        }
                        if key.is_some() {
                            *last = Some(envelope.seq);
                        }
                        Ok(envelope)
                    }
                    Err(error) => Err(protocol(format!("an envelope event that does not parse: {error}"))),
                },
                "lagged" => {
                    let seq = serde_json::from_str::<serde_json::Value>(&event.data)
                        .ok()
                        .and_then(|value| value.get("next_seq").and_then(serde_json::Value::as_u64));
                    match (key, seq) {
                        (Some(run), Some(seq)) => Err(SubscribeError::Lagged(LagPoint { run: run.clone(), seq })),
                        _ => Err(protocol(format!("lagged: {}", event.data))),
                    }
                }
                "end" => {
                    let reason = serde_json::from_str::<serde_json::Value>(&event.data)
                        .ok()
                        .and_then(|value| {
                            value
                                .get("reason")
                                .and_then(serde_json::Value::as_str)
                                .map(str::to_string)
                        });
                    match (reason.as_deref(), key) {
                        (Some("purged"), Some(run)) => Err(SubscribeError::Purged { run: run.clone() }),
                        _ => return Ended::Done,
                    }
                }
                _ => continue,
            };
            let last_item = item.is_err();
            if sender.send(item).await.is_err() || last_item {
                return Ended::Done;
            }
        }
    }
}

fn dropped(detail: &str) -> RemoteError {
    RemoteError::Unreachable {
        endpoint: String::from("subscription"),
        detail: detail.to_string(),
    }
}

fn protocol(detail: String) -> SubscribeError {
    SubscribeError::Read(ReadError::Remote(RemoteError::Protocol {
        endpoint: String::from("subscription"),
        detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_split_at_blank_lines_and_comments_are_dropped() {
        let mut buffer = String::from(": keep-alive\n\nid: 3\nevent: envelope\ndata: {\"a\":1}\n\nid: 4\r\nevent: end\r\ndata: x\r\n\r\nid: 5\nevent: env");
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    id: Some("3".into()),
                    event: "envelope".into(),
                    data: "{\"a\":1}".into(),
                },
                SseEvent {
                    id: Some("4".into()),
                    event: "end".into(),
                    data: "x".into(),
                },
            ]
        );
        assert_eq!(buffer, "id: 5\nevent: env");
    }
}
