//! The served API's wire contract (docs/http-api.md), shared by the server
//! (`Journal::serve`) and the clients: request and response bodies, the error
//! body, the code ↔ HTTP status table, and run keys in paths and queries.
//!
//! Invariants:
//! - Every body type refuses unknown fields, so a misspelt field is an
//!   `invalid_request`, never silently ignored.
//! - An error body's `code` is exactly the library error's `code()` (or a
//!   transport code: [`INVALID_REQUEST`], [`UNAUTHORIZED`],
//!   [`PAYLOAD_TOO_LARGE`], [`TIMEOUT`], [`BUSY`], [`UNKNOWN_ROUTE`],
//!   [`METHOD_NOT_ALLOWED`]); [`status_for_code`] is the one table from a code
//!   to its status, and `details` carries the fields a client needs to
//!   rebuild the typed error.
//! - A run key in a path or query is three segments joined by `/`, each
//!   percent-encoded ([`encode_segment`]): RFC 3986 unreserved bytes stay,
//!   every other byte (including `/` and `%`) is `%XX`. Decoding is strict:
//!   a bad escape or bytes that are not UTF-8 are refused.

use serde::{Deserialize, Serialize};

use runjournal_core::fold::ResumeState;
use runjournal_core::{ChainHash, Envelope, ErrorInfo, Event, RunKey, RunMeta, RunStatus};

use crate::Error;

/// The API version in every path (`/v1/...`) and in `GET /v1/health`.
pub const API_VERSION: u32 = 1;
/// The file name of the owner's Unix socket inside the database directory.
pub const SOCKET_NAME: &str = "runjournal.sock";
/// The largest `limit` any query accepts.
pub const MAX_QUERY_LIMIT: usize = 10_000;
/// The `limit` of an event page when the query names none.
pub const DEFAULT_EVENT_LIMIT: usize = 1_000;

/// Transport code: malformed JSON, a bad path or a bad query.
pub const INVALID_REQUEST: &str = "invalid_request";
/// Transport code: a TCP request without the right bearer token.
pub const UNAUTHORIZED: &str = "unauthorized";
/// Transport code: a body over the configured limit.
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// Transport code: the request (headers or body) was not read in time.
pub const TIMEOUT: &str = "timeout";
/// Transport code: the server is at its connection limit.
pub const BUSY: &str = "busy";
/// Transport code: no route has the path.
pub const UNKNOWN_ROUTE: &str = "unknown_route";
/// Transport code: the route exists but not with this method.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";

/// The HTTP status an error `code` is answered with.
pub fn status_for_code(code: &str) -> u16 {
    match code {
        INVALID_REQUEST | "invalid_event" | "invalid_key" | "out_of_order" | "mismatch" | "too_large"
        | "empty_batch" | "refused" | "unencodable" | "seq_out_of_range" | "exhausted" | "parse" | "seq_gap"
        | "hash_mismatch" => 400,
        UNAUTHORIZED => 401,
        "not_found" | "parent_missing" | UNKNOWN_ROUTE => 404,
        METHOD_NOT_ALLOWED => 405,
        TIMEOUT => 408,
        "conflict" | "fenced" | "finished" | "superseded" | "already_exists" | "has_live_fork" | "deleted"
        | "purged" | "abandoned" | "not_allowed" | "lagged" => 409,
        PAYLOAD_TOO_LARGE => 413,
        BUSY => 429,
        "poisoned" | "writer_stopped" | "closed" | "locked" | "contended" | "disconnected" => 503,
        _ => 500,
    }
}

/// A write's durability, when the request overrides the owner's option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireDurability {
    /// Acknowledged only after the owner's sync (group commit).
    Durable,
    /// Acknowledged once queued to the owner's writer.
    Buffered,
}

/// Which refusals an append gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksMode {
    /// The ordering rules only; the fold records anomalies (`Run::append`).
    #[default]
    Raw,
    /// Also the typed methods' refusals (`Run::step` and the like).
    Typed,
}

