//! Verified reading of runs: every record is checked (position, header,
//! decoding, chain) before it is used, a forked run's history starts with its
//! parent's verified prefix, and a state is folded from the newest usable
//! snapshot plus a verified tail.

use std::ops::ControlFlow;

use runjournal_core::chain::{PartRead, SeqRecords, PARALLEL_MIN_RECORDS};
use runjournal_core::fold::ResumeState;
use runjournal_core::snapshot::{decode_snapshot, DecodedSnapshot};
use runjournal_core::{ChainHash, ChainReader, Envelope, IntegrityError, RunKey, RunRecord, ScanControl, Store};

use crate::error::ReadError;
use crate::journal::Local;

impl Local {
    /// The embedded [`Journal::for_each_in_history`].
    pub(crate) fn for_each_in_history(
        &self,
        key: &RunKey,
        mut visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        let record = self.run_info(key)?;
        walk_history(self.store().as_ref(), &record, record.head.next_seq, &mut visit).map(|_| ())
    }
}

/// Visits the run's own events `[from_seq, end_seq)` verified, chaining from
/// seq 0. When `end_seq` is the head, also checks that the chain ends at the
/// head's hash. Returns the hash of the last event read (`hash(end_seq - 1)`).
pub(crate) fn walk_own(
    store: &dyn Store,
    record: &RunRecord,
    from_seq: u64,
    end_seq: u64,
    visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
) -> Result<ChainHash, ReadError> {
    let mut reader = own_chain_reader(record);
    walk_from(store, record, &mut reader, from_seq, end_seq, visit)
}

/// A reader at the start of the run's own chain.
pub(crate) fn own_chain_reader(record: &RunRecord) -> ChainReader {
    let genesis = record.fork.as_ref().map_or(ChainHash::GENESIS, |fork| fork.hash);
    ChainReader::new(record.key.clone(), genesis, 0)
}

/// Like [`walk_own`], starting from a reader positioned after a trusted point
/// (a snapshot's seq and head hash).
pub(crate) fn walk_from(
    store: &dyn Store,
    record: &RunRecord,
    reader: &mut ChainReader,
    from_seq: u64,
    end_seq: u64,
    visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
) -> Result<ChainHash, ReadError> {
    let end_seq = end_seq.min(record.head.next_seq);
    let _span = tracing::debug_span!("replay", run = %record.key, from = reader.next_seq(), end = end_seq).entered();
    let threads = verify_threads();
    let mut walked = Walked::On;
    std::thread::scope(|scope| -> Result<(), ReadError> {
        let mut pipeline = Pipeline {
            scope,
            threads,
            ahead: reader.clone(),
            in_flight: None,
            spare: Batch::default(),
        };
        let mut batch = Batch::default();
        // The first visit comes after one record, then batches double up to
        // VERIFY_BATCH: a walk the visitor stops early reads little more than
        // what it visited, and a long walk still verifies in large batches.
        let mut batch_len = 1;
        store.scan(record.id, reader.next_seq(), end_seq, &mut |seq, bytes| {
            if batch.records.is_empty() {
                batch.reserve(batch_len, bytes.len());
            }
            batch.push(seq, bytes);
            if batch.records.len() < batch_len {
                return ScanControl::Continue;
            }
            batch_len = (batch_len * 2).min(VERIFY_BATCH);
            walked = pipeline.hand_off(&mut batch, reader, from_seq, visit);
            if matches!(walked, Walked::On) {
                ScanControl::Continue
            } else {
                ScanControl::Stop
            }
        })?;
        if matches!(walked, Walked::On) && !batch.records.is_empty() {
            walked = pipeline.hand_off(&mut batch, reader, from_seq, visit);
        }
        if matches!(walked, Walked::On) {
            walked = pipeline.finish(reader, from_seq, visit);
        }
        Ok(())
    })?;
    match walked {
        Walked::Failed(error) => return Err(error.into()),
        Walked::Stopped => {}
        Walked::On => {
            let head_hash = (end_seq == record.head.next_seq).then_some(&record.head.hash);
            reader.finish(end_seq, head_hash)?;
        }
    }
    Ok(reader.last_hash())
}

/// Records verified together: a large read verifies them on several threads
/// ([`ChainReader::split`]), each part checked against the stored hash
/// before it, and only the links between parts in order; the batch bounds
/// the memory a read holds.
const VERIFY_BATCH: usize = 8192;

/// The most a batch reserves ahead for its records' bytes.
const BATCH_RESERVE_BYTES: usize = 8 << 20;

/// The threads a large read verifies on: the machine's cores, at most 8.
fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().min(8))
}

