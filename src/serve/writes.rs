//! The write endpoints: each maps to the journal method of the same name;
//! every write goes through the journal's writer thread.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use http_body_util::BodyExt;

use super::api::{self, blocking, handle_of, json, json_body, ok, path_key, Answer, ApiError, ServerState};
use super::routes::Endpoint;
use crate::run::{Checks, Outcome};
use crate::wire::{
    self, AppendRequest, AppendResponse, BeginRequest, Empty, FailRequest, FanoutRequest, FinishRequest, ForkRequest,
    Handle, HandleResponse, HandlesResponse, OperatorReportBody, OperatorRequest, PurgeReportBody, PurgeRequest,
    ResumeLatestRequest, ResumeRequest, ResumeResponse, RewindRequest, WireDurability,
};
use runjournal_core::Event;

/// `POST /v1/runs`.
pub(crate) async fn begin(state: Arc<ServerState>, request: Request) -> Answer {
    let body: BeginRequest = json_body(&state, request).await?;
    let run = state.journal.begin_async(body.run, body.meta).await?;
    let handle = handle_of(&run);
    state.handles.insert(run);
    Ok(json(StatusCode::CREATED, &HandleResponse { handle }))
}

/// `POST /v1/runs/{k}/resume`.
pub(crate) async fn resume(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let body: ResumeRequest = json_body(&state, request).await?;
    let journal = state.journal.clone();
    let owner = body.owner.unwrap_or_else(crate::journal::owner);
    let expect: crate::Expect = body.expect.unwrap_or_default().into();
    let (run, resumed) =
        blocking(move || journal.resume_checked(&key, &expect, vec![Event::Attached { owner }])).await??;
    Ok(resumed_answer(&state, run, resumed))
}

fn resumed_answer(state: &ServerState, run: crate::Run, resumed: crate::ResumeState) -> axum::response::Response {
    let handle = handle_of(&run);
    state.handles.insert(run);
    ok(&ResumeResponse { handle, state: resumed })
}

/// `POST /v1/resume-latest`.
pub(crate) async fn resume_latest(state: Arc<ServerState>, request: Request) -> Answer {
    let body: ResumeLatestRequest = json_body(&state, request).await?;
    let (run, resumed) = state.journal.resume_latest_async(body.goal, body.agent).await?;
    Ok(resumed_answer(&state, run, resumed))
}

/// `POST /v1/runs/{k}/events`.
pub(crate) async fn append(state: Arc<ServerState>, request: Request) -> Answer {
    state.counters.append();
    let key = path_key(&request)?;
    let receipts = receipts_asked(request.uri().query())?;
    let body: AppendRequest = json_body(&state, request).await?;
    let checks = Checks::from(body.checks);
    let envelopes = write(
        &state,
        &key,
        body.epoch,
        body.expected_seq,
        body.events,
        checks,
        body.durability,
    )
    .await?;
    let handle = handle_after(&key, body.epoch, body.expected_seq, &envelopes);
    if receipts {
        let receipts = envelopes.iter().map(wire::Receipt::from).collect();
        return Ok(ok(&wire::ReceiptsResponse { receipts, handle }));
    }
    Ok(ok(&AppendResponse { envelopes, handle }))
}

/// Whether an append's query asks for receipts (`answer=receipts`) rather
/// than the envelopes (`answer=envelopes`, the default); another answer is refused.
fn receipts_asked(query: Option<&str>) -> Result<bool, ApiError> {
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return Ok(false);
    };
    let query = api::Query::parse(Some(query))?;
    match query.text("answer")?.as_deref() {
        None | Some(wire::ANSWER_ENVELOPES) => {}
        Some(wire::ANSWER_RECEIPTS) => return Ok(true),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "query answer={other:?} is not \"envelopes\" or \"receipts\""
            )))
        }
    }
    Ok(false)
}

/// `POST /v1/runs/{k}/finish`.
pub(crate) async fn finish(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let body: FinishRequest = json_body(&state, request).await?;
    let event = Outcome::from(body.outcome).into_event();
    let envelopes = write(
        &state,
        &key,
        body.epoch,
        body.expected_seq,
        vec![event],
        Checks::Raw,
        body.durability,
    )
    .await?;
    let handle = handle_after(&key, body.epoch, body.expected_seq, &envelopes);
    Ok(ok(&AppendResponse { envelopes, handle }))
}

