//! A connected journal's concurrent appends, coalesced into `POST /v1/appends`.
//!
//! Invariants:
//! - No timer batches: an append goes at once when fewer than
//!   [`IN_FLIGHT`] append requests are in flight, and otherwise waits for
//!   one to finish; the request after it carries every append waiting then
//!   (at most [`wire::MAX_BATCH_APPENDS`] and [`MAX_BATCH_BODY`] bytes, the
//!   rest in the next).
//! - A request of one append is the single `POST /v1/runs/{k}/events`: a
//!   lone append is sent exactly as without coalescing.
//! - Each append gets exactly its own answer: the one the single endpoint
//!   gives it, or that failure. A batch without a (complete) answer fails
//!   every append in it with that transport failure, whose outcome is
//!   unknown; nothing is ever taken for a success that was not answered.
//! - An owner without the batch endpoint (404 or 405 for it) gets single
//!   appends from then on; a batch it refused whole is resent one append at
//!   a time, as is one refused as too large (nothing of either was applied).
//! - Every append of a run is sent and answered before the next one of it is
//!   submitted (the run's order lock), so coalescing never reorders a run.

use std::sync::{Arc, Mutex, PoisonError};

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use runjournal_core::Envelope;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::client::Shared;
use super::error::{Failure, RemoteError, WireFailure};
use super::run::Handle;
use crate::wire;

/// Append requests one client has in flight at once; appends submitted
/// while this many are in flight wait for the next. Two keep the owner's
/// writer busy while one batch's answer travels back and the next gathers
/// (64 clients: about 0.50 of the embedded rate with 2, 0.44 with 1).
pub(crate) const IN_FLIGHT: usize = 2;

/// The largest body of a batch this client builds: well under the owner's
/// default bound (4 × its single append bound); an owner configured lower
/// refuses it as too large and gets its appends one at a time.
pub(crate) const MAX_BATCH_BODY: usize = 4 << 20;

/// The batch endpoint's path.
const BATCH_PATH: &str = "/v1/appends";

/// An append's answer: receipts (asked for), or the envelopes (an owner
/// that does not know `?answer=receipts` ignores it).
#[derive(Deserialize)]
pub(crate) struct Appended {
    #[serde(default)]
    pub(crate) envelopes: Vec<Envelope>,
    #[serde(default)]
    pub(crate) receipts: Option<Vec<wire::Receipt>>,
    pub(crate) handle: Handle,
}

/// One append to send: its single request and, for a batch, its run.
pub(crate) struct Submission {
    /// `/v1/runs/{k}/events?answer=receipts`.
    pub(crate) path: Arc<str>,
    /// The run key as JSON, spliced into a batch item.
    pub(crate) run_json: Arc<str>,
    /// The single append's body (`wire::AppendRequest`), a JSON object.
    pub(crate) body: Bytes,
}

/// A submitted append and where its answer goes.
struct Item {
    submission: Submission,
    reply: oneshot::Sender<Result<Appended, Failure>>,
}

/// The appends waiting for a request of one client.
#[derive(Default)]
pub(crate) struct Coalescer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<Item>,
    in_flight: usize,
    /// The owner has no batch endpoint.
    singles_only: bool,
}

impl Coalescer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update of the state is complete before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends submitted and not yet in a request.
    pub(crate) fn queued(&self) -> usize {
        self.state().queue.len()
    }

    /// Whether appends go one request each (the owner has no batch endpoint).
    pub(crate) fn singles_only(&self) -> bool {
        self.state().singles_only
    }

    /// The next request's appends, or `None` (and one fewer in flight) when
    /// none wait.
    fn next(&self) -> Option<Vec<Item>> {
        let mut state = self.state();
        if state.queue.is_empty() {
            state.in_flight -= 1;
            return None;
        }
        let mut size = 0;
        let mut take = 0;
        for item in &state.queue {
            size += item_size(&item.submission);
            if take > 0 && (take == wire::MAX_BATCH_APPENDS || size > MAX_BATCH_BODY) {
                break;
            }
            take += 1;
        }
        Some(state.queue.drain(..take).collect())
    }
}

/// Sends `submission` (alone or with others) and returns its own answer.
pub(crate) async fn append(shared: &Arc<Shared>, submission: Submission) -> Result<Appended, Failure> {
    let (reply, answer) = oneshot::channel();
    let item = Item { submission, reply };
    match submit(&shared.coalescer, item) {
        Submitted::Lead(item) => {
            // Its own task: a caller that stops waiting never strands the queue.
            shared.handle.spawn(drive(shared.clone(), vec![item]));
        }
        Submitted::Queued => {}
        Submitted::Single(Item { submission, .. }) => return single(shared, &submission).await,
    }
    answer.await.unwrap_or_else(|_| Err(shared.stopped()))
}