/// What a client needs to keep appending to a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handle {
    /// The run.
    pub run: RunKey,
    /// The epoch the client writes with.
    pub epoch: u64,
    /// The seq its next append must start at.
    pub next_seq: u64,
    /// The chain hash of the run's last event.
    pub head: ChainHash,
}

/// `{"handle": ...}`: begin, fork, rewind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandleResponse {
    /// The new handle.
    pub handle: Handle,
}

/// `{"handles": [...]}`: fanout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlesResponse {
    /// One handle per child, in episode order.
    pub handles: Vec<Handle>,
}

/// `POST /v1/runs`: begin a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    /// The new run's key.
    pub run: RunKey,
    /// Its `run_started` meta.
    #[serde(default)]
    pub meta: RunMeta,
    /// Durability override (`run_started` is a boundary: always durable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<WireDurability>,
}

/// What a resume expects of the run's meta (`Expect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectBody {
    /// The expected `meta.backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The expected `meta.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The expected `meta.agent_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
}

impl From<ExpectBody> for crate::Expect {
    fn from(body: ExpectBody) -> Self {
        crate::Expect {
            backend: body.backend,
            model: body.model,
            agent_name: body.agent_name,
        }
    }
}

impl From<&crate::Expect> for ExpectBody {
    fn from(expect: &crate::Expect) -> Self {
        ExpectBody {
            backend: expect.backend.clone(),
            model: expect.model.clone(),
            agent_name: expect.agent_name.clone(),
        }
    }
}

/// `POST /v1/runs/{k}/resume`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// Who attaches (`host/pid` of the client); the owner's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the run's meta must hold; a difference is `mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<ExpectBody>,
}

/// `POST /v1/resume-latest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeLatestRequest {
    /// The goal.
    pub goal: String,
    /// The agent.
    pub agent: String,
}

/// `{"handle", "state"}`: a resume's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeResponse {
    /// The handle at the new epoch.
    pub handle: Handle,
    /// The resume state after `attached`.
    pub state: ResumeState,
}

/// `POST /v1/runs/{k}/events`: one atomic batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendRequest {
    /// The client's epoch; older than the run's is `fenced`.
    pub epoch: u64,
    /// The seq the batch must start at; another is `conflict`.
    pub expected_seq: u64,
    /// The events, in order.
    pub events: Vec<Event>,
    /// Which refusals apply (default `raw`).
    #[serde(default)]
    pub checks: ChecksMode,
    /// Durability override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<WireDurability>,
}

/// `{"envelopes", "handle"}`: an append's or a finish's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendResponse {
    /// What was written, in seq order.
    pub envelopes: Vec<Envelope>,
    /// The handle after it.
    pub handle: Handle,
}

/// `?answer=` of an append: what its success answer holds.
pub const ANSWER_RECEIPTS: &str = "receipts";
/// `?answer=envelopes`: the default answer, the envelopes written.
pub const ANSWER_ENVELOPES: &str = "envelopes";

/// What the owner gave one appended event: the rest of its envelope is the
/// client's own (its run, epoch and event, at `seq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The event's seq.
    pub seq: u64,
    /// Its append time, Unix milliseconds.
    pub ts: u64,
    /// Its chain hash.
    pub hash: ChainHash,
}

impl From<&Envelope> for Receipt {
    fn from(envelope: &Envelope) -> Self {
        Receipt {
            seq: envelope.seq,
            ts: envelope.ts,
            hash: envelope.hash,
        }
    }
}

/// `{"receipts", "handle"}`: an append's answer with `?answer=receipts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsResponse {
    /// One per event written, in seq order.
    pub receipts: Vec<Receipt>,
    /// The handle after it.
    pub handle: Handle,
}

/// The most appends one `POST /v1/appends` carries.
pub const MAX_BATCH_APPENDS: usize = 1024;
/// How many single append bodies the body of a `POST /v1/appends` may be.
pub const BATCH_BODY_FACTOR: usize = 4;

