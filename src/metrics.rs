//! Counters of a journal's write path, kept under the writer's group lock and read
//! with [`Journal::metrics`](crate::Journal::metrics). Relaxed atomics: each
//! counter is exact, a snapshot of several is not one instant.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters.
#[derive(Default)]
pub(crate) struct Metrics {
    batches: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
    groups: AtomicU64,
    flushes: AtomicU64,
    flush_micros_total: AtomicU64,
    flush_micros_max: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Append batches applied.
    pub batches: u64,
    /// Events applied (in batches and created runs).
    pub events: u64,
    /// Bytes of encoded records applied.
    pub bytes: u64,
    /// Groups the writer committed.
    pub groups: u64,
    /// Syncs to stable storage (flush + fdatasync).
    pub flushes: u64,
    /// Total time spent in syncs, in microseconds.
    pub flush_micros_total: u64,
    /// The longest sync, in microseconds.
    pub flush_micros_max: u64,
}

impl Metrics {
    pub(crate) fn applied(&self, batches: u64, events: u64, bytes: u64) {
        self.batches.fetch_add(batches, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn group(&self) {
        self.groups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn flushed(&self, micros: u64) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flush_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.flush_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            flush_micros_total: self.flush_micros_total.load(Ordering::Relaxed),
            flush_micros_max: self.flush_micros_max.load(Ordering::Relaxed),
        }
    }
}