/// What became of a submitted item.
enum Submitted {
    /// It goes now, in a request of its own: a slot is taken for it.
    Lead(Item),
    /// It waits for a request in flight.
    Queued,
    /// The owner takes single appends only.
    Single(Item),
}

fn submit(coalescer: &Coalescer, item: Item) -> Submitted {
    let mut state = coalescer.state();
    if state.singles_only {
        Submitted::Single(item)
    } else if state.in_flight < IN_FLIGHT {
        state.in_flight += 1;
        Submitted::Lead(item)
    } else {
        state.queue.push(item);
        Submitted::Queued
    }
}

/// Sends `items`, then every batch that queued meanwhile, until none waits.
async fn drive(shared: Arc<Shared>, mut items: Vec<Item>) {
    loop {
        send(&shared, items).await;
        match shared.coalescer.next() {
            Some(next) => items = next,
            None => return,
        }
    }
}

async fn single(shared: &Shared, submission: &Submission) -> Result<Appended, Failure> {
    shared
        .call_raw::<Appended>(Method::POST, &submission.path, submission.body.clone())
        .await
}

/// One request for `items`: the single endpoint for one, the batch for more.
async fn send(shared: &Arc<Shared>, items: Vec<Item>) {
    if items.len() == 1 || shared.coalescer.singles_only() {
        singly(shared, items).await;
        return;
    }
    let body = batch_body(items.iter().map(|item| &item.submission));
    let (status, answer) = match shared.exchange(Method::POST, BATCH_PATH, body).await {
        Ok(exchanged) => exchanged,
        Err(failure) => {
            for item in items {
                // The caller waits for it; it is gone only if it panicked.
                drop(item.reply.send(Err(failure.clone())));
            }
            return;
        }
    };
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        tracing::debug!(endpoint = %shared.endpoint, %status, "the owner has no batch endpoint: single appends from now on");
        shared.coalescer.state().singles_only = true;
        singly(shared, items).await;
        return;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        singly(shared, items).await;
        return;
    }
    if !status.is_success() {
        let failure = shared.failure(status, &answer);
        for item in items {
            drop(item.reply.send(Err(failure.clone())));
        }
        return;
    }
    let results = match parse_results(shared, &answer, items.len()) {
        Ok(results) => results,
        Err(failure) => {
            for item in items {
                drop(item.reply.send(Err(failure.clone())));
            }
            return;
        }
    };
    for (item, result) in items.into_iter().zip(results) {
        drop(item.reply.send(result));
    }
}

/// Each item on the single endpoint: concurrently, each on its own task
/// (one item per run is ever submitted, so nothing of a run reorders).
async fn singly(shared: &Arc<Shared>, items: Vec<Item>) {
    let mut last = None;
    for item in items {
        if let Some(previous) = last.replace(item) {
            let shared = shared.clone();
            shared.handle.clone().spawn(async move {
                let Item { submission, reply } = previous;
                drop(reply.send(single(&shared, &submission).await));
            });
        }
    }
    if let Some(Item { submission, reply }) = last {
        drop(reply.send(single(shared, &submission).await));
    }
}

/// The bytes an item adds to a batch body.
fn item_size(submission: &Submission) -> usize {
    submission.body.len() + submission.run_json.len() + 8
}

