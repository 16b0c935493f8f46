//! Every [`Journal`](crate::Journal) method over the served API.
//!
//! Invariants:
//! - A state this client returns is the owner's fold (`GET …/state`, from
//!   the run's newest snapshot, or the state a resume answers with), never
//!   a fold of the whole history here; the handle keeps folding what its
//!   appends return with the same fold, so it is the embedded state exactly.
//! - Derived answers (diff, export order, descendants) are computed from
//!   served facts with the embedded code's own helpers.

use std::io::BufRead;
use std::ops::ControlFlow;
use std::sync::Arc;

use hyper::Method;
use runjournal_core::fold::ResumeState;
use runjournal_core::{ChainHash, Envelope, RunFilter, RunKey, RunMeta, RunRecord, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{run_path, Client, Shared, UploadError};
use super::error::{Failure, RemoteError};
use super::run::{Handle, RemoteRun};
use super::subscription::RemoteSubscription;
use crate::error::{BeginError, ReadError, RebuildError, ResumeError, WriteError};
use crate::import::{ImportError, ImportReport, ImportedRun};
use crate::journal::{Expect, VerifyReport};
use crate::lineage::{self, ExportItem, ForkError, PurgeError, PurgePolicy, PurgeReport, RunDiff};
use crate::operator::{OperatorError, OperatorReport};
use crate::run::Run;
use crate::subscription::{AsyncSubscription, SubscribeError, Subscription};
use crate::wire;

/// The most events one page of a read asks for (the server's bound).
const PAGE: u64 = 10_000;

#[derive(Deserialize)]
struct HandleAnswer {
    handle: Handle,
}

#[derive(Deserialize)]
struct HandlesAnswer {
    handles: Vec<Handle>,
}

#[derive(Deserialize)]
struct Page {
    envelopes: Vec<Envelope>,
    next: Option<u64>,
}

impl Client {
    fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// A GET answered with JSON, blocking.
    fn get<T: serde::de::DeserializeOwned + Send + 'static>(&self, path: String) -> Result<T, Failure> {
        let shared = self.shared();
        self.block(async move { shared.call(Method::GET, &path, None::<&()>).await })
    }

    /// A POST of `body` answered with JSON, blocking.
    fn post<T: serde::de::DeserializeOwned + Send + 'static>(&self, path: String, body: Value) -> Result<T, Failure> {
        let shared = self.shared();
        self.block(async move { shared.call(Method::POST, &path, Some(&body)).await })
    }

    /// A handle's run: its state is the owner's at the handle's head (a new
    /// run has at least its `run_started`, so the head is past seq 0).
    fn handle_run(self: &Arc<Self>, handle: Handle) -> Result<(Run, ResumeState), Failure> {
        let state = self.served_state(&handle.run, Some(handle.next_seq.saturating_sub(1)))?;
        let run = RemoteRun::new(self.clone(), handle, state.clone());
        Ok((Run::remote(run), state))
    }

    /// The owner's fold of the run at `at` (inclusive) when given: `GET
    /// …/state?form=snapshot`, the whole fold (its bookkeeping too, so a
    /// handle can go on folding from it) as a snapshot record. An owner of
    /// another fold version (or one that answers otherwise) is folded here
    /// from the served history instead, which is the same state.
    fn served_state(&self, key: &RunKey, at: Option<u64>) -> Result<ResumeState, Failure> {
        let path = match at {
            Some(seq) => format!("{}/state?at={seq}&form=snapshot", run_path(key)),
            None => format!("{}/state?form=snapshot", run_path(key)),
        };
        let shared = self.shared();
        let bytes = self.block(async move { shared.get_bytes(&path).await })?;
        match runjournal_core::snapshot::decode_snapshot(&bytes) {
            Ok(runjournal_core::snapshot::DecodedSnapshot::Current(state)) => Ok(*state),
            other => {
                tracing::debug!(run = %key, answer = ?other.err(), "the owner's state is not this fold version; folding here");
                let value: Value = self.get(run_path(key))?;
                let record = record_of(&value).map_err(|detail| self.protocol(detail))?;
                let mut state = self.fold_history(key, at.map(|seq| seq + 1))?;
                if at.is_none() && record.status == runjournal_core::RunStatus::Superseded {
                    state.status = runjournal_core::RunStatus::Superseded;
                    state.recoverable = false;
                }
                Ok(state)
            }
        }
    }

    /// Folds the run's history (fork prefix included), up to its own seq
    /// `own_end` (exclusive) when given.
    fn fold_history(&self, key: &RunKey, own_end: Option<u64>) -> Result<ResumeState, Failure> {
        let mut state = ResumeState::new(key.clone());
        self.walk_history(key, &mut |envelope| {
            if envelope.run == *key && own_end.is_some_and(|end| envelope.seq >= end) {
                return ControlFlow::Break(());
            }
            state.apply(&envelope);
            ControlFlow::Continue(())
        })?;
        Ok(state)
    }

    /// Visits the served pages of `/history` (or `/events` from `from`).
    fn walk_pages(
        &self,
        key: &RunKey,
        what: &str,
        from: u64,
        visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), Failure> {
        let mut from = Some(from);
        while let Some(start) = from {
            let page: Page = self.get(format!("{}/{what}?from={start}&limit={PAGE}", run_path(key)))?;
            for envelope in page.envelopes {
                if visit(envelope).is_break() {
                    return Ok(());
                }
            }
            from = page.next;
        }
        Ok(())
    }

    fn walk_history(&self, key: &RunKey, visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>) -> Result<(), Failure> {
        self.walk_pages(key, "history", 0, visit)
    }

    pub(crate) fn begin(self: &Arc<Self>, key: &RunKey, meta: &RunMeta) -> Result<Run, BeginError> {
        key.validate()?;
        let body = json!({ "run": key, "meta": meta });
        let answer: HandleAnswer = self
            .post("/v1/runs".into(), body)
            .map_err(|failure| failure.begin(key))?;
        self.handle_run(answer.handle)
            .map(|(run, _)| run)
            .map_err(|failure| BeginError::Read(failure.read(Some(key))))
    }

    pub(crate) fn resume(self: &Arc<Self>, key: &RunKey) -> Result<(Run, ResumeState), ResumeError> {
        self.resume_expecting(key, &Expect::default())
    }

    pub(crate) fn resume_expecting(
        self: &Arc<Self>,
        key: &RunKey,
        expect: &Expect,
    ) -> Result<(Run, ResumeState), ResumeError> {
        let body = json!({
            "owner": crate::journal::owner(),
            "expect": {
                "backend": expect.backend,
                "model": expect.model,
                "agent_name": expect.agent_name,
            },
        });
        let answer: HandleAnswer = self
            .post(format!("{}/resume", run_path(key)), body)
            .map_err(|failure| failure.resume(key))?;
        self.handle_run(answer.handle)
            .map_err(|failure| ResumeError::Read(failure.read(Some(key))))
    }

    pub(crate) fn resume_latest(self: &Arc<Self>, goal: &str, agent: &str) -> Result<(Run, ResumeState), ResumeError> {
        let key = RunKey {
            goal: goal.to_string(),
            episode: 0,
            agent: agent.to_string(),
        };
        let answer: HandleAnswer = self
            .post("/v1/resume-latest".into(), json!({ "goal": goal, "agent": agent }))
            .map_err(|failure| failure.resume(&key))?;
        let run = answer.handle.run.clone();
        self.handle_run(answer.handle)
            .map_err(|failure| ResumeError::Read(failure.read(Some(&run))))
    }

    pub(crate) fn run_info(&self, key: &RunKey) -> Result<RunRecord, ReadError> {
        let value: Value = self.get(run_path(key)).map_err(|failure| failure.read(Some(key)))?;
        record_of(&value).map_err(|detail| self.protocol(detail).read(Some(key)))
    }

    fn protocol(&self, detail: String) -> Failure {
        Failure::Transport(RemoteError::Protocol {
            endpoint: self.endpoint(),
            detail,
        })
    }

    pub(crate) fn read(&self, key: &RunKey, from_seq: u64) -> Result<Vec<Envelope>, ReadError> {
        let mut envelopes = Vec::new();
        self.for_each_event(key, from_seq, |envelope| {
            envelopes.push(envelope);
            ControlFlow::Continue(())
        })?;
        Ok(envelopes)
    }

    pub(crate) fn for_each_event(
        &self,
        key: &RunKey,
        from_seq: u64,
        mut visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        self.walk_pages(key, "events", from_seq, &mut visit)
            .map_err(|failure| failure.read(Some(key)))
    }

    pub(crate) fn history(&self, key: &RunKey) -> Result<Vec<Envelope>, ReadError> {
        let mut envelopes = Vec::new();
        self.for_each_in_history(key, |envelope| {
            envelopes.push(envelope);
            ControlFlow::Continue(())
        })?;
        Ok(envelopes)
    }

    pub(crate) fn for_each_in_history(
        &self,
        key: &RunKey,
        mut visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        self.walk_history(key, &mut visit)
            .map_err(|failure| failure.read(Some(key)))
    }

    pub(crate) fn verify(&self, key: &RunKey) -> Result<VerifyReport, ReadError> {
        #[derive(Deserialize)]
        struct Verified {
            run: RunKey,
            events: u64,
            head: ChainHash,
        }
        let verified: Verified = self
            .get(format!("{}/verify", run_path(key)))
            .map_err(|failure| failure.read(Some(key)))?;
        Ok(VerifyReport {
            run: verified.run,
            events: verified.events,
            head: verified.head,
        })
    }

    pub(crate) fn state(&self, key: &RunKey) -> Result<ResumeState, ReadError> {
        self.served_state(key, None).map_err(|failure| failure.read(Some(key)))
    }

    pub(crate) fn state_at(&self, key: &RunKey, seq: u64) -> Result<ResumeState, ReadError> {
        self.served_state(key, Some(seq))
            .map_err(|failure| failure.read(Some(key)))
    }

    pub(crate) fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, ReadError> {
        #[derive(Deserialize)]
        struct Runs {
            runs: Vec<Value>,
        }
        let mut query = Vec::new();
        if let Some(status) = filter.status {
            query.push(format!("status={}", status.as_str()));
        }
        if let Some(goal) = &filter.goal {
            query.push(format!("goal={}", super::client::encode_segment(goal)));
        }
        if let Some(agent) = &filter.agent {
            query.push(format!("agent={}", super::client::encode_segment(agent)));
        }
        let path = if query.is_empty() {
            "/v1/runs".to_string()
        } else {
            format!("/v1/runs?{}", query.join("&"))
        };
        let runs: Runs = self.get(path).map_err(|failure| failure.read(None))?;
        runs.runs
            .iter()
            .map(|value| record_of(value).map_err(|detail| self.protocol(detail).read(None)))
            .collect()
    }

    pub(crate) fn recoverable(&self) -> Result<Vec<ResumeState>, ReadError> {
        let mut states = Vec::new();
        for record in self.runs(&RunFilter::default())? {
            if record.status.is_recoverable() {
                states.push(self.state(&record.key)?);
            }
        }
        Ok(states)
    }

    pub(crate) fn latest_episode(&self, goal: &str, agent: &str) -> Result<Option<u32>, ReadError> {
        #[derive(Deserialize)]
        struct Episode {
            episode: Option<u32>,
        }
        let path = format!(
            "/v1/episodes/latest?goal={}&agent={}",
            super::client::encode_segment(goal),
            super::client::encode_segment(agent)
        );
        let answer: Episode = self.get(path).map_err(|failure| failure.read(None))?;
        Ok(answer.episode)
    }

    pub(crate) fn next_episode(&self, goal: &str) -> Result<u32, ReadError> {
        #[derive(Deserialize)]
        struct Episode {
            episode: u32,
        }
        let path = format!("/v1/episodes/next?goal={}", super::client::encode_segment(goal));
        let answer: Episode = self.get(path).map_err(|failure| failure.read(None))?;
        Ok(answer.episode)
    }

    pub(crate) fn sync(&self) -> Result<(), WriteError> {
        let _: Value = self.post("/v1/sync".into(), json!({})).map_err(Failure::write)?;
        Ok(())
    }

    pub(crate) fn rebuild_snapshots(&self, key: &RunKey) -> Result<(), RebuildError> {
        let _: Value = self
            .post(format!("{}/snapshots/rebuild", run_path(key)), json!({}))
            .map_err(|failure| match failure {
                Failure::Answer(answer) if answer.code == "not_found" => {
                    RebuildError::Read(Failure::Answer(answer).read(Some(key)))
                }
                failure => RebuildError::Write(failure.write()),
            })?;
        Ok(())
    }

    /// Syncs the owner (the connection holds nothing of its own to close).
    pub(crate) fn close(self: Arc<Self>) -> Result<(), StoreError> {
        self.sync().map_err(|error| StoreError::Backend {
            operation: "close",
            detail: error.to_string(),
        })
    }

    /// The import, its input streamed to the owner in bounded chunks
    /// (`client::upload`): never held whole here.
    pub(crate) fn import(&self, mut input: impl BufRead) -> Result<ImportReport, ImportError> {
        let report: wire::ImportReportBody =
            self.shared()
                .upload("/v1/import", &mut input)
                .map_err(|error| match error {
                    UploadError::Read(source) => ImportError::Read { line: 0, source },
                    UploadError::Request(failure) => ImportError::Write(Box::new(failure.write())),
                })?;
        Ok(ImportReport {
            runs: report
                .runs
                .into_iter()
                .map(|run| ImportedRun {
                    key: run.run,
                    events: run.events,
                    status: run.status,
                    epoch: run.epoch,
                    head: run.head,
                })
                .collect(),
            events: report.events,
            lines: report.lines,
        })
    }

    pub(crate) fn fork(self: &Arc<Self>, parent: &RunKey, at_seq: u64, child: &RunKey) -> Result<Run, ForkError> {
        child.validate()?;
        let answer: HandleAnswer = self
            .post(
                format!("{}/fork", run_path(parent)),
                json!({ "at_seq": at_seq, "child": child }),
            )
            .map_err(|failure| failure.fork(parent))?;
        self.handle_run(answer.handle)
            .map(|(run, _)| run)
            .map_err(|failure| ForkError::Read(failure.read(Some(child))))
    }

    pub(crate) fn fanout(self: &Arc<Self>, parent: &RunKey, at_seq: u64, n: u32) -> Result<Vec<Run>, ForkError> {
        let answer: HandlesAnswer = self
            .post(
                format!("{}/fanout", run_path(parent)),
                json!({ "at_seq": at_seq, "n": n }),
            )
            .map_err(|failure| failure.fork(parent))?;
        answer
            .handles
            .into_iter()
            .map(|handle| {
                let key = handle.run.clone();
                self.handle_run(handle)
                    .map(|(run, _)| run)
                    .map_err(|failure| ForkError::Read(failure.read(Some(&key))))
            })
            .collect()
    }

    pub(crate) fn rewind(self: &Arc<Self>, run: &RunKey, at_seq: u64) -> Result<Run, ForkError> {
        let answer: HandleAnswer = self
            .post(format!("{}/rewind", run_path(run)), json!({ "at_seq": at_seq }))
            .map_err(|failure| failure.fork(run))?;
        let key = answer.handle.run.clone();
        self.handle_run(answer.handle)
            .map(|(run, _)| run)
            .map_err(|failure| ForkError::Read(failure.read(Some(&key))))
    }

    pub(crate) fn parent(&self, key: &RunKey) -> Result<Option<RunKey>, ReadError> {
        Ok(self.run_info(key)?.fork.map(|fork| fork.parent_key))
    }

    pub(crate) fn children(&self, key: &RunKey) -> Result<Vec<RunKey>, ReadError> {
        let answer: wire::RunsResponse = self
            .get(format!("{}/children", run_path(key)))
            .map_err(|failure| failure.read(Some(key)))?;
        let mut children: Vec<RunKey> = answer.runs.into_iter().map(|record| record.key).collect();
        children.sort();
        Ok(children)
    }

    pub(crate) fn diff(&self, a: &RunKey, b: &RunKey) -> Result<RunDiff, ReadError> {
        Ok(lineage::diff_of(
            self.history(a)?,
            self.history(b)?,
            &self.state(a)?,
            &self.state(b)?,
        ))
    }

    pub(crate) fn purge(&self, policy: &PurgePolicy, dry_run: bool) -> Result<PurgeReport, PurgeError> {
        let body = serde_json::to_value(wire::PurgeRequest {
            policy: wire::PurgePolicyBody::from(policy),
            dry_run,
        })
        .map_err(|error| self.protocol(error.to_string()).purge())?;
        let report: wire::PurgeReportBody = self.post("/v1/purge".into(), body).map_err(Failure::purge)?;
        Ok(report.into())
    }

    pub(crate) fn descendants(&self, key: &RunKey) -> Result<Vec<RunKey>, ReadError> {
        let mut found = Vec::new();
        let mut frontier = vec![key.clone()];
        while let Some(next) = frontier.pop() {
            for child in self.children(&next)? {
                frontier.push(child.clone());
                found.push(child);
            }
        }
        found.sort();
        Ok(found)
    }

    pub(crate) fn export_order(&self, run: Option<&RunKey>) -> Result<Vec<ExportItem>, ReadError> {
        let Some(key) = run else {
            return Ok(lineage::order_for_export(&self.runs(&RunFilter::default())?));
        };
        let mut record = self.run_info(key)?;
        let mut chain = vec![ExportItem {
            key: key.clone(),
            end_seq: record.head.next_seq,
        }];
        while let Some(fork) = record.fork {
            record = self.run_info(&fork.parent_key)?;
            chain.push(ExportItem {
                key: record.key.clone(),
                end_seq: fork.seq + 1,
            });
        }
        chain.reverse();
        Ok(chain)
    }

    fn operator_action(
        &self,
        key: &RunKey,
        action: &'static str,
        path: &str,
        body: Value,
    ) -> Result<OperatorReport, OperatorError> {
        let value: Value = self
            .post(format!("{}/{path}", run_path(key)), body)
            .map_err(|failure| failure.operator(key, action))?;
        operator_report_of(&value).ok_or_else(|| {
            self.protocol(format!("{path} answered {value}, not an operator report"))
                .operator(key, action)
        })
    }

    pub(crate) fn interrupt(&self, key: &RunKey, operator: &str) -> Result<OperatorReport, OperatorError> {
        self.operator_action(key, "interrupt", "interrupt", json!({ "operator": operator }))
    }

    pub(crate) fn fail_run(&self, key: &RunKey, operator: &str, reason: &str) -> Result<OperatorReport, OperatorError> {
        self.operator_action(key, "fail", "fail", json!({ "operator": operator, "reason": reason }))
    }

    pub(crate) fn resume_as_operator(
        self: &Arc<Self>,
        key: &RunKey,
        operator: &str,
    ) -> Result<(OperatorReport, Run, ResumeState), OperatorError> {
        let value: Value = self
            .post(
                format!("{}/operator-resume", run_path(key)),
                json!({ "operator": operator }),
            )
            .map_err(|failure| failure.operator(key, "resume"))?;
        let report = operator_report_of(value.get("report").unwrap_or(&value)).ok_or_else(|| {
            self.protocol(format!("operator-resume answered {value}, not an operator report"))
                .operator(key, "resume")
        })?;
        let handle = if let Some(handle) = value.get("handle") {
            serde_json::from_value::<Handle>(handle.clone())
                .map_err(|error| self.protocol(error.to_string()).operator(key, "resume"))?
        } else {
            let record = self.run_info(key)?;
            Handle {
                run: key.clone(),
                epoch: report.epoch,
                next_seq: record.head.next_seq,
            }
        };
        let (run, state) = self
            .handle_run(handle)
            .map_err(|failure| OperatorError::Read(failure.read(Some(key))))?;
        Ok((report, run, state))
    }

    pub(crate) fn subscribe(&self, key: &RunKey, from_seq: u64, buffer: usize) -> Result<Subscription, SubscribeError> {
        // A missing run is refused here, as the embedded journal does.
        self.run_info(key)?;
        Ok(Subscription::remote(RemoteSubscription::start(
            self.shared(),
            Some(key.clone()),
            from_seq,
            buffer,
        )?))
    }

    pub(crate) fn subscribe_all(&self, buffer: usize) -> Result<Subscription, SubscribeError> {
        Ok(Subscription::remote(RemoteSubscription::start(
            self.shared(),
            None,
            0,
            buffer,
        )?))
    }

    pub(crate) fn subscribe_async(
        &self,
        key: &RunKey,
        from_seq: u64,
        buffer: usize,
    ) -> Result<AsyncSubscription, SubscribeError> {
        self.run_info(key)?;
        RemoteSubscription::start_async(&self.shared, Some(key.clone()), from_seq, buffer)
    }

    pub(crate) fn subscribe_all_async(&self, buffer: usize) -> Result<AsyncSubscription, SubscribeError> {
        RemoteSubscription::start_async(&self.shared, None, 0, buffer)
    }
}

/// A served run record (`RunRecord`'s serde form).
pub(crate) fn record_of(value: &Value) -> Result<RunRecord, String> {
    serde_json::from_value(value.clone()).map_err(|error| format!("a run record that does not parse: {error}"))
}

fn operator_report_of(value: &Value) -> Option<OperatorReport> {
    serde_json::from_value::<wire::OperatorReportBody>(value.clone())
        .ok()
        .map(OperatorReport::from)
}