/// The handle after `envelopes` were written from `expected_seq`.
pub(crate) fn handle_after(
    key: &runjournal_core::RunKey,
    epoch: u64,
    expected_seq: u64,
    envelopes: &[crate::Envelope],
) -> Handle {
    let last = envelopes.last();
    Handle {
        run: key.clone(),
        epoch,
        next_seq: last.map_or(expected_seq, |envelope| envelope.seq + 1),
        head: last.map(|envelope| envelope.hash).unwrap_or_default(),
    }
}

/// Appends through the run's handle at `epoch`; a failure that broke the
/// handle evicts it, and a durable request on a buffered journal waits for a sync.
async fn write(
    state: &ServerState,
    key: &runjournal_core::RunKey,
    epoch: u64,
    expected_seq: u64,
    events: Vec<Event>,
    checks: Checks,
    durability: Option<WireDurability>,
) -> Result<Vec<crate::Envelope>, ApiError> {
    let run = state.handles.get(&state.journal, key, epoch).await?;
    let written = run.append_for_client(expected_seq, events, checks).await;
    match written {
        Ok(envelopes) => {
            let buffered_journal = state.journal.options().durability == crate::Durability::Buffered;
            if buffered_journal && durability == Some(WireDurability::Durable) {
                state.journal.sync_async().await?;
            }
            Ok(envelopes)
        }
        Err(error) => {
            state.handles.evict_if_broken(&run);
            Err(error.into())
        }
    }
}

/// `POST /v1/runs/{k}/fork`.
pub(crate) async fn fork(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let body: ForkRequest = json_body(&state, request).await?;
    let journal = state.journal.clone();
    let run = blocking(move || journal.fork(&key, body.at_seq, body.child)).await??;
    let handle = handle_of(&run);
    state.handles.insert(run);
    Ok(json(StatusCode::CREATED, &HandleResponse { handle }))
}

/// `POST /v1/runs/{k}/fanout`.
pub(crate) async fn fanout(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let body: FanoutRequest = json_body(&state, request).await?;
    let journal = state.journal.clone();
    let runs = blocking(move || journal.fanout(&key, body.at_seq, body.n)).await??;
    let handles = runs
        .into_iter()
        .map(|run| {
            let handle = handle_of(&run);
            state.handles.insert(run);
            handle
        })
        .collect();
    Ok(json(StatusCode::CREATED, &HandlesResponse { handles }))
}

/// `POST /v1/runs/{k}/rewind`.
pub(crate) async fn rewind(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let body: RewindRequest = json_body(&state, request).await?;
    let journal = state.journal.clone();
    let run = blocking(move || journal.rewind(&key, body.at_seq)).await??;
    let handle = handle_of(&run);
    state.handles.insert(run);
    Ok(json(StatusCode::CREATED, &HandleResponse { handle }))
}

/// `POST /v1/runs/{k}/interrupt`, `/fail`, `/operator-resume`.
pub(crate) async fn operator(state: Arc<ServerState>, request: Request, endpoint: Endpoint) -> Answer {
    let key = path_key(&request)?;
    let journal = state.journal.clone();
    let report = match endpoint {
        Endpoint::Fail => {
            let body: FailRequest = json_body(&state, request).await?;
            blocking(move || journal.fail_run(&key, &body.operator, &body.reason)).await??
        }
        Endpoint::Interrupt => {
            let body: OperatorRequest = json_body(&state, request).await?;
            blocking(move || journal.interrupt(&key, &body.operator)).await??
        }
        _ => {
            let body: OperatorRequest = json_body(&state, request).await?;
            let (report, run, _) = blocking(move || journal.resume_as_operator(&key, &body.operator)).await??;
            state.handles.insert(run);
            report
        }
    };
    Ok(ok(&OperatorReportBody::from(report)))
}

/// `POST /v1/runs/{k}/snapshots/rebuild`.
pub(crate) async fn rebuild_snapshots(state: Arc<ServerState>, request: Request) -> Answer {
    let key = path_key(&request)?;
    let journal = state.journal.clone();
    blocking(move || journal.rebuild_snapshots(&key)).await??;
    Ok(ok(&Empty {}))
}

