//! Lineage: forks, best-of-N fanout, lineage queries, diff and retention.
//!
//! Invariants:
//! - A fork never changes its parent: the child stores only its own events;
//!   its history is the parent's verified prefix up to the fork seq, then its
//!   own log, whose chain starts from the parent's hash at the fork seq.
//! - A fanout creates all its children in one atomic step, in fresh episodes.
//! - A purge never deletes a run that a surviving fork reads from, and keeps
//!   failed and recoverable runs unless they are named explicitly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::time::Duration;

use runjournal_core::{
    CodecError, Envelope, Event, ForkBase, ForkPoint, KeyError, RunFilter, RunKey, RunMeta, RunRecord, RunStatus,
};

use crate::error::{BeginError, ReadError, WriteError};
use crate::history::walk_own;
use crate::journal::{broken_create_contract, Local};
use crate::run::Run;
use crate::writer::{Command, Operation, Reply};
use runjournal_core::fold::ResumeState;

/// A fork or fanout could not be created; nothing was created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The fork point is past the parent's end.
    #[error("run {run} has no seq {seq} (its last seq is {last})")]
    SeqOutOfRange {
        /// The parent.
        run: RunKey,
        /// The requested fork seq.
        seq: u64,
        /// The parent's last seq.
        last: u64,
    },
    /// A child's key is malformed.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// A run with a child's key exists.
    #[error("run {run} already exists; resume it, or begin a new episode (next_episode)")]
    AlreadyExists {
        /// The child's key.
        run: RunKey,
    },
    /// A child's `run_started` (the parent's meta) is larger than the maximum.
    #[error("run {run} seq {seq}: event is {size} bytes encoded, more than the maximum of {max} bytes; nothing of the batch was written")]
    EventTooLarge {
        /// The child.
        run: RunKey,
        /// The seq of its `run_started` (0).
        seq: u64,
        /// Its encoded size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// A child's `run_started` does not encode.
    #[error("run {run} seq {seq}: event does not encode: {source}; nothing of the batch was written")]
    Unencodable {
        /// The child.
        run: RunKey,
        /// The seq of its `run_started` (0).
        seq: u64,
        /// The encoder's refusal.
        source: CodecError,
    },
    /// Reading the parent failed (it is missing or corrupt).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Storing the children failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ForkError {
    /// The error's stable machine code (see [`Error::code`](crate::Error::code)).
    pub fn code(&self) -> &'static str {
        match self {
            ForkError::SeqOutOfRange { .. } => "seq_out_of_range",
            ForkError::InvalidKey(_) => "invalid_key",
            ForkError::AlreadyExists { .. } => "already_exists",
            ForkError::EventTooLarge { .. } => "too_large",
            ForkError::Unencodable { .. } => "unencodable",
            ForkError::Read(error) => error.code(),
            ForkError::Write(error) => error.code(),
        }
    }
}

/// Creating a fork's children is creating runs: the same failures, as a fork's.
impl From<BeginError> for ForkError {
    fn from(error: BeginError) -> Self {
        match error {
            BeginError::InvalidKey(error) => ForkError::InvalidKey(error),
            BeginError::AlreadyExists { run } => ForkError::AlreadyExists { run },
            BeginError::EventTooLarge { run, seq, size, max } => ForkError::EventTooLarge { run, seq, size, max },
            BeginError::Unencodable { run, seq, source } => ForkError::Unencodable { run, seq, source },
            BeginError::Read(error) => ForkError::Read(error),
            BeginError::Write(error) => ForkError::Write(error),
        }
    }
}

/// A purge could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// A run named explicitly is still read by a fork that is not purged.
    #[error(
        "run {run} is the fork parent of {child}, which is not being purged; purge the child too or keep the parent"
    )]
    HasLiveFork {
        /// The run that may not go.
        run: RunKey,
        /// A child that reads from it.
        child: RunKey,
    },
    /// Reading the runs failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Deleting failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl PurgeError {
    /// The error's stable machine code (see [`Error::code`](crate::Error::code)).
    pub fn code(&self) -> &'static str {
        match self {
            PurgeError::HasLiveFork { .. } => "has_live_fork",
            PurgeError::Read(error) => error.code(),
            PurgeError::Write(error) => error.code(),
        }
    }
}

