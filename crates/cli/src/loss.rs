//! What a salvage lost: the events and ends each run held before damage,
//! against what the salvage recovered, and the mark a salvaged run carries in
//! the export.
//!
//! Invariants: what existed is the most the database itself says — the run's
//! record as the salvage opened it, or a newer record of the run still found
//! in sled's log (`files::scan_run_records`: damage makes sled end its log
//! early and forget later records, but their bytes stay) — and the loss
//! guard's count of events made durable. A run that lost events is exported
//! as its verified prefix followed by one `run_failed` of kind
//! [`SALVAGED_KIND`] that says what was lost, chained like any event, so an
//! import stores it as failed and `resume` refuses it (docs/format.md,
//! salvaged runs); a run whose prefix already ends with an outcome cannot take
//! the mark and is reported unmarked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use runjournal::core::rules::{self, Arrival};
use runjournal::core::{ChainWriter, Head, RunId};
use runjournal::{Envelope, ErrorInfo, Event, RunKey, RunRecord, RunStatus};
use runjournal_sled::{files, guard};

use crate::events::Recovered;

/// The `error.kind` of the `run_failed` that marks a salvaged run.
pub const SALVAGED_KIND: &str = "salvaged";

/// What the damaged database says existed.
pub struct Existed {
    /// The newest record of every run found in sled's log.
    logged: BTreeMap<RunId, RunRecord>,
    /// Events the loss guard recorded durable (`None`: no readable guard).
    pub guarded_events: Option<u64>,
}

impl Existed {
    /// Reads what `db` says existed; what cannot be read is said on stderr and
    /// left out (the comparison then rests on the run records alone).
    pub fn of(db: &Path) -> Existed {
        let logged = files::scan_run_records(db).unwrap_or_else(|error| {
            eprintln!(
                "runjournal: salvage: cannot scan sled's log of {} for run records ({error}); comparing with the \
                 run records the salvage reads",
                db.display()
            );
            BTreeMap::new()
        });
        let guarded_events = match guard::read_guard(db) {
            Ok(guarded) => guarded.map(|guarded| guarded.events),
            Err(error) => {
                eprintln!("runjournal: salvage: {error}");
                None
            }
        };
        Existed { logged, guarded_events }
    }

    /// How many events run `record` held and its status then: the most
    /// events of its record as read and of its records in the log.
    pub fn run(&self, record: &RunRecord) -> (u64, RunStatus) {
        match self.logged.get(&record.id) {
            Some(logged) if logged.head.next_seq > record.head.next_seq => (logged.head.next_seq, logged.status),
            _ => (record.head.next_seq, record.status),
        }
    }

    /// Runs whose records are in the log but that the salvage did not find:
    /// lost, or purged before the damage (a purge leaves old records behind).
    pub fn missing(&self, present: &BTreeSet<RunId>) -> Vec<&RunRecord> {
        self.logged
            .values()
            .filter(|record| !present.contains(&record.id))
            .collect()
    }

    /// Events in every run record of the log, found or not: more durable
    /// events than this in the guard were lost without a trace of their run.
    pub fn logged_events(&self) -> u64 {
        self.logged.values().map(|record| record.head.next_seq).sum()
    }
}

/// What one run lost.
pub struct Loss {
    /// The run.
    pub key: RunKey,
    /// Events exported (seqs `0..exported`).
    pub exported: u64,
    /// Events the run held.
    pub existed: u64,
    /// The status its lost end gave it, when its end was lost.
    pub lost_end: Option<RunStatus>,
    /// Why the salvage stopped before the run's end.
    pub cause: String,
    /// Whether the export marks the run salvaged.
    pub marked: bool,
}

impl Loss {
    /// The events lost.
    pub fn lost(&self) -> u64 {
        self.existed - self.exported
    }

    /// One line: what was exported and what was lost.
    pub fn describe(&self) -> String {
        let lost = self.lost();
        let seqs = if lost == 1 {
            format!("seq {}", self.exported)
        } else {
            format!("seqs {}–{}", self.exported, self.existed - 1)
        };
        let end = match self.lost_end {
            Some(status) => format!(", including its end ({})", status.as_str()),
            None => String::new(),
        };
        format!(
            "recovered {} of {}; {lost} lost ({seqs}){end}: {}",
            crate::output::plural(self.exported, "event"),
            self.existed,
            self.cause
        )
    }
}

/// What `recovered` of a run that held `existed` events in `status` lost,
/// or `None` when nothing was lost.
pub fn loss_of(key: &RunKey, recovered: &Recovered, existed: (u64, RunStatus)) -> Option<Loss> {
    let (events, status) = existed;
    if recovered.written >= events {
        return None;
    }
    let cause = match &recovered.damage {
        Some(damage) => damage.to_string(),
        None => "sled ended its log early at damage; the run's newer record is still in the log".into(),
    };
    let lost_end = matches!(
        status,
        RunStatus::Completed | RunStatus::Failed | RunStatus::Interrupted
    )
    .then_some(status);
    Some(Loss {
        key: key.clone(),
        exported: recovered.written,
        existed: events,
        lost_end,
        cause,
        marked: false,
    })
}

/// The `run_failed` that marks a salvaged run, chained after its last
/// recovered event; `None` when the prefix cannot take it (nothing recovered,
/// or it ends with an outcome already).
pub fn mark(recovered: &Recovered, loss: &Loss, now_ms: u64) -> Option<Envelope> {
    let last = recovered.last.as_ref()?;
    let event = Event::RunFailed {
        error: ErrorInfo {
            kind: SALVAGED_KIND.into(),
            message: format!("export --salvage {}", loss.describe()),
        },
        cleanup_errors: Vec::new(),
    };
    rules::check_follows(recovered.status, &event, Arrival::SameEpoch).ok()?;
    let head = Head {
        next_seq: recovered.written,
        hash: last.hash,
        epoch: last.epoch,
        last_ts: last.ts,
    };
    let mut writer = ChainWriter::new(loss.key.clone(), head, runjournal::core::DEFAULT_MAX_EVENT_SIZE);
    writer
        .append(last.epoch, now_ms.max(last.ts), event)
        .ok()
        .map(|chained| chained.envelope)
}