/// `POST /v1/purge`.
pub(crate) async fn purge(state: Arc<ServerState>, request: Request) -> Answer {
    let body: PurgeRequest = json_body(&state, request).await?;
    let journal = state.journal.clone();
    let policy: crate::PurgePolicy = body.policy.into();
    let report = blocking(move || journal.purge(&policy, body.dry_run)).await??;
    if !report.dry_run {
        let purged: Vec<_> = report.purged.iter().map(|(key, _)| key.clone()).collect();
        state.handles.forget(&purged);
        state.purges.send_modify(|generation| *generation += 1);
    }
    Ok(ok(&PurgeReportBody::from(report)))
}

/// `POST /v1/sync`.
pub(crate) async fn sync(state: Arc<ServerState>) -> Answer {
    state.journal.sync_async().await?;
    Ok(ok(&Empty {}))
}

/// Why an import's body stopped.
enum Cut {
    TooLarge,
    TimedOut,
    Broken(String),
}

/// `POST /v1/import`: the body streams into the importer (a blocking reader
/// fed chunk by chunk), never held whole; past the bound it is cut off.
pub(crate) async fn import(state: Arc<ServerState>, request: Request) -> Answer {
    let limit = state.options.max_import_bytes;
    if api::content_length(&request).is_some_and(|length| length > limit) {
        return Err(import_too_large(limit));
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(16);
    let journal = state.journal.clone();
    let importer = tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::new(ChannelReader {
            receiver,
            current: axum::body::Bytes::new(),
        });
        journal.import(reader)
    });
    let mut body = request.into_body();
    let mut total: u64 = 0;
    let mut cut = None;
    loop {
        let frame = match tokio::time::timeout(state.options.body_timeout, body.frame()).await {
            Err(_) => {
                cut = Some(Cut::TimedOut);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                cut = Some(Cut::Broken(error.to_string()));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > limit {
            cut = Some(Cut::TooLarge);
            break;
        }
        // The importer stopped early (it refused a line): its answer says why.
        if sender.send(Ok(data)).await.is_err() {
            drain_after_answer(body);
            break;
        }
    }
    if cut.is_some() {
        // An importer that already stopped needs no telling.
        drop(sender.send(Err(std::io::Error::other("the body was cut off"))).await);
    }
    drop(sender);
    let outcome = importer
        .await
        .map_err(|error| ApiError::transport("other", format!("the import failed: {error}")))?;
    match (cut, outcome) {
        (Some(Cut::TooLarge), _) => Err(import_too_large(limit)),
        (Some(Cut::TimedOut), _) => Err(ApiError::transport(
            wire::TIMEOUT,
            "the import body was not sent in time",
        )),
        (Some(Cut::Broken(error)), _) => Err(ApiError::invalid(format!("the import body could not be read: {error}"))),
        (None, Ok(report)) => Ok(ok(&wire::ImportReportBody::from(&report))),
        (None, Err(error)) => Err(error.into()),
    }
}

/// The most of a refused import's body read and dropped after the refusal.
const REFUSED_IMPORT_DRAIN_BYTES: u64 = 4 << 20;
/// The longest a refused import's body is drained.
const REFUSED_IMPORT_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads and drops a little more of a refused import's body (at most
/// [`REFUSED_IMPORT_DRAIN_BYTES`], within [`REFUSED_IMPORT_DRAIN_TIME`])
/// while its answer goes out: closing the connection at once makes the
/// client's next write fail, sometimes before it has read the answer, and it
/// would then report an unknown outcome instead of the refusal. Once it has
/// the answer it stops sending; the drain bounds what it may send meanwhile.
fn drain_after_answer(mut body: axum::body::Body) {
    tokio::spawn(async move {
        let mut left = REFUSED_IMPORT_DRAIN_BYTES;
        drop(
            tokio::time::timeout(REFUSED_IMPORT_DRAIN_TIME, async {
                while left > 0 {
                    let Some(Ok(frame)) = body.frame().await else { return };
                    if let Ok(data) = frame.into_data() {
                        left = left.saturating_sub(data.len() as u64);
                    }
                }
            })
            .await,
        );
    });
}

fn import_too_large(limit: u64) -> ApiError {
    ApiError::transport(
        wire::PAYLOAD_TOO_LARGE,
        format!("the import is larger than the server's import limit of {limit} bytes; nothing was imported"),
    )
}

/// A blocking reader over the chunks the request body sends.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
    current: axum::body::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current.split_to(count));
        Ok(count)
    }
}