/// Which runs a purge removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgePolicy {
    /// Completed runs whose last event is older than this.
    pub completed_older_than: Option<Duration>,
    /// Keep only the newest N episodes of each `(goal, agent)`; older
    /// completed episodes go.
    pub keep_newest_episodes: Option<u32>,
    /// Runs purged whatever their status (failed and recoverable ones too).
    pub explicit: Vec<RunKey>,
}

/// What a purge removed (or, dry, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// The runs removed, with their own event counts.
    pub purged: Vec<(RunKey, u64)>,
    /// Runs a rule selected but that were kept, with why.
    pub kept: Vec<(RunKey, String)>,
    /// Bytes of keys and values freed (0 on a dry run).
    pub freed_bytes: u64,
}

/// Where two runs' histories part.
#[derive(Clone, Debug, PartialEq)]
pub struct RunDiff {
    /// How many leading history events the runs share (the same events; a
    /// fork shares its parent's prefix, and its own `run_started` marker is
    /// not counted as a divergence).
    pub common: usize,
    /// The first event of run A after the common prefix, if any.
    pub a: Option<Envelope>,
    /// The first event of run B after the common prefix, if any.
    pub b: Option<Envelope>,
    /// The state fields that differ: `(field, value in A, value in B)` as JSON.
    pub state_differences: Vec<(String, serde_json::Value, serde_json::Value)>,
}

impl Local {
    /// The embedded [`Journal::fork`].
    pub(crate) fn fork(&self, parent: &RunKey, at_seq: u64, child: RunKey) -> Result<Run, ForkError> {
        let mut runs = self.fork_all(parent, at_seq, vec![child], None)?;
        runs.pop().ok_or_else(|| ForkError::from(broken_create_contract(0, 1)))
    }

    /// The embedded [`Journal::fanout`].
    pub(crate) fn fanout(&self, parent: &RunKey, at_seq: u64, n: u32) -> Result<Vec<Run>, ForkError> {
        let first = self.next_episode(&parent.goal)?;
        let children = (0..n)
            .map(|offset| RunKey {
                goal: parent.goal.clone(),
                episode: first + offset,
                agent: parent.agent.clone(),
            })
            .collect();
        self.fork_all(parent, at_seq, children, None)
    }

    /// The embedded [`Journal::rewind`].
    pub(crate) fn rewind(&self, run: &RunKey, at_seq: u64) -> Result<Run, ForkError> {
        let child = RunKey {
            goal: run.goal.clone(),
            episode: self.next_episode(&run.goal)?,
            agent: run.agent.clone(),
        };
        let original = self.run_info(run)?;
        let mut runs = self.fork_all(run, at_seq, vec![child], Some(original.id))?;
        // The store raised the original's epoch; fence its handles in this
        // process before they queue anything.
        self.inner
            .epoch_cell(original.id, original.head.epoch.saturating_add(1));
        runs.pop().ok_or_else(|| ForkError::from(broken_create_contract(0, 1)))
    }

    fn fork_all(
        &self,
        parent: &RunKey,
        at_seq: u64,
        children: Vec<RunKey>,
        supersedes: Option<runjournal_core::RunId>,
    ) -> Result<Vec<Run>, ForkError> {
        for child in &children {
            child.validate()?;
        }
        let record = self.run_info(parent)?;
        if at_seq >= record.head.next_seq {
            return Err(ForkError::SeqOutOfRange {
                run: parent.clone(),
                seq: at_seq,
                last: record.head.next_seq.saturating_sub(1),
            });
        }
        let mut parent_meta = RunMeta::default();
        let hash = walk_own(self.store().as_ref(), &record, 0, at_seq + 1, &mut |envelope| {
            if let Event::RunStarted { meta } = envelope.event {
                parent_meta = meta;
            }
            ControlFlow::Continue(())
        })?;
        let meta = RunMeta {
            parent: Some(parent.clone()),
            forked_from: Some(ForkPoint {
                run: parent.clone(),
                seq: at_seq,
            }),
            ..parent_meta
        };
        let fork = ForkBase {
            parent: record.id,
            parent_key: parent.clone(),
            seq: at_seq,
            hash,
        };
        let created = self.create(
            children
                .into_iter()
                .map(|child| (child, Event::RunStarted { meta: meta.clone() }, Some(fork.clone())))
                .collect(),
            supersedes,
        )?;
        Ok(created
            .into_iter()
            .map(|(record, state)| Run::new(self, &record, 0, state, 1))
            .collect())
    }