/// `POST /v1/appends`: appends to any runs, each applied as its own
/// `POST /v1/runs/{k}/events` would be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendsRequest {
    /// The appends, applied in order (those on one run in this order).
    pub appends: Vec<AppendItem>,
}

/// One append of a `POST /v1/appends`: an [`AppendRequest`] and its run.
/// Its fields repeat [`AppendRequest`]'s, since serde's `flatten` does not
/// combine with `deny_unknown_fields`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendItem {
    /// The run it appends to.
    pub run: RunKey,
    /// The client's epoch; older than the run's is `fenced`.
    pub epoch: u64,
    /// The seq the batch must start at; another is `conflict`.
    pub expected_seq: u64,
    /// The events, in order.
    pub events: Vec<Event>,
    /// Which refusals apply (default `raw`).
    #[serde(default)]
    pub checks: ChecksMode,
    /// Durability override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<WireDurability>,
}

/// `{"results": [...]}`: one result per append of a `POST /v1/appends`, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendsResponse {
    /// What each append got.
    pub results: Vec<AppendResult>,
}

/// One append's result: its receipts, or the error (and its status) the
/// single append would have been answered with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AppendResult {
    /// It was written.
    Appended(ReceiptsResponse),
    /// It was refused or failed.
    Failed {
        /// The status the single append would have been answered with.
        status: u16,
        /// The error.
        error: ErrorDetail,
    },
}

/// How a run ended, on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireOutcome {
    /// `run_completed`.
    Completed {
        /// The final output.
        #[serde(default)]
        output: Option<String>,
    },
    /// `run_failed`.
    Failed {
        /// The primary failure.
        error: ErrorInfo,
        /// Failures of cleanup after it.
        #[serde(default)]
        cleanup_errors: Vec<ErrorInfo>,
    },
    /// `run_interrupted` (cause shutdown).
    Interrupted {},
}

impl From<WireOutcome> for crate::Outcome {
    fn from(outcome: WireOutcome) -> Self {
        match outcome {
            WireOutcome::Completed { output } => crate::Outcome::Success { output },
            WireOutcome::Failed { error, cleanup_errors } => crate::Outcome::Failure { error, cleanup_errors },
            WireOutcome::Interrupted {} => crate::Outcome::Shutdown,
        }
    }
}

impl From<crate::Outcome> for WireOutcome {
    fn from(outcome: crate::Outcome) -> Self {
        match outcome {
            crate::Outcome::Success { output } => WireOutcome::Completed { output },
            crate::Outcome::Failure { error, cleanup_errors } => WireOutcome::Failed { error, cleanup_errors },
            crate::Outcome::Shutdown => WireOutcome::Interrupted {},
        }
    }
}

/// `POST /v1/runs/{k}/finish`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    /// The client's epoch.
    pub epoch: u64,
    /// The seq the outcome must get.
    pub expected_seq: u64,
    /// The outcome.
    pub outcome: WireOutcome,
    /// Durability override (an outcome is a boundary: always durable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<WireDurability>,
}

/// `POST /v1/runs/{k}/fork`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The parent's last seq the child keeps.
    pub at_seq: u64,
    /// The child's key.
    pub child: RunKey,
}

/// `POST /v1/runs/{k}/fanout`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutRequest {
    /// The parent's last seq the children keep.
    pub at_seq: u64,
    /// How many children.
    pub n: u32,
}

/// `POST /v1/runs/{k}/rewind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewindRequest {
    /// The last seq the branch that goes on keeps.
    pub at_seq: u64,
}

/// `POST /v1/runs/{k}/interrupt` and `/operator-resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    /// The operator (`user@host`).
    pub operator: String,
}

/// `POST /v1/runs/{k}/fail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// The operator (`user@host`).
    pub operator: String,
    /// Why the run is failed.
    pub reason: String,
}

/// What an operator action wrote (`OperatorReport`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorReportBody {
    /// The run.
    pub run: RunKey,
    /// The seq of the operator's `attached`.
    pub attached_seq: u64,
    /// The epoch the action opened.
    pub epoch: u64,
    /// The run's last seq after the action.
    pub last_seq: u64,
    /// The run's status after the action.
    pub status: RunStatus,
}

