//! A [`Run`](crate::Run) handle of a connected journal.
//!
//! Invariants:
//! - A handle sends one append at a time, each with its epoch and the seq it
//!   expects to write (its view's next seq), so the owner fences and orders
//!   them exactly as it does the embedded handles.
//! - The view (next seq, head, resume state) folds the envelopes the owner
//!   answers with, with the owner's fold: no round trip to read it.
//! - A batch the ordering rules, the value ranges or (typed) the fold refuse
//!   is refused here with the embedded error, before anything is sent.
//! - After a failed append whose outcome may be anything but "nothing
//!   written" (a lost connection, a storage failure, a conflict), the view is
//!   read back from the owner before the next append uses it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hyper::body::Bytes;
use hyper::Method;
use runjournal_core::fold::ResumeState;
use runjournal_core::rules::{self, Arrival, OrderViolation};
use runjournal_core::{Envelope, Event, RunKey};
use serde::Deserialize;

use super::client::{run_path, Client, Shared};
use super::coalesce::{self, Appended, Submission};
use super::error::{Failure, RemoteError};
use crate::error::{AppendError, FinishError};
use crate::options::Durability;
use crate::run::{Checks, Outcome};
use crate::wire;

/// What a client needs to keep appending: `{run, epoch, next_seq, head}`
/// (the head hash is the owner's to check).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Handle {
    pub(crate) run: RunKey,
    pub(crate) epoch: u64,
    pub(crate) next_seq: u64,
}

/// A connected run handle.
pub(crate) struct RemoteRun {
    client: Arc<Client>,
    core: Arc<Core>,
    finished: AtomicBool,
}

/// What the append tasks share with the handle.
struct Core {
    key: RunKey,
    /// `/v1/runs/{k}/events?answer=receipts`, encoded once.
    events_path: Arc<str>,
    /// The run key as JSON, for a batch item; `None` (never seen: a key's
    /// fields are strings and a number) sends its appends singly.
    run_json: Option<Arc<str>>,
    epoch: u64,
    /// Held for the whole of one append: one append at a time, in seq order.
    order: tokio::sync::Mutex<()>,
    view: Mutex<View>,
}

struct View {
    next_seq: u64,
    state: ResumeState,
    /// A failed append may have written: read the run back first.
    stale: bool,
}

impl RemoteRun {
    pub(crate) fn new(client: Arc<Client>, handle: Handle, state: ResumeState) -> RemoteRun {
        RemoteRun {
            client,
            core: Arc::new(Core {
                events_path: Arc::from(format!(
                    "{}/events?answer={}",
                    run_path(&handle.run),
                    wire::ANSWER_RECEIPTS
                )),
                run_json: serde_json::to_string(&handle.run).ok().map(Arc::from),
                key: handle.run,
                epoch: handle.epoch,
                order: tokio::sync::Mutex::new(()),
                view: Mutex::new(View {
                    next_seq: handle.next_seq,
                    state,
                    stale: false,
                }),
            }),
            finished: AtomicBool::new(false),
        }
    }

    pub(crate) fn key(&self) -> &RunKey {
        &self.core.key
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.core.epoch
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.core.view().next_seq
    }

    pub(crate) fn state(&self) -> ResumeState {
        self.core.view().state.clone()
    }