/// `{"appends": [...]}` around the items' single bodies, each with its run
/// spliced in front of the body's own fields (nothing is encoded again).
fn batch_body<'a>(submissions: impl Iterator<Item = &'a Submission> + Clone) -> Bytes {
    let size: usize = submissions.clone().map(item_size).sum();
    let mut body = Vec::with_capacity(size + 16);
    body.extend_from_slice(br#"{"appends":["#);
    for (index, submission) in submissions.enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"run":"#);
        body.extend_from_slice(submission.run_json.as_bytes());
        // The single body is `{...}`: its fields follow the run's.
        if let Some(fields) = submission.body.strip_prefix(b"{") {
            body.push(b',');
            body.extend_from_slice(fields);
        }
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// One result of a `POST /v1/appends` (`wire::AppendResult`), as flat
/// optional fields: receipts and a handle, or a status and an error.
#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    receipts: Option<Vec<wire::Receipt>>,
    #[serde(default)]
    handle: Option<Handle>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<WireFailure>,
}

/// The `count` items' answers in a batch's success answer.
fn parse_results(shared: &Shared, answer: &[u8], count: usize) -> Result<Vec<Result<Appended, Failure>>, Failure> {
    #[derive(Deserialize)]
    struct Results {
        results: Vec<ItemResult>,
    }
    let protocol = |detail: String| {
        Failure::Transport(RemoteError::Protocol {
            endpoint: shared.endpoint.to_string(),
            detail,
        })
    };
    let results: Results = serde_json::from_slice(answer)
        .map_err(|error| protocol(format!("{BATCH_PATH} answered a body that is not its results: {error}")))?;
    if results.results.len() != count {
        return Err(protocol(format!(
            "{BATCH_PATH} answered {} results for {count} appends",
            results.results.len()
        )));
    }
    results
        .results
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result {
            ItemResult {
                receipts: Some(receipts),
                handle: Some(handle),
                error: None,
                ..
            } => Ok(Ok(Appended {
                envelopes: Vec::new(),
                receipts: Some(receipts),
                handle,
            })),
            ItemResult {
                status: Some(status),
                error: Some(mut error),
                receipts: None,
                handle: None,
            } => {
                error.status = status;
                error.endpoint = shared.endpoint.to_string();
                Ok(Err(Failure::Answer(Box::new(error))))
            }
            _ => Err(protocol(format!(
                "{BATCH_PATH} answered result {index} with neither receipts and a handle nor a status and an error"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::*;
    use crate::wire::{AppendItem, AppendsRequest, ChecksMode, WireDurability};
    use runjournal_core::{Event, Message, Role, RunKey};

    fn submission(key: &RunKey, body: &str) -> Submission {
        Submission {
            path: Arc::from("/unused"),
            run_json: Arc::from(serde_json::to_string(key).unwrap()),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn the_batch_body_is_the_wire_appends_request_of_the_single_bodies() {
        let events = vec![Event::Step {
            messages: vec![Message::new(Role::Assistant, "a \"quoted\" step")],
        }];
        let encoded = serde_json::to_string(&events).unwrap();
        let (one, two) = (RunKey::new("g", 0, "a").unwrap(), RunKey::new("g", 1, "b").unwrap());
        let submissions = [
            submission(
                &one,
                &format!(
                    r#"{{"epoch":2,"expected_seq":5,"checks":"typed","durability":"durable","events":{encoded}}}"#
                ),
            ),
            submission(
                &two,
                &format!(r#"{{"epoch":0,"expected_seq":1,"checks":"raw","events":{encoded}}}"#),
            ),
        ];
        let body = batch_body(submissions.iter());
        assert_eq!(
            body.len(),
            submissions.iter().map(item_size).sum::<usize>() + 13,
            "the size bound counts every byte but the brackets"
        );
        let request: AppendsRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            request.appends,
            vec![
                AppendItem {
                    run: one,
                    epoch: 2,
                    expected_seq: 5,
                    events: events.clone(),
                    checks: ChecksMode::Typed,
                    durability: Some(WireDurability::Durable),
                },
                AppendItem {
                    run: two,
                    epoch: 0,
                    expected_seq: 1,
                    events,
                    checks: ChecksMode::Raw,
                    durability: None,
                },
            ]
        );
    }

    #[test]
    fn a_batch_takes_what_waits_within_its_bounds() {
        let key = RunKey::new("g", 0, "a").unwrap();
        let coalescer = Coalescer::default();
        let big = "x".repeat(MAX_BATCH_BODY / 3);
        {
            let mut state = coalescer.state();
            state.in_flight = 1;
            for body in [big.as_str(), big.as_str(), big.as_str(), "{}"] {
                let (reply, _answer) = oneshot::channel();
                state.queue.push(Item {
                    submission: submission(&key, body),
                    reply,
                });
            }
        }
        assert_eq!(coalescer.next().map(|items| items.len()), Some(2), "two thirds fit");
        assert_eq!(coalescer.next().map(|items| items.len()), Some(2));
        assert_eq!(coalescer.queued(), 0);
        assert!(coalescer.next().is_none());
        assert_eq!(coalescer.state().in_flight, 0, "the last request's slot is given back");
        let huge = "x".repeat(MAX_BATCH_BODY * 2);
        {
            let mut state = coalescer.state();
            state.in_flight = 1;
            for body in std::iter::once(huge.as_str()).chain(std::iter::repeat_n("{}", wire::MAX_BATCH_APPENDS + 1)) {
                let (reply, _answer) = oneshot::channel();
                state.queue.push(Item {
                    submission: submission(&key, body),
                    reply,
                });
            }
        }
        assert_eq!(
            coalescer.next().map(|items| items.len()),
            Some(1),
            "an append over the bound goes alone"
        );
        assert_eq!(coalescer.next().map(|items| items.len()), Some(wire::MAX_BATCH_APPENDS));
        assert_eq!(coalescer.next().map(|items| items.len()), Some(1));
    }
}
