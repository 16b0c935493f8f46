//! The subscriber hub: live delivery of appended events.
//!
//! Invariants:
//! - Only the writer publishes (its thread, or a durable append committing
//!   on its own thread), under its group lock, after a group is applied and
//!   (in `Durable` mode) synced, in the order the groups were applied: per
//!   run, seq order.
//! - Subscriptions register through the writer between groups, when nothing
//!   is in flight; the head reported at registration is where live delivery
//!   starts, so stored-then-live has no gap and no duplicate.
//! - A subscriber whose bounded buffer is full is dropped from the hub (never
//!   blocking the writer) and learns the first event it missed.
//! - When the journal is poisoned every subscriber is dropped.
//! - A run subscriber is matched by the run's id (never reused), not only its
//!   key; when its run is purged it is dropped and learns why, so a new run
//!   under the same key never reaches it.

use std::sync::{Arc, Mutex};

use runjournal_core::{Envelope, RunId, RunKey};

/// The first event a lagging subscriber missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagPoint {
    /// The run of the missed event.
    pub run: RunKey,
    /// Its seq: catch up from here.
    pub seq: u64,
}

/// Why the hub dropped a subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its buffer was full: the first event it missed.
    Lagged(LagPoint),
    /// Its run was purged.
    Purged(RunKey),
}

/// Which events a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Run(RunKey),
    All,
}

/// A subscriber's end inside the hub.
pub(crate) struct Slot {
    pub(crate) scope: Scope,
    /// The subscribed run's id (`None` for every run).
    pub(crate) run: Option<RunId>,
    pub(crate) sender: crossbeam_channel::Sender<Envelope>,
    pub(crate) ended: Arc<Mutex<Option<Ended>>>,
}

impl Slot {
    /// Drops the subscriber, recording why (its channel closes with it).
    pub(crate) fn end(self, why: Ended) {
        *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    }
}

/// Every live subscriber.
#[derive(Default)]
pub(crate) struct Hub {
    slots: Mutex<Vec<Slot>>,
}

impl Hub {
    /// Adds a subscriber (called by the writer between groups).
    pub(crate) fn register(&self, slot: Slot) {
        self.lock().push(slot);
    }

    /// Delivers `envelopes` to every matching subscriber without blocking.
    /// With no subscriber, none of them is taken (a lazy iterator, such as a
    /// [`crate::published::Published`], builds none) and they are handed
    /// back.
    pub(crate) fn publish<E: IntoIterator<Item = Envelope>>(&self, envelopes: E) -> Option<E> {
        let mut slots = self.lock();
        if slots.is_empty() {
            return Some(envelopes);
        }
        for envelope in envelopes {
            slots.retain(|slot| deliver(slot, &envelope));
        }
        None
    }

    /// Drops the subscribers of the purged `runs`, telling each why.
    pub(crate) fn purged(&self, runs: &[RunId]) {
        let mut slots = self.lock();
        let (ended, kept): (Vec<Slot>, Vec<Slot>) = slots
            .drain(..)
            .partition(|slot| slot.run.is_some_and(|run| runs.contains(&run)));
        *slots = kept;
        for slot in ended {
            let Scope::Run(key) = slot.scope.clone() else {
                continue;
            };
            slot.end(Ended::Purged(key));
        }
    }

    /// Drops every subscriber (the journal is poisoned: nothing more comes).
    pub(crate) fn close_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sends to one subscriber; `false` drops it from the hub.
fn deliver(slot: &Slot, envelope: &Envelope) -> bool {
    if let Scope::Run(key) = &slot.scope {
        if *key != envelope.run {
            return true;
        }
    }
    match slot.sender.try_send(envelope.clone()) {
        Ok(()) => true,
        Err(crossbeam_channel::TrySendError::Full(_)) => {
            let mut ended = slot.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *ended = Some(Ended::Lagged(LagPoint {
                run: envelope.run.clone(),
                seq: envelope.seq,
            }));
            false
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use runjournal_core::{ChainHash, Event};

    use super::*;

    fn key() -> RunKey {
        RunKey {
            goal: "g".into(),
            episode: 0,
            agent: "a".into(),
        }
    }

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            run: key(),
            seq,
            epoch: 0,
            ts: 0,
            hash: ChainHash::GENESIS,
            event: Event::TurnCompleted,
        }
    }

    #[test]
    fn publishing_with_no_subscriber_builds_no_envelope_and_hands_them_back() {
        let hub = Hub::default();
        let built = Cell::new(0);
        let unpublished = hub.publish((0..3).map(|seq| {
            built.set(built.get() + 1);
            envelope(seq)
        }));
        assert_eq!(built.get(), 0);
        let handed_back: Vec<u64> = unpublished
            .expect("with no subscriber the envelopes are handed back")
            .map(|envelope| envelope.seq)
            .collect();
        assert_eq!(handed_back, vec![0, 1, 2]);
        built.set(0);

        let (sender, receiver) = crossbeam_channel::bounded(8);
        hub.register(Slot {
            scope: Scope::Run(key()),
            run: None,
            sender,
            ended: Arc::new(Mutex::new(None)),
        });
        let unpublished = hub.publish((0..3).map(|seq| {
            built.set(built.get() + 1);
            envelope(seq)
        }));
        assert!(unpublished.is_none(), "a subscriber took the envelopes");
        assert_eq!(built.get(), 3);
        let seqs: Vec<u64> = receiver.try_iter().map(|envelope| envelope.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }
}
