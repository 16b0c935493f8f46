//! Appends the writer is done with, handed back to the callers' threads to be
//! freed there.
//!
//! A caller allocates an append's records; the writer applies them. If the
//! writer freed them, glibc would return each chunk to the caller's arena
//! under that arena's lock, which the caller's next `malloc` needs too: the
//! two threads would wait on each other at every append. Instead the writer
//! keeps the batches it is done with here, and each caller that appends frees
//! the oldest few on its own thread ([`Spent::free_some`]): a few at a time,
//! so the chunks it frees stay in its thread's cache and its next allocations
//! reuse them.
//!
//! Invariants:
//! - What is kept holds at most [`MAX_SPENT_BYTES`] of records and
//!   snapshots; past that the writer frees what it is done with itself, so
//!   memory stays bounded however rarely callers come.
//! - Nothing stays kept while the journal is idle: the writer thread frees
//!   it when everything applied is synced and no command waits, and a
//!   caller that committed on its own thread frees it before returning.
//! - Nothing kept is read again: freeing is the only thing done with it, so
//!   who frees it and when changes no outcome.
//! - Freeing drops what it took after releasing the lock, so the writer
//!   never waits for a caller's free.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use runjournal_core::AppendBatch;

/// The most record and snapshot bytes kept: a group of appends fits (a smaller bound
/// would have the writer free most of every large group itself).
pub(crate) const MAX_SPENT_BYTES: u64 = 32 * 1024 * 1024;

/// How many batches [`Spent::free_some`] frees: more than one append leaves.
const FREED_PER_APPEND: usize = 4;

/// Bytes of a batch's records and snapshot.
fn batch_bytes(batch: &AppendBatch) -> u64 {
    let snapshot = batch.snapshot.as_ref().map_or(0, |snapshot| snapshot.bytes.len());
    batch.records.iter().map(|record| record.len() as u64).sum::<u64>() + snapshot as u64
}

/// Applied batches waiting to be freed by a caller.
#[derive(Default)]
pub(crate) struct Spent {
    held: Mutex<Held>,
    /// How many batches `held` holds, written under its lock: a caller that
    /// reads 0 has nothing to free and skips the lock (a batch kept
    /// meanwhile waits for the next append).
    kept: AtomicUsize,
}

#[derive(Default)]
struct Held {
    batches: VecDeque<AppendBatch>,
    /// Record and snapshot bytes of `batches`.
    bytes: u64,
}

impl Spent {
    /// Keeps the applied `batches` for a caller to free; the writer frees
    /// them itself when that would pass the bound.
    pub(crate) fn keep_batches(&self, batches: Vec<AppendBatch>) {
        let bytes: u64 = batches.iter().map(batch_bytes).sum();
        let mut held = self.lock();
        if held.bytes + bytes > MAX_SPENT_BYTES {
            drop(held);
            drop(batches);
            return;
        }
        held.bytes += bytes;
        held.batches.extend(batches);
        self.kept.store(held.batches.len(), Ordering::Release);
    }

    /// Frees, on the calling thread, everything kept so far.
    pub(crate) fn free(&self) {
        let mut held = self.lock();
        let batches = std::mem::take(&mut held.batches);
        held.bytes = 0;
        self.kept.store(0, Ordering::Release);
        drop(held);
        drop(batches);
    }

    /// Frees, on the calling thread, the oldest few batches kept.
    pub(crate) fn free_some(&self) {
        if self.kept.load(Ordering::Acquire) == 0 {
            return;
        }
        let batches: [Option<AppendBatch>; FREED_PER_APPEND] = {
            let mut held = self.lock();
            let batches = std::array::from_fn(|_| {
                let batch = held.batches.pop_front()?;
                held.bytes -= batch_bytes(&batch);
                Some(batch)
            });
            self.kept.store(held.batches.len(), Ordering::Release);
            batches
        };
        drop(batches);
    }

    /// Record and snapshot bytes kept.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use runjournal_core::{ChainHash, Head, RunKey, RunStatus};

    use super::*;

    fn batch(record_bytes: usize) -> AppendBatch {
        AppendBatch {
            run: 1,
            expected_seq: 0,
            epoch: 1,
            records: vec![vec![7; record_bytes]],
            head_after: Head {
                next_seq: 1,
                hash: ChainHash::GENESIS,
                epoch: 1,
                last_ts: 0,
            },
            status_after: RunStatus::Running,
            snapshot: None,
        }
    }

