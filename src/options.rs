//! How a journal is opened: durability, limits, snapshots, its clock.

use std::sync::Arc;
use std::time::Duration;

use runjournal_core::DEFAULT_MAX_EVENT_SIZE;

use crate::serve::ServeOptions;

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
    /// The time events are stamped with (`ts`) and purges measure age by
    /// (default: the system clock).
    pub clock: Clock,
    /// When the database is held by another process that serves it,
    /// [`Journal::open`](crate::Journal::open) connects to it
    /// ([`Journal::connect`](crate::Journal::connect)) instead of failing
    /// with `Locked` (default off; the CLI turns it on).
    pub connect_if_held: bool,
    /// Serve the journal while it is open (default off; the CLI's
    /// long-running commands turn it on): [`Journal::open`](crate::Journal::open)
    /// of a sled database also serves it on `<db>/runjournal.sock`, as
    /// [`Journal::serve`](crate::Journal::serve) with these options would
    /// (a store without a directory needs [`ServeOptions::socket`]). The
    /// server stops and its socket is removed when the last handle the
    /// caller holds (a [`Journal`](crate::Journal) clone or a
    /// [`Run`](crate::Run)) is dropped, or at `close`.
    pub serve: Option<ServeOptions>,
}

/// Where a journal reads the time: unix milliseconds. The system clock by
/// default; a test sets time explicitly instead of sleeping.
///
/// A clock may go backwards: an event's `ts` is never earlier than the
/// previous event's of its run.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        }))
    }

    /// A clock reading `now` (unix milliseconds).
    pub fn new(now: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The time now, in unix milliseconds.
    pub fn now_millis(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Clock").field(&self.now_millis()).finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Durable,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            snapshot_every: 1000,
            flush_interval: Duration::from_millis(200),
            clock: Clock::system(),
            connect_if_held: false,
            serve: None,
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

    /// These options with the clock reading `now` (unix milliseconds).
    #[must_use]
    pub fn with_clock(self, now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Options {
            clock: Clock::new(now),
            ..self
        }
    }

    /// These options, also serving the journal while it is open ([`Options::serve`]).
    #[must_use]
    pub fn with_serve(self, serve: ServeOptions) -> Self {
        Options {
            serve: Some(serve),
            ..self
        }
    }
}