/// Scanned records copied into one buffer (one allocation per batch, not
/// per record): each record's seq and its range in `bytes`.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: Vec<(u64, std::ops::Range<usize>)>,
}

impl Batch {
    fn push(&mut self, seq: u64, record: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(record);
        self.records.push((seq, start..self.bytes.len()));
    }

    /// Makes room for `records` records of about `record_len` bytes each
    /// (at most [`BATCH_RESERVE_BYTES`]), so a batch grows without copying.
    fn reserve(&mut self, records: usize, record_len: usize) {
        self.records.reserve(records);
        self.bytes
            .reserve(records.saturating_mul(record_len).min(BATCH_RESERVE_BYTES));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    fn seq_records(&self) -> Vec<(u64, &[u8])> {
        self.records
            .iter()
            .map(|(seq, range)| (*seq, &self.bytes[range.clone()]))
            .collect()
    }
}

/// How verifying and visiting a batch ended.
enum Walked {
    /// Every record verified and was visited: read on.
    On,
    /// The visitor stopped the walk.
    Stopped,
    /// A record failed verification (every one before it was visited).
    Failed(IntegrityError),
}

/// A verified batch: its parts, each with the reader that read it.
type Verified = Vec<(ChainReader, PartRead)>;

/// Verification overlapped with visiting: a large batch is verified on
/// threads of its own while the caller visits the batch before it and scans
/// the next one. Each batch is verified with a reader built past the batch
/// before ([`ChainReader::past`]: chained after its last *stored* hash), and
/// batches are joined and visited strictly in order, so a batch counts only
/// once every record before it verified: the outcome is that of reading the
/// records one by one. A batch verified ahead of a stop or a failure is
/// dropped unvisited.
struct Pipeline<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    threads: usize,
    /// The reader the next batch handed off is verified with.
    ahead: ChainReader,
    /// The batch being verified, which is visited next.
    in_flight: Option<std::thread::ScopedJoinHandle<'scope, (Batch, Verified)>>,
    /// A verified batch's buffers, reused for the next one.
    spare: Batch,
}

impl<'scope> Pipeline<'scope, '_> {
    /// Verifies `batch` (emptying it) and visits every batch before it, in
    /// order; `batch` itself is visited by a later call (or by
    /// [`Pipeline::finish`]) when it is verified on threads of its own.
    fn hand_off(
        &mut self,
        batch: &mut Batch,
        reader: &mut ChainReader,
        from_seq: u64,
        visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
    ) -> Walked {
        let batch_reader = {
            let records = batch.seq_records();
            let next = self.ahead.past(&records);
            std::mem::replace(&mut self.ahead, next)
        };
        if self.threads == 1 || batch.records.len() < PARALLEL_MIN_RECORDS {
            // Too small to be worth a thread: verified here, after the batch before.
            let walked = self.finish(reader, from_seq, visit);
            if !matches!(walked, Walked::On) {
                return walked;
            }
            let read = verify(&batch.seq_records(), &batch_reader, self.threads);
            batch.clear();
            return visit_verified(read, reader, from_seq, visit);
        }
        let mut owned = std::mem::take(&mut self.spare);
        std::mem::swap(&mut owned, batch);
        let threads = self.threads;
        let verifying = self.scope.spawn(move || {
            let read = verify(&owned.seq_records(), &batch_reader, threads);
            owned.clear();
            (owned, read)
        });
        match self.in_flight.replace(verifying) {
            Some(previous) => self.visit_joined(previous, reader, from_seq, visit),
            None => Walked::On,
        }
    }

    /// Visits the batch still being verified, if any.
    fn finish(
        &mut self,
        reader: &mut ChainReader,
        from_seq: u64,
        visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
    ) -> Walked {
        match self.in_flight.take() {
            Some(previous) => self.visit_joined(previous, reader, from_seq, visit),
            None => Walked::On,
        }
    }

    fn visit_joined(
        &mut self,
        verifying: std::thread::ScopedJoinHandle<'scope, (Batch, Verified)>,
        reader: &mut ChainReader,
        from_seq: u64,
        visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
    ) -> Walked {
        let (spare, read) = verifying
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
        self.spare = spare;
        visit_verified(read, reader, from_seq, visit)
    }
}

