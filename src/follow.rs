//! Subscriptions that follow the store: on a store other processes write
//! too ([`Store::watch`] is `Some`), a subscription reads every event it
//! delivers from the store, whoever wrote it, instead of taking this
//! process's appends from the hub.
//!
//! Invariants:
//! - Delivery is by seq: each run's cursor is a chain reader at the next seq
//!   to deliver; it only moves forward, over events read (verified) from the
//!   store up to the head it read. No gap, no duplicate, whatever the
//!   notifications do (late, twice, lost).
//! - A notification only says where to look; a wait that times out (every
//!   [`POLL`] at most) looks at the runs anyway, so a lost notification
//!   delays delivery, never loses it.
//! - Only committed events are read, and on such a store a committed event
//!   is durable: nothing delivered can be rolled back.
//! - Memory is bounded: at most [`CATCH_UP_CHUNK`] events per run are read
//!   ahead of the subscriber.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use runjournal_core::{ChainReader, Envelope, RunFilter, RunId, RunRecord, Store, Watch};

use crate::error::ReadError;
use crate::history::{own_chain_reader, walk_from};
use crate::journal::Inner;
use crate::subscription::SubscribeError;
use crate::writer::Health;

/// The longest a subscriber waits for a notification before it looks anyway.
const POLL: Duration = Duration::from_millis(250);

/// Events read from one run per step.
const CATCH_UP_CHUNK: u64 = 1024;

/// Where a run's delivery stands.
struct Cursor {
    record: RunRecord,
    reader: ChainReader,
    /// Events before this seq are verified but not delivered.
    from_seq: u64,
}

/// A subscription reading from the store.
pub(crate) struct Follow {
    store: Arc<dyn Store>,
    watch: Box<dyn Watch>,
    journal: Weak<Inner>,
    health: Arc<Health>,
    cursors: BTreeMap<RunId, Cursor>,
    /// Every run (new ones from seq 0), or only the runs of `cursors`.
    all: bool,
    queue: VecDeque<Envelope>,
    /// What the last wait said changed: `None` is every run.
    changed: Option<Vec<RunId>>,
}

impl Follow {
    /// Follows `record` from `from_seq`, when the store offers a watch.
    pub(crate) fn run(inner: &Arc<Inner>, record: RunRecord, from_seq: u64) -> Result<Option<Follow>, ReadError> {
        let Some(watch) = inner.store.watch()? else {
            return Ok(None);
        };
        let mut cursors = BTreeMap::new();
        cursors.insert(
            record.id,
            Cursor {
                reader: own_chain_reader(&record),
                record,
                from_seq,
            },
        );
        Ok(Some(Follow::new(inner, watch, cursors, false)))
    }

    /// Follows every run from its head now (and runs created later from seq
    /// 0), when the store offers a watch.
    pub(crate) fn all(inner: &Arc<Inner>) -> Result<Option<Follow>, ReadError> {
        let Some(watch) = inner.store.watch()? else {
            return Ok(None);
        };
        // Listening before the heads are read: a change after them is notified.
        let cursors = inner
            .store
            .list(&RunFilter::default())?
            .into_iter()
            .map(|record| {
                let reader = ChainReader::new(record.key.clone(), record.head.hash, record.head.next_seq);
                let from_seq = record.head.next_seq;
                (
                    record.id,
                    Cursor {
                        record,
                        reader,
                        from_seq,
                    },
                )
            })
            .collect();
        Ok(Some(Follow::new(inner, watch, cursors, true)))
    }

    fn new(inner: &Arc<Inner>, watch: Box<dyn Watch>, cursors: BTreeMap<RunId, Cursor>, all: bool) -> Follow {
        Follow {
            store: inner.store.clone(),
            watch,
            journal: Arc::downgrade(inner),
            health: inner.writer.health.clone(),
            cursors,
            all,
            queue: VecDeque::new(),
            changed: None,
        }
    }

    /// The next event, waiting at most `timeout` (`None`: until one comes).
    pub(crate) fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Envelope>, SubscribeError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if let Some(envelope) = self.queue.pop_front() {
                return Ok(Some(envelope));
            }
            if self.journal.strong_count() == 0 {
                return Err(SubscribeError::Closed);
            }
            if let Some(source) = self.health.failure() {
                return Err(SubscribeError::Poisoned { source });
            }
            let changed = self.changed.take();
            self.look(changed.as_deref())?;
            if !self.queue.is_empty() {
                continue;
            }
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.min(POLL)
                }
                None => POLL,
            };
            self.changed = self.watch.wait(wait).map_err(ReadError::from)?;
        }
    }

    /// Reads what is new in the runs `changed` names (every run: `None`).
    fn look(&mut self, changed: Option<&[RunId]>) -> Result<(), ReadError> {
        let records: Vec<RunRecord> = match changed {
            None if self.all => self.store.list(&RunFilter::default())?,
            None => self.fetch(self.cursors.keys().copied())?,
            Some(ids) => self.fetch(
                ids.iter()
                    .copied()
                    .filter(|id| self.all || self.cursors.contains_key(id)),
            )?,
        };
        for record in records {
            let cursor = self.cursors.entry(record.id).or_insert_with(|| Cursor {
                reader: own_chain_reader(&record),
                record: record.clone(),
                from_seq: 0,
            });
            cursor.record = record;
            let start = cursor.reader.next_seq();
            if start >= cursor.record.head.next_seq {
                continue;
            }
            let end = cursor.record.head.next_seq.min(start + CATCH_UP_CHUNK);
            let queue = &mut self.queue;
            walk_from(
                self.store.as_ref(),
                &cursor.record,
                &mut cursor.reader,
                cursor.from_seq,
                end,
                &mut |envelope| {
                    queue.push_back(envelope);
                    ControlFlow::Continue(())
                },
            )?;
            if end < cursor.record.head.next_seq {
                // More to read: look at this run again without waiting.
                self.changed.get_or_insert_with(Vec::new).push(cursor.record.id);
            }
        }
        Ok(())
    }

    fn fetch(&self, ids: impl Iterator<Item = RunId>) -> Result<Vec<RunRecord>, ReadError> {
        let mut records = Vec::new();
        for id in ids {
            match self.store.run(id)? {
                Some(record) => records.push(record),
                None if self.all => {}
                None => {
                    let key = self.cursors.get(&id).map(|cursor| cursor.record.key.clone());
                    if let Some(run) = key {
                        return Err(ReadError::NotFound { run });
                    }
                }
            }
        }
        Ok(records)
    }
}