impl From<crate::OperatorReport> for OperatorReportBody {
    fn from(report: crate::OperatorReport) -> Self {
        OperatorReportBody {
            run: report.run,
            attached_seq: report.attached_seq,
            epoch: report.epoch,
            last_seq: report.last_seq,
            status: report.status,
        }
    }
}

impl From<OperatorReportBody> for crate::OperatorReport {
    fn from(body: OperatorReportBody) -> Self {
        crate::OperatorReport {
            run: body.run,
            attached_seq: body.attached_seq,
            epoch: body.epoch,
            last_seq: body.last_seq,
            status: body.status,
        }
    }
}

/// Which runs a purge removes (`PurgePolicy`, ages in milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgePolicyBody {
    /// Completed runs whose last event is older than this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_older_than_ms: Option<u64>,
    /// Keep only the newest N episodes of each `(goal, agent)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_newest_episodes: Option<u32>,
    /// Runs purged whatever their status.
    #[serde(default)]
    pub explicit: Vec<RunKey>,
}

impl From<PurgePolicyBody> for crate::PurgePolicy {
    fn from(body: PurgePolicyBody) -> Self {
        crate::PurgePolicy {
            completed_older_than: body.completed_older_than_ms.map(std::time::Duration::from_millis),
            keep_newest_episodes: body.keep_newest_episodes,
            explicit: body.explicit,
        }
    }
}

impl From<&crate::PurgePolicy> for PurgePolicyBody {
    fn from(policy: &crate::PurgePolicy) -> Self {
        PurgePolicyBody {
            completed_older_than_ms: policy
                .completed_older_than
                .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            keep_newest_episodes: policy.keep_newest_episodes,
            explicit: policy.explicit.clone(),
        }
    }
}

/// `POST /v1/purge`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Which runs go.
    #[serde(default)]
    pub policy: PurgePolicyBody,
    /// Report only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A purged run and its own event count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgedRun {
    /// The run.
    pub run: RunKey,
    /// Its own events.
    pub events: u64,
}

/// A run a rule selected but that was kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptRun {
    /// The run.
    pub run: RunKey,
    /// Why it was kept.
    pub reason: String,
}

/// What a purge removed (`PurgeReport`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeReportBody {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// The runs removed.
    pub purged: Vec<PurgedRun>,
    /// The runs kept, with why.
    pub kept: Vec<KeptRun>,
    /// Bytes freed (0 on a dry run).
    pub freed_bytes: u64,
}

impl From<crate::PurgeReport> for PurgeReportBody {
    fn from(report: crate::PurgeReport) -> Self {
        PurgeReportBody {
            dry_run: report.dry_run,
            purged: report
                .purged
                .into_iter()
                .map(|(run, events)| PurgedRun { run, events })
                .collect(),
            kept: report
                .kept
                .into_iter()
                .map(|(run, reason)| KeptRun { run, reason })
                .collect(),
            freed_bytes: report.freed_bytes,
        }
    }
}

impl From<PurgeReportBody> for crate::PurgeReport {
    fn from(body: PurgeReportBody) -> Self {
        crate::PurgeReport {
            dry_run: body.dry_run,
            purged: body.purged.into_iter().map(|run| (run.run, run.events)).collect(),
            kept: body.kept.into_iter().map(|run| (run.run, run.reason)).collect(),
            freed_bytes: body.freed_bytes,
        }
    }
}

/// One run an import created (`ImportedRun`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedRunBody {
    /// The run.
    pub run: RunKey,
    /// Its number of events.
    pub events: u64,
    /// Its status after its last event.
    pub status: RunStatus,
    /// Its epoch after its last event.
    pub epoch: u64,
    /// The chain hash of its last event.
    pub head: ChainHash,
}

/// What an import stored (`ImportReport`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportReportBody {
    /// The runs created, in the order their first line appeared.
    pub runs: Vec<ImportedRunBody>,
    /// Events stored over all runs.
    pub events: u64,
    /// Lines read (blank lines included).
    pub lines: u64,
}

