//! How a journal is opened: durability, limits, snapshots.

use std::time::Duration;

use runjournal_core::DEFAULT_MAX_EVENT_SIZE;

/// When an append returns relative to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// An append returns only after its bytes are on stable storage (sled
    /// flush, then `fdatasync` of sled's files). Concurrent appends share one
    /// sync (group commit).
    #[default]
    Durable,
    /// An append returns once validated, encoded, fenced and queued to the
    /// writer, which applies queued appends in large batches and syncs every
    /// [`Options::flush_interval`] and at close. A crash loses at most what
    /// the last interval queued, never part of a batch and never the middle of
    /// a run. Reads (and `resume`) see every append that returned. A rejection
    /// by the store that arrives after an append returned (another process on
    /// a networked store) breaks the handle: its next append fails with
    /// `Fenced` or `Abandoned`, naming the seq. `finish` and `resume` always
    /// wait for their outcome.
    Buffered,
}

/// Options for [`Journal::open`](crate::Journal::open).
#[derive(Clone, Debug)]
pub struct Options {
    /// When appends return.
    pub durability: Durability,
    /// The largest encoded event body accepted, in bytes (default 16 MiB).
    pub max_event_size: usize,
    /// A snapshot of the resume state is stored every this many events per
    /// run (default 1000; 0 disables snapshots).
    pub snapshot_every: u64,
    /// In `Buffered` mode, the longest time applied data waits for a sync.
    pub flush_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Durable,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            snapshot_every: 1000,
            flush_interval: Duration::from_millis(200),
        }
    }
}

impl Options {
    /// The default options with `durability`.
    pub fn with_durability(durability: Durability) -> Self {
        Options {
            durability,
            ..Options::default()
        }
    }
}