    #[test]
    fn spent_appends_wait_for_a_caller_and_are_gone_once_freed() {
        let spent = Spent::default();
        spent.keep_batches(vec![batch(100), batch(50)]);
        assert_eq!(spent.bytes(), 150);
        assert_eq!(spent.lock().batches.len(), 2);

        spent.free();
        assert_eq!(spent.bytes(), 0);
        assert!(spent.lock().batches.is_empty());
    }

    #[test]
    fn an_append_frees_the_oldest_few_spent_appends() {
        let spent = Spent::default();
        spent.keep_batches((1..=10).map(batch).collect());
        spent.free_some();
        let left = 10 - FREED_PER_APPEND;
        let left_bytes: usize = (11 - left..=10).sum();
        assert_eq!(spent.bytes(), left_bytes as u64, "the oldest went first");
        assert_eq!(spent.lock().batches.len(), left);
        assert_eq!(
            spent.kept.load(Ordering::Acquire),
            left,
            "the count a caller reads unlocked"
        );

        for _ in 0..2 {
            spent.free_some();
        }
        assert_eq!(spent.bytes(), 0);
        assert_eq!(spent.kept.load(Ordering::Acquire), 0);
        spent.free_some();
        assert_eq!(spent.bytes(), 0, "freeing none is no error");
        spent.keep_batches(vec![batch(3)]);
        spent.free_some();
        assert_eq!(
            spent.bytes(),
            0,
            "a batch kept after the count read 0 is freed by the next append"
        );
    }

    #[test]
    fn spent_bytes_never_pass_their_bound() {
        let spent = Spent::default();
        let half = usize::try_from(MAX_SPENT_BYTES / 2).unwrap();
        spent.keep_batches(vec![batch(half)]);
        spent.keep_batches(vec![batch(half)]);
        spent.keep_batches(vec![batch(1)]);
        assert_eq!(spent.bytes(), MAX_SPENT_BYTES);
        assert_eq!(spent.lock().batches.len(), 2, "the batch past the bound was freed");

        // A batch's snapshot counts as much as its records.
        let spent = Spent::default();
        let mut with_snapshot = batch(half);
        with_snapshot.snapshot = Some(runjournal_core::SnapshotRecord {
            seq: 0,
            bytes: vec![1; half + 1],
        });
        spent.keep_batches(vec![with_snapshot]);
        assert_eq!(spent.bytes(), 0, "records and snapshot together pass the bound");
    }

    fn journal(durability: crate::Durability) -> crate::Journal {
        let options = crate::Options {
            durability,
            snapshot_every: 0,
            ..crate::Options::default()
        };
        crate::Journal::with_store(Arc::new(runjournal_core::MemoryStore::new()), options).unwrap()
    }

    fn key() -> RunKey {
        RunKey {
            goal: "g".into(),
            episode: 0,
            agent: "a".into(),
        }
    }

    fn step(text: &str) -> Vec<runjournal_core::Message> {
        vec![runjournal_core::Message::new(runjournal_core::Role::Assistant, text)]
    }

    #[test]
    fn spent_appends_committed_on_the_callers_thread_are_freed_before_it_returns() {
        let journal = journal(crate::Durability::Durable);
        let run = journal.begin(key(), crate::RunMeta::default()).unwrap();
        for text in ["a", "b", "c"] {
            run.step(step(text)).unwrap();
            let spent = journal.local().unwrap().spent();
            assert_eq!(spent.bytes(), 0, "nothing is kept after {text}");
        }
        assert_eq!(journal.metrics().events, 4);
    }

    #[test]
    fn spent_appends_are_freed_once_the_writer_is_idle() {
        let journal = journal(crate::Durability::Buffered);
        let run = journal.begin(key(), crate::RunMeta::default()).unwrap();
        for _ in 0..1_000 {
            run.step(step("some words")).unwrap();
        }
        journal.sync().unwrap();
        // The writer frees what it kept once it waits with nothing to do,
        // which it reaches after answering the sync.
        let spent = journal.local().unwrap().spent();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while spent.bytes() != 0 {
            assert!(std::time::Instant::now() < deadline, "still kept: {}", spent.bytes());
            std::thread::yield_now();
        }
        assert_eq!(journal.run_info(&key()).unwrap().head.next_seq, 1_001);
    }
}