    /// The embedded [`Journal::parent`].
    pub(crate) fn parent(&self, key: &RunKey) -> Result<Option<RunKey>, ReadError> {
        Ok(self.run_info(key)?.fork.map(|fork| fork.parent_key))
    }

    /// The embedded [`Journal::children`].
    pub(crate) fn children(&self, key: &RunKey) -> Result<Vec<RunKey>, ReadError> {
        let record = self.run_info(key)?;
        let mut children = Vec::new();
        for id in self.store().children(record.id)? {
            if let Some(child) = self.store().run(id)? {
                children.push(child.key);
            }
        }
        children.sort();
        Ok(children)
    }

    /// The embedded [`Journal::diff`].
    pub(crate) fn diff(&self, a: &RunKey, b: &RunKey) -> Result<RunDiff, ReadError> {
        Ok(diff_of(
            self.history(a)?,
            self.history(b)?,
            &self.state(a)?,
            &self.state(b)?,
        ))
    }

    /// The embedded [`Journal::purge`].
    pub(crate) fn purge(&self, policy: &PurgePolicy, dry_run: bool) -> Result<PurgeReport, PurgeError> {
        let runs = self.runs(&RunFilter::default())?;
        let mut report = PurgeReport {
            dry_run,
            ..PurgeReport::default()
        };
        let explicit: BTreeSet<&RunKey> = policy.explicit.iter().collect();
        for key in &explicit {
            if !runs.iter().any(|record| record.key == **key) {
                return Err(ReadError::NotFound { run: (*key).clone() }.into());
            }
        }
        let now = self.options().clock.now_millis();
        let selected = select_for_purge(&runs, policy, &explicit, now, &mut report);
        let by_id: HashMap<u64, &RunRecord> = runs.iter().map(|record| (record.id, record)).collect();
        let mut purge: BTreeMap<RunKey, &RunRecord> =
            selected.iter().map(|record| (record.key.clone(), *record)).collect();
        // Drop candidates that a surviving fork reads from, until none is left.
        while let Some((run, child)) = self.first_blocked(&purge, &by_id)? {
            if explicit.contains(&run) {
                return Err(PurgeError::HasLiveFork { run, child });
            }
            purge.remove(&run);
            report
                .kept
                .push((run, format!("fork parent of {child}, which is kept")));
        }
        report.purged = purge
            .values()
            .map(|record| (record.key.clone(), record.head.next_seq))
            .collect();
        if !dry_run && !purge.is_empty() {
            let ids: Vec<_> = purge.values().map(|record| record.id).collect();
            let (sender, receiver) = crate::oneshot::channel();
            let command = Command::Apply(Operation::Delete {
                runs: ids.clone(),
                reply: Reply::Blocking(sender),
            });
            report.freed_bytes = self.call(command, receiver)?;
            self.inner.mark_purged(&ids);
        }
        Ok(report)
    }
}

/// One run to export and how many of its own events (`0..end_seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportItem {
    /// The run.
    pub key: RunKey,
    /// Export its own events before this seq.
    pub end_seq: u64,
}

/// Where two histories part, and which state fields differ (the diff of
/// both backends).
pub(crate) fn diff_of(
    history_a: Vec<Envelope>,
    history_b: Vec<Envelope>,
    state_a: &ResumeState,
    state_b: &ResumeState,
) -> RunDiff {
    let history_a = without_fork_markers(history_a);
    let history_b = without_fork_markers(history_b);
    let common = history_a
        .iter()
        .zip(&history_b)
        .take_while(|(left, right)| left.event == right.event)
        .count();
    let state_a = state_a.to_json();
    let state_b = state_b.to_json();
    let ignored = ["run", "head", "last_seq", "epoch"];
    let mut state_differences = Vec::new();
    if let (Some(fields_a), Some(fields_b)) = (state_a.as_object(), state_b.as_object()) {
        for (field, value_a) in fields_a {
            let value_b = fields_b.get(field).cloned().unwrap_or(serde_json::Value::Null);
            if !ignored.contains(&field.as_str()) && *value_a != value_b {
                state_differences.push((field.clone(), value_a.clone(), value_b));
            }
        }
    }
    RunDiff {
        common,
        a: history_a.get(common).cloned(),
        b: history_b.get(common).cloned(),
        state_differences,
    }
}