impl From<&crate::ImportReport> for ImportReportBody {
    fn from(report: &crate::ImportReport) -> Self {
        ImportReportBody {
            runs: report
                .runs
                .iter()
                .map(|run| ImportedRunBody {
                    run: run.key.clone(),
                    events: run.events,
                    status: run.status,
                    epoch: run.epoch,
                    head: run.head,
                })
                .collect(),
            events: report.events,
            lines: report.lines,
        }
    }
}

/// `{"runs": [record...]}`: `GET /v1/runs`, `/children`, `/descendants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsResponse {
    /// The run records (`RunRecord`'s serde form), ordered by key.
    pub runs: Vec<runjournal_core::RunRecord>,
}

/// `{"run": record|null}`: `GET /v1/runs/{k}/parent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentResponse {
    /// The fork parent's record; `null` for a run that is not a fork.
    pub run: Option<runjournal_core::RunRecord>,
}

/// `{"envelopes", "next"}`: a page of a run's log or history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsPage {
    /// The envelopes, in order.
    pub envelopes: Vec<Envelope>,
    /// Where the next page starts; `null` at the end.
    pub next: Option<u64>,
}

/// `GET /v1/runs/{k}/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The run.
    pub run: RunKey,
    /// Events verified (its own log).
    pub events: u64,
    /// The run's head hash.
    pub head: ChainHash,
}

impl From<crate::VerifyReport> for VerifyBody {
    fn from(report: crate::VerifyReport) -> Self {
        VerifyBody {
            run: report.run,
            events: report.events,
            head: report.head,
        }
    }
}

impl From<VerifyBody> for crate::VerifyReport {
    fn from(body: VerifyBody) -> Self {
        crate::VerifyReport {
            run: body.run,
            events: body.events,
            head: body.head,
        }
    }
}

/// A state field that differs between two runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDifference {
    /// The field.
    pub field: String,
    /// Its value in run A.
    pub a: serde_json::Value,
    /// Its value in run B.
    pub b: serde_json::Value,
}

/// `GET /v1/diff` (`RunDiff`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffBody {
    /// Leading history events the runs share.
    pub common: usize,
    /// Run A's first event after the common prefix.
    pub a: Option<Envelope>,
    /// Run B's first event after the common prefix.
    pub b: Option<Envelope>,
    /// The state fields that differ.
    pub state_differences: Vec<StateDifference>,
}

impl From<crate::RunDiff> for DiffBody {
    fn from(diff: crate::RunDiff) -> Self {
        DiffBody {
            common: diff.common,
            a: diff.a,
            b: diff.b,
            state_differences: diff
                .state_differences
                .into_iter()
                .map(|(field, a, b)| StateDifference { field, a, b })
                .collect(),
        }
    }
}

impl From<DiffBody> for crate::RunDiff {
    fn from(body: DiffBody) -> Self {
        crate::RunDiff {
            common: body.common,
            a: body.a,
            b: body.b,
            state_differences: body
                .state_differences
                .into_iter()
                .map(|difference| (difference.field, difference.a, difference.b))
                .collect(),
        }
    }
}

/// `{"states": [...]}`: `GET /v1/recoverable`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatesResponse {
    /// Each recoverable run's resume state, ordered by key.
    pub states: Vec<ResumeState>,
}

/// `{"episode": u32|null}`: `GET /v1/episodes/latest` and `/next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeResponse {
    /// The episode (`null` for `latest` of an agent with none).
    pub episode: Option<u32>,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthResponse {
    /// Always `runjournal`.
    pub server: String,
    /// The crate version of the owner.
    pub version: String,
    /// [`API_VERSION`].
    pub api: u32,
}

/// `{}`: sync, snapshot rebuild.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The SSE `lagged` event's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaggedBody {
    /// Reconnect from here (`Last-Event-ID: next_seq - 1`, or `?from=next_seq`).
    pub next_seq: u64,
}