/// Verifies consecutive `records` with `reader` (a copy of it per part),
/// on `threads` threads when there are enough of them.
fn verify(records: &SeqRecords<'_>, reader: &ChainReader, threads: usize) -> Verified {
    let parts = reader.split(records, threads);
    if parts.len() == 1 {
        return parts
            .into_iter()
            .map(|(mut part_reader, part)| {
                let read = part_reader.read_each(part);
                (part_reader, read)
            })
            .collect();
    }
    std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        let first = parts.next();
        let handles: Vec<_> = parts
            .map(|(mut part_reader, part)| {
                scope.spawn(move || {
                    let read = part_reader.read_each(part);
                    (part_reader, read)
                })
            })
            .collect();
        // The first part is read on this thread, beside the others.
        let first = first.map(|(mut part_reader, part)| {
            let read = part_reader.read_each(part);
            (part_reader, read)
        });
        first
            .into_iter()
            .chain(handles.into_iter().map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
            }))
            .collect()
    })
}

/// Joins a verified batch onto `reader` part by part, in order (a part
/// counts only when every part before it verified), handing each part's
/// envelopes from `from_seq` to the visitor without gathering them into one
/// vector. When the visitor stops at an envelope, the reader is left right
/// after it and a later record's damage is not reported: exactly what
/// reading one record at a time does.
fn visit_verified(
    read: Verified,
    reader: &mut ChainReader,
    from_seq: u64,
    visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
) -> Walked {
    for part in read {
        let PartRead { envelopes, outcome } = reader.join(vec![part]);
        for envelope in envelopes {
            let (seq, hash) = (envelope.seq, envelope.hash);
            if seq >= from_seq && visit(envelope).is_break() {
                *reader = ChainReader::new(reader.key().clone(), hash, seq + 1);
                return Walked::Stopped;
            }
        }
        if let Err(error) = outcome {
            return Walked::Failed(error);
        }
    }
    Walked::On
}

/// Visits the run's whole history: its fork ancestors' prefixes (verified,
/// and checked to end at the hash the fork recorded) then its own events up
/// to `end_seq` (exclusive, own numbering). Returns the hash of the last event.
pub(crate) fn walk_history(
    store: &dyn Store,
    record: &RunRecord,
    end_seq: u64,
    visit: &mut dyn FnMut(Envelope) -> ControlFlow<()>,
) -> Result<ChainHash, ReadError> {
    if let Some(fork) = &record.fork {
        let parent = store.run(fork.parent)?.ok_or_else(|| ReadError::ParentMissing {
            run: record.key.clone(),
            parent: Box::new(fork.parent_key.clone()),
        })?;
        let last = walk_history(store, &parent, fork.seq + 1, visit)?;
        if last != fork.hash {
            let problem = runjournal_core::IntegrityProblem::HeadMismatch { last, head: fork.hash };
            return Err(IntegrityError {
                run: parent.key.clone(),
                seq: fork.seq,
                problem,
            }
            .into());
        }
    }
    walk_own(store, record, 0, end_seq, visit)
}

/// How a state was obtained.
pub(crate) struct FoldedState {
    /// The state.
    pub(crate) state: ResumeState,
    /// A snapshot at or before the point was of another fold version and was ignored.
    pub(crate) stale_snapshot: bool,
    /// Events folded on top of the snapshot (all of them without one).
    pub(crate) tail_len: u64,
}

/// The run's state after its own seq `end_seq - 1`: from the newest snapshot
/// at or before it plus the verified tail, or a full verified fold.
pub(crate) fn fold_state(store: &dyn Store, record: &RunRecord, end_seq: u64) -> Result<FoldedState, ReadError> {
    let mut stale_snapshot = false;
    if end_seq > 0 {
        if let Some(snapshot) = store.latest_snapshot(record.id, end_seq - 1)? {
            match decode_snapshot(&snapshot.bytes) {
                Ok(DecodedSnapshot::Current(state)) => {
                    let mut state = *state;
                    let mut reader = ChainReader::new(record.key.clone(), state.head, snapshot.seq + 1);
                    walk_from(store, record, &mut reader, snapshot.seq + 1, end_seq, &mut |envelope| {
                        state.apply_owned(envelope);
                        ControlFlow::Continue(())
                    })?;
                    return Ok(FoldedState {
                        state,
                        stale_snapshot: false,
                        tail_len: end_seq - snapshot.seq - 1,
                    });
                }
                Ok(DecodedSnapshot::OtherVersion(_)) => stale_snapshot = true,
                Err(source) => {
                    return Err(ReadError::SnapshotCorrupt {
                        run: record.key.clone(),
                        seq: snapshot.seq,
                        source,
                    })
                }
            }
        }
    }
    let mut state = ResumeState::new(record.key.clone());
    walk_history(store, record, end_seq, &mut |envelope| {
        state.apply_owned(envelope);
        ControlFlow::Continue(())
    })?;
    Ok(FoldedState {
        state,
        stale_snapshot,
        tail_len: end_seq,
    })
}