    pub(crate) fn append(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<u64, AppendError> {
        let encoded = encode_events(&self.client.shared, &events)?;
        let work = append(
            self.client.shared.clone(),
            self.core.clone(),
            expected_seq,
            (events, encoded),
            checks,
        );
        self.client
            .block_raw(work)
            .unwrap_or_else(|| Err(AppendError::Remote(stopped(&self.client))))
    }

    pub(crate) async fn append_async(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<u64, AppendError> {
        let encoded = encode_events(&self.client.shared, &events)?;
        let work = append(
            self.client.shared.clone(),
            self.core.clone(),
            expected_seq,
            (events, encoded),
            checks,
        );
        self.client
            .run_raw(work)
            .await
            .unwrap_or_else(|| Err(AppendError::Remote(stopped(&self.client))))
    }

    pub(crate) fn finish(&self, outcome: &Outcome) -> Result<u64, Box<FinishError>> {
        self.finished.store(true, Ordering::SeqCst);
        let (primary, cleanup_errors) = outcome.failure_parts();
        self.append(None, vec![outcome.clone().into_event()], Checks::Raw)
            .map_err(|source| {
                Box::new(FinishError {
                    primary,
                    cleanup_errors,
                    source,
                })
            })
    }

    pub(crate) async fn finish_async(&self, outcome: &Outcome) -> Result<u64, Box<FinishError>> {
        self.finished.store(true, Ordering::SeqCst);
        let (primary, cleanup_errors) = outcome.failure_parts();
        self.append_async(None, vec![outcome.clone().into_event()], Checks::Raw)
            .await
            .map_err(|source| {
                Box::new(FinishError {
                    primary,
                    cleanup_errors,
                    source,
                })
            })
    }
}

impl Drop for RemoteRun {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.finished.swap(true, Ordering::SeqCst) {
            let outcome = Outcome::failure("panic", "the thread panicked while the run was open");
            if let Err(error) = self.finish(&outcome) {
                tracing::error!(run = %self.core.key, %error, "could not record run_failed for a panic");
            }
        }
    }
}

fn stopped(client: &Client) -> RemoteError {
    client.shared.stopped().into_remote()
}

impl Core {
    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        // Every update of the view happens after its last fallible step.
        self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `events` as the JSON array of an append body, encoded on the caller's
/// thread (many callers encode in parallel; the client's runtime only sends).
fn encode_events(shared: &Shared, events: &[Event]) -> Result<Vec<u8>, AppendError> {
    serde_json::to_vec(events).map_err(|error| {
        AppendError::Remote(RemoteError::Protocol {
            endpoint: shared.endpoint.to_string(),
            detail: format!("the events do not encode as JSON: {error}"),
        })
    })
}

/// The body of `POST /v1/runs/{k}/events` (`wire::AppendRequest`) around
/// the events already encoded as a JSON array.
fn append_body(epoch: u64, expected_seq: u64, checks: Checks, durability: Option<Durability>, events: &[u8]) -> Bytes {
    let checks = if checks == Checks::Typed { "typed" } else { "raw" };
    let durability = match durability {
        None => "",
        Some(Durability::Durable) => r#","durability":"durable""#,
        Some(Durability::Buffered) => r#","durability":"buffered""#,
    };
    let head = format!(r#"{{"epoch":{epoch},"expected_seq":{expected_seq},"checks":"{checks}"{durability},"events":"#);
    let mut body = Vec::with_capacity(head.len() + events.len() + 1);
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(events);
    body.push(b'}');
    Bytes::from(body)
}

/// One append: checked here, sent, folded into the view.
async fn append(
    shared: Arc<Shared>,
    core: Arc<Core>,
    expected_seq: Option<u64>,
    (events, encoded): (Vec<Event>, Vec<u8>),
    checks: Checks,
) -> Result<u64, AppendError> {
    let _order = core.order.lock().await;
    if core.view().stale {
        refresh(&shared, &core).await?;
    }
    let first_seq = prepare(&core, expected_seq, &events, checks)?;
    let body = append_body(core.epoch, first_seq, checks, shared.durability, &encoded);
    let answer = match &core.run_json {
        Some(run_json) => {
            let submission = Submission {
                path: core.events_path.clone(),
                run_json: run_json.clone(),
                body,
            };
            coalesce::append(&shared, submission).await
        }
        None => shared.call_raw::<Appended>(Method::POST, &core.events_path, body).await,
    };
    settle(&shared, &core, first_seq, events, answer)
}

/// The seq the batch starts at, once it passes the expected seq and the
/// checks that need no store.
fn prepare(core: &Core, expected_seq: Option<u64>, events: &[Event], checks: Checks) -> Result<u64, AppendError> {
    let view = core.view();
    let first_seq = view.next_seq;
    if let Some(expected) = expected_seq {
        if expected != first_seq {
            return Err(AppendError::Conflict {
                run: core.key.clone(),
                expected,
                actual: first_seq,
            });
        }
    }
    precheck(&core.key, &view.state, first_seq, events, checks)?;
    Ok(first_seq)
}

/// Folds an answer into the view (the owner's envelopes, or the sent
/// `events` with the owner's receipts), or marks the view stale after a
/// failure that may have written.
fn settle(
    shared: &Shared,
    core: &Core,
    first_seq: u64,
    events: Vec<Event>,
    answer: Result<Appended, Failure>,
) -> Result<u64, AppendError> {
    let appended = match answer {
        Ok(appended) => appended,
        Err(failure) => {
            let error = failure.append(&core.key, first_seq, core.epoch);
            if !wrote_nothing(&error) {
                core.view().stale = true;
            }
            return Err(error);
        }
    };
    let mut view = core.view();
    match appended.receipts {
        Some(receipts) => {
            let matches = receipts.len() == events.len()
                && receipts
                    .iter()
                    .zip(first_seq..)
                    .all(|(receipt, seq)| receipt.seq == seq);
            if !matches {
                view.stale = true;
                return Err(AppendError::Remote(RemoteError::Protocol {
                    endpoint: shared.endpoint.to_string(),
                    detail: format!(
                        "run {}: the append from seq {first_seq} of {} events was answered with {} receipts not in its seqs",
                        core.key,
                        events.len(),
                        receipts.len()
                    ),
                }));
            }
            for (receipt, event) in receipts.into_iter().zip(events) {
                view.state.apply(&Envelope {
                    run: core.key.clone(),
                    seq: receipt.seq,
                    epoch: core.epoch,
                    ts: receipt.ts,
                    hash: receipt.hash,
                    event,
                });
            }
        }
        None => {
            for envelope in &appended.envelopes {
                view.state.apply(envelope);
            }
        }
    }
    view.next_seq = appended.handle.next_seq;
    Ok(appended.handle.next_seq.saturating_sub(1))
}

/// Whether a failed append certainly left the run as it was and the view right.
fn wrote_nothing(error: &AppendError) -> bool {
    match error {
        AppendError::Fenced { .. }
        | AppendError::EventTooLarge { .. }
        | AppendError::Unencodable { .. }
        | AppendError::InvalidEvent { .. }
        | AppendError::OutOfOrder { .. }
        | AppendError::EmptyBatch { .. }
        | AppendError::Refused { .. }
        | AppendError::Remote(RemoteError::Unreachable { .. }) => true,
        AppendError::Remote(RemoteError::Refused(refusal)) => matches!(
            refusal.code.as_str(),
            "invalid_request"
                | "unauthorized"
                | "payload_too_large"
                | "busy"
                | "invalid_event"
                | "out_of_order"
                | "refused"
        ),
        _ => false,
    }
}

/// Reads the run's head and state back from the owner.
async fn refresh(shared: &Arc<Shared>, core: &Arc<Core>) -> Result<(), AppendError> {
    let value: serde_json::Value = shared
        .call(Method::GET, &run_path(&core.key), None::<&()>)
        .await
        .map_err(|failure| failure.append(&core.key, core.view().next_seq, core.epoch))?;
    let record = super::journal::record_of(&value).map_err(|detail| {
        AppendError::Remote(RemoteError::Protocol {
            endpoint: shared.endpoint.to_string(),
            detail,
        })
    })?;
    let mut state = ResumeState::new(core.key.clone());
    let mut from = Some(0);
    while let Some(start) = from {
        #[derive(Deserialize)]
        struct Page {
            envelopes: Vec<Envelope>,
            next: Option<u64>,
        }
        let path = format!("{}/history?from={start}&limit=10000", run_path(&core.key));
        let page: Page = shared
            .call(Method::GET, &path, None::<&()>)
            .await
            .map_err(|failure: Failure| failure.append(&core.key, record.head.next_seq, core.epoch))?;
        for envelope in &page.envelopes {
            if envelope.run == core.key && envelope.seq >= record.head.next_seq {
                break;
            }
            state.apply(envelope);
        }
        from = page.next;
    }
    let mut view = core.view();
    view.next_seq = record.head.next_seq;
    view.state = state;
    view.stale = false;
    Ok(())
}

/// The embedded handle's refusals that need no store: an empty batch, the
/// value ranges, docs/format.md's ordering rules and (typed) the fold's.
fn precheck(
    key: &RunKey,
    state: &ResumeState,
    first_seq: u64,
    events: &[Event],
    checks: Checks,
) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::EmptyBatch {
            run: key.clone(),
            seq: first_seq,
        });
    }
    if checks == Checks::Typed {
        for event in events {
            if let Some(anomaly) = state.rejection(event) {
                return Err(AppendError::Refused {
                    run: key.clone(),
                    seq: first_seq,
                    event_type: event.type_name(),
                    anomaly: Box::new(anomaly),
                });
            }
        }
    }
    let mut status = state.status;
    for (offset, event) in events.iter().enumerate() {
        let seq = first_seq + offset as u64;
        event.validate().map_err(|source| AppendError::InvalidEvent {
            run: key.clone(),
            seq,
            source: Box::new(source),
        })?;
        let out_of_order = |violation: OrderViolation| AppendError::OutOfOrder {
            run: key.clone(),
            seq,
            violation,
        };
        rules::check_follows(status, event, Arrival::SameEpoch)
            .and_then(|()| rules::check_position(seq, event))
            .map_err(out_of_order)?;
        if matches!(event, Event::Attached { .. }) {
            return Err(out_of_order(OrderViolation::AttachedOutsideResume));
        }
        status = rules::status_after(status, event);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::append_body;
    use crate::options::Durability;
    use crate::run::Checks;
    use crate::wire::{AppendRequest, ChecksMode, WireDurability};
    use runjournal_core::{Event, Message, Role};

    #[test]
    fn the_append_body_is_the_wire_append_request() {
        let events = vec![Event::Step {
            messages: vec![Message::new(Role::Assistant, "a \"quoted\" step")],
        }];
        let encoded = serde_json::to_vec(&events).unwrap();
        let body = append_body(3, 7, Checks::Typed, Some(Durability::Durable), &encoded);
        let request: AppendRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            request,
            AppendRequest {
                epoch: 3,
                expected_seq: 7,
                events: events.clone(),
                checks: ChecksMode::Typed,
                durability: Some(WireDurability::Durable),
            }
        );
        let body = append_body(0, 1, Checks::Raw, Some(Durability::Buffered), &encoded);
        let request: AppendRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (request.checks, request.durability),
            (ChecksMode::Raw, Some(WireDurability::Buffered))
        );
        let body = append_body(0, 1, Checks::Raw, None, &encoded);
        assert!(!String::from_utf8_lossy(&body).contains("durability"));
        let request: AppendRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!((request.events, request.durability), (events, None));
    }
}