/// The SSE `end` event's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndBody {
    /// `purged` or `shutdown`.
    pub reason: String,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The library error's `code()`, or a transport code.
    pub code: String,
    /// The library error's message.
    pub message: String,
    /// The run it is about, if any.
    #[serde(default)]
    pub run: Option<RunKey>,
    /// The seq it is about, if any.
    #[serde(default)]
    pub seq: Option<u64>,
    /// The variant's other fields (see docs/http-api.md#errors).
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ErrorBody {
    /// An error with no run, no seq and no details (the transport codes).
    pub fn transport(code: &str, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: message.into(),
                run: None,
                seq: None,
                details: serde_json::Map::new(),
            },
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        status_for_code(&self.error.code)
    }
}

/// Builds `details` from `(name, value)` pairs.
fn details<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

impl From<&Error> for ErrorBody {
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per umbrella variant, matched exhaustively so a new variant must say what it carries"
    )]
    fn from(error: &Error) -> Self {
        use serde_json::json;
        let (run, seq, details) = match error {
            Error::InvalidKey(_) | Error::Poisoned { .. } | Error::WriterStopped | Error::Closed => {
                (None, None, serde_json::Map::new())
            }
            Error::Thread { thread, .. } => (None, None, details([("thread", json!(thread))])),
            Error::InvalidEvent { run, seq, .. }
            | Error::Unencodable { run, seq, .. }
            | Error::OutOfOrder { run, seq, .. }
            | Error::EmptyBatch { run, seq }
            | Error::Deleted { run, seq }
            | Error::SnapshotCorrupt { run, seq, .. } => (Some(run.clone()), Some(*seq), serde_json::Map::new()),
            Error::EventTooLarge { run, seq, size, max } => (
                Some(run.clone()),
                Some(*seq),
                details([("size", json!(size)), ("max", json!(max))]),
            ),
            Error::Refused {
                run,
                seq,
                event_type,
                anomaly,
            } => (
                Some(run.clone()),
                Some(*seq),
                details([
                    ("event_type", json!(event_type)),
                    ("kind", json!(anomaly.kind)),
                    ("detail", json!(anomaly.detail)),
                ]),
            ),
            Error::ActionRefused {
                run,
                action,
                status,
                rule,
            } => (
                Some(run.clone()),
                None,
                details([
                    ("action", json!(action)),
                    ("status", json!(status.as_str())),
                    ("rule", json!(rule)),
                ]),
            ),
            Error::AlreadyExists { run } | Error::Superseded { run } | Error::Purged { run } => {
                (Some(run.clone()), None, serde_json::Map::new())
            }
            Error::NotFound { run, remedy } => (Some(run.clone()), None, details([("remedy", json!(remedy))])),
            Error::Finished { run, status } => (Some(run.clone()), None, details([("status", json!(status))])),
            Error::EpisodesExhausted { goal } => (None, None, details([("goal", json!(goal))])),
            Error::EpochExhausted { run, epoch } => (Some(run.clone()), None, details([("epoch", json!(epoch))])),
            Error::Mismatch {
                run,
                field,
                stored,
                expected,
            } => (
                Some(run.clone()),
                None,
                details([
                    ("field", json!(field)),
                    ("stored", json!(stored)),
                    ("expected", json!(expected)),
                ]),
            ),
            Error::SeqOutOfRange { run, seq, last } => {
                (Some(run.clone()), Some(*seq), details([("last", json!(last))]))
            }
            Error::HasLiveFork { run, child } => (Some(run.clone()), None, details([("child", json!(child))])),
            Error::Fenced {
                run,
                seq,
                epoch,
                current,
            } => (
                Some(run.clone()),
                Some(*seq),
                details([("epoch", json!(epoch)), ("current", json!(current))]),
            ),
            Error::Conflict { run, expected, actual } => (
                Some(run.clone()),
                Some(*expected),
                details([("expected", json!(expected)), ("actual", json!(actual))]),
            ),
            Error::Abandoned { run, seq, reason } => (
                Some(run.clone()),
                Some(*seq),
                details([("reason", json!(reason.to_string()))]),
            ),
            Error::Lagged(point) => (Some(point.run.clone()), Some(point.seq), serde_json::Map::new()),
            Error::Integrity(integrity) => (
                Some(integrity.run.clone()),
                Some(integrity.seq),
                details([("problem", json!(integrity.problem.to_string()))]),
            ),
            Error::ParentMissing { run, parent } => (Some(run.clone()), None, details([("parent", json!(parent))])),
            Error::Storage { run, seq, .. } => (run.clone(), *seq, serde_json::Map::new()),
            Error::Store(_) | Error::Remote(_) | Error::Serve(_) => (None, None, serde_json::Map::new()),
            Error::Import(import) => (None, None, details([("line", json!(import.line()))])),
            Error::Finish(finish) => {
                let inner = ErrorBody::from(&Error::from(clone_append_shape(&finish.source)));
                let mut details = inner.error.details;
                if let Some(primary) = &finish.primary {
                    details.insert("primary".into(), json!(primary));
                }
                (inner.error.run, inner.error.seq, details)
            }
        };
        ErrorBody {
            error: ErrorDetail {
                code: error.code().to_string(),
                message: error.to_string(),
                run,
                seq,
                details,
            },
        }
    }
}