/// The order an export writes every run in: each run after its ancestors.
pub(crate) fn order_for_export(records: &[RunRecord]) -> Vec<ExportItem> {
    let by_key: HashMap<&RunKey, &RunRecord> = records.iter().map(|record| (&record.key, record)).collect();
    let mut order = Vec::with_capacity(records.len());
    let mut placed = BTreeSet::new();
    for record in records {
        place_after_ancestors(record, &by_key, &mut placed, &mut order);
    }
    order
}

/// A history without the `run_started` a fork begins its own log with: the
/// marker is where a child attaches, not a step that diverges from its parent.
fn without_fork_markers(history: Vec<Envelope>) -> Vec<Envelope> {
    history
        .into_iter()
        .enumerate()
        .filter(|(position, envelope)| *position == 0 || !matches!(envelope.event, Event::RunStarted { .. }))
        .map(|(_, envelope)| envelope)
        .collect()
}

/// Appends `record` to `order` after its not yet placed ancestors.
fn place_after_ancestors(
    record: &RunRecord,
    by_key: &HashMap<&RunKey, &RunRecord>,
    placed: &mut BTreeSet<RunKey>,
    order: &mut Vec<ExportItem>,
) {
    if placed.contains(&record.key) {
        return;
    }
    if let Some(parent) = record.fork.as_ref().and_then(|fork| by_key.get(&fork.parent_key)) {
        place_after_ancestors(parent, by_key, placed, order);
    }
    placed.insert(record.key.clone());
    order.push(ExportItem {
        key: record.key.clone(),
        end_seq: record.head.next_seq,
    });
}

/// The runs a policy picks, before lineage checks; the rest it kept go in the report.
fn select_for_purge<'a>(
    runs: &'a [RunRecord],
    policy: &PurgePolicy,
    explicit: &BTreeSet<&RunKey>,
    now: u64,
    report: &mut PurgeReport,
) -> Vec<&'a RunRecord> {
    let mut newest: HashMap<(&str, &str), Vec<u32>> = HashMap::new();
    for record in runs {
        newest
            .entry((record.key.goal.as_str(), record.key.agent.as_str()))
            .or_default()
            .push(record.key.episode);
    }
    let mut selected = Vec::new();
    for record in runs {
        if explicit.contains(&record.key) {
            selected.push(record);
            continue;
        }
        let too_old = policy.completed_older_than.is_some_and(|age| {
            let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
            record.head.last_ts.saturating_add(age) < now
        });
        let superseded = policy.keep_newest_episodes.is_some_and(|keep| {
            let episodes = &newest[&(record.key.goal.as_str(), record.key.agent.as_str())];
            episodes.iter().filter(|episode| **episode > record.key.episode).count() >= keep as usize
        });
        if !(too_old || superseded) {
            continue;
        }
        match record.status {
            RunStatus::Completed => selected.push(record),
            status => report.kept.push((
                record.key.clone(),
                format!("{status} runs are kept unless named explicitly"),
            )),
        }
    }
    selected
}

impl Local {
    /// A purge candidate with a child that survives the purge, and that child.
    fn first_blocked(
        &self,
        purge: &BTreeMap<RunKey, &RunRecord>,
        by_id: &HashMap<u64, &RunRecord>,
    ) -> Result<Option<(RunKey, RunKey)>, ReadError> {
        for record in purge.values() {
            for id in self.store().children(record.id)? {
                let child = by_id.get(&id).map(|child| child.key.clone());
                if let Some(child) = child.filter(|child| !purge.contains_key(child)) {
                    return Ok(Some((record.key.clone(), child)));
                }
            }
        }
        Ok(None)
    }

    /// The embedded [`Journal::descendants`].
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

    /// The embedded [`Journal::export_order`].
    pub(crate) fn export_order(&self, run: Option<&RunKey>) -> Result<Vec<ExportItem>, ReadError> {
        let Some(key) = run else {
            return Ok(order_for_export(&self.runs(&RunFilter::default())?));
        };
        let mut chain = vec![ExportItem {
            key: key.clone(),
            end_seq: self.run_info(key)?.head.next_seq,
        }];
        let mut record = self.run_info(key)?;
        while let Some(fork) = record.fork {
            record = self.record_by_id(fork.parent, &fork.parent_key)?;
            chain.push(ExportItem {
                key: record.key.clone(),
                end_seq: fork.seq + 1,
            });
        }
        chain.reverse();
        Ok(chain)
    }
}