/// The fields of a finish's cause that the error body shows, rebuilt (an
/// [`crate::AppendError`] holding a store failure is not `Clone`).
fn clone_append_shape(error: &crate::AppendError) -> crate::AppendError {
    use crate::AppendError as A;
    match error {
        A::Fenced {
            run,
            seq,
            epoch,
            current,
        } => A::Fenced {
            run: run.clone(),
            seq: *seq,
            epoch: *epoch,
            current: *current,
        },
        A::Conflict { run, expected, actual } => A::Conflict {
            run: run.clone(),
            expected: *expected,
            actual: *actual,
        },
        A::EventTooLarge { run, seq, size, max } => A::EventTooLarge {
            run: run.clone(),
            seq: *seq,
            size: *size,
            max: *max,
        },
        A::OutOfOrder { run, seq, violation } => A::OutOfOrder {
            run: run.clone(),
            seq: *seq,
            violation: violation.clone(),
        },
        A::Deleted { run, seq } | A::EmptyBatch { run, seq } => A::Deleted {
            run: run.clone(),
            seq: *seq,
        },
        A::Storage { source, .. } | A::Poisoned { source } => A::Poisoned { source: source.clone() },
        _ => A::WriterStopped,
    }
}

/// `%XX`-encodes every byte of `segment` but RFC 3986's unreserved ones
/// (`A–Z a–z 0–9 - . _ ~`).
pub fn encode_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Why a path or query segment was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {at} of {segment:?}")]
    BadEscape {
        /// The segment as sent.
        segment: String,
        /// Where the `%` is.
        at: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("{segment:?} does not decode to UTF-8")]
    NotUtf8 {
        /// The segment as sent.
        segment: String,
    },
    /// A run key that is not `goal/episode/agent` with a u32 episode.
    #[error("{text:?} is not a run key goal/episode/agent (each segment percent-encoded, episode a u32)")]
    NotAKey {
        /// The text as sent.
        text: String,
    },
}

/// Decodes a segment [`encode_segment`] made (any `%XX` is accepted, either case).
pub fn decode_segment(segment: &str) -> Result<String, SegmentError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let digit = |offset: usize| bytes.get(at + offset).and_then(|byte| char::from(*byte).to_digit(16));
            match (digit(1), digit(2)) {
                (Some(high), Some(low)) => {
                    out.push(u8::try_from(high * 16 + low).unwrap_or(0));
                    at += 3;
                }
                _ => {
                    return Err(SegmentError::BadEscape {
                        segment: segment.to_string(),
                        at,
                    })
                }
            }
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SegmentError::NotUtf8 {
        segment: segment.to_string(),
    })
}

/// `goal/episode/agent`, each segment encoded: a key in a path or a query.
pub fn encode_key(key: &RunKey) -> String {
    format!(
        "{}/{}/{}",
        encode_segment(&key.goal),
        key.episode,
        encode_segment(&key.agent)
    )
}

/// The key of three encoded segments (not yet validated as a key: the
/// journal does that and answers `invalid_key`).
pub fn decode_key_segments(goal: &str, episode: &str, agent: &str) -> Result<RunKey, SegmentError> {
    let episode_text = decode_segment(episode)?;
    let episode = episode_text.parse::<u32>().map_err(|_| SegmentError::NotAKey {
        text: format!("{goal}/{episode}/{agent}"),
    })?;
    Ok(RunKey {
        goal: decode_segment(goal)?,
        episode,
        agent: decode_segment(agent)?,
    })
}

/// Parses `goal/episode/agent` as [`encode_key`] writes it.
pub fn decode_key(text: &str) -> Result<RunKey, SegmentError> {
    let mut parts = text.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(goal), Some(episode), Some(agent), None) => decode_key_segments(goal, episode, agent),
        _ => Err(SegmentError::NotAKey { text: text.to_string() }),
    }
}

/// `/v1/runs/{goal}/{episode}/{agent}`.
pub fn run_path(key: &RunKey) -> String {
    format!("/v1/runs/{}", encode_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_keys_round_trip_through_paths_with_every_reserved_byte() {
        let key = RunKey {
            goal: "fix/login bug%?#&=+é".into(),
            episode: 7,
            agent: "a/b".into(),
        };
        let encoded = encode_key(&key);
        assert_eq!(encoded, "fix%2Flogin%20bug%25%3F%23%26%3D%2B%C3%A9/7/a%2Fb");
        assert_eq!(decode_key(&encoded).unwrap(), key);
        assert_eq!(run_path(&key), format!("/v1/runs/{encoded}"));
    }

    #[test]
    fn bad_escapes_and_non_utf8_are_refused() {
        assert!(matches!(
            decode_segment("a%2"),
            Err(SegmentError::BadEscape { at: 1, .. })
        ));
        assert!(matches!(
            decode_segment("%zz"),
            Err(SegmentError::BadEscape { at: 0, .. })
        ));
        assert!(matches!(decode_segment("%FF"), Err(SegmentError::NotUtf8 { .. })));
        assert!(matches!(decode_key("a/x/b"), Err(SegmentError::NotAKey { .. })));
        assert!(matches!(decode_key("a/1"), Err(SegmentError::NotAKey { .. })));
    }

    #[test]
    fn the_socket_is_a_file_the_database_directory_may_hold() {
        assert_eq!(SOCKET_NAME, runjournal_sled::files::SOCKET);
        assert!(runjournal_sled::files::is_database_file(SOCKET_NAME));
    }

    #[test]
    fn codes_map_to_their_statuses() {
        let table = [
            ("invalid_request", 400),
            ("invalid_event", 400),
            ("out_of_order", 400),
            ("unauthorized", 401),
            ("not_found", 404),
            ("fenced", 409),
            ("conflict", 409),
            ("finished", 409),
            ("timeout", 408),
            ("payload_too_large", 413),
            ("busy", 429),
            ("poisoned", 503),
            ("integrity", 500),
            ("io", 500),
        ];
        for (code, status) in table {
            assert_eq!(status_for_code(code), status, "{code}");
        }
    }

    #[test]
    fn a_fenced_error_carries_both_epochs() {
        let run = RunKey::new("g", 0, "a").unwrap();
        let error = Error::Fenced {
            run: run.clone(),
            seq: 4,
            epoch: 1,
            current: 2,
        };
        let body = ErrorBody::from(&error);
        assert_eq!(body.status(), 409);
        assert_eq!(body.error.code, "fenced");
        assert_eq!(body.error.run, Some(run));
        assert_eq!(body.error.seq, Some(4));
        assert_eq!(body.error.details["epoch"], 1);
        assert_eq!(body.error.details["current"], 2);
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), body);
    }
}
