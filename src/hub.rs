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

use runjournal_core::{Envelope, IntegrityError, RunId, RunKey};

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
    /// An event meant for it could not be read back from its record.
    Unreadable(Box<IntegrityError>),
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
    /// With no subscriber, none of them is taken (a lazy iterator, such as
    /// [`crate::published::Published::envelopes`], builds none). An envelope
    /// that could not be built ends the subscribers it was meant for, telling
    /// each why: the events after it never reach them either.
    pub(crate) fn publish(&self, envelopes: impl IntoIterator<Item = Result<Envelope, Box<IntegrityError>>>) {
        let mut slots = self.lock();
        if slots.is_empty() {
            return;
        }
        for envelope in envelopes {
            match envelope {
                Ok(envelope) => slots.retain(|slot| deliver(slot, &envelope)),
                Err(error) => end_readers_of(&mut slots, &error),
            }
        }
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

/// Ends the subscribers that `error`'s event was meant for.
fn end_readers_of(slots: &mut Vec<Slot>, error: &IntegrityError) {
    let (ended, kept): (Vec<Slot>, Vec<Slot>) = slots.drain(..).partition(|slot| match &slot.scope {
        Scope::Run(key) => *key == error.run,
        Scope::All => true,
    });
    *slots = kept;
    for slot in ended {
        slot.end(Ended::Unreadable(Box::new(error.clone())));
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

    fn slot(scope: Scope) -> (Slot, crossbeam_channel::Receiver<Envelope>, Arc<Mutex<Option<Ended>>>) {
        let (sender, receiver) = crossbeam_channel::bounded(8);
        let ended = Arc::new(Mutex::new(None));
        let slot = Slot {
            scope,
            run: None,
            sender,
            ended: ended.clone(),
        };
        (slot, receiver, ended)
    }

    #[test]
    fn publishing_with_no_subscriber_builds_no_envelope() {
        let hub = Hub::default();
        let built = Cell::new(0);
        hub.publish((0..3).map(|seq| {
            built.set(built.get() + 1);
            Ok(envelope(seq))
        }));
        assert_eq!(built.get(), 0);

        let (slot, receiver, _) = slot(Scope::Run(key()));
        hub.register(slot);
        hub.publish((0..3).map(|seq| {
            built.set(built.get() + 1);
            Ok(envelope(seq))
        }));
        assert_eq!(built.get(), 3);
        let seqs: Vec<u64> = receiver.try_iter().map(|envelope| envelope.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn an_event_that_cannot_be_read_back_ends_the_subscribers_it_was_meant_for() {
        let hub = Hub::default();
        let other = RunKey {
            goal: "other".into(),
            episode: 0,
            agent: "a".into(),
        };
        let (of_the_run, run_receiver, run_ended) = slot(Scope::Run(key()));
        let (of_all, all_receiver, all_ended) = slot(Scope::All);
        let (of_another, _, another_ended) = slot(Scope::Run(other));
        hub.register(of_the_run);
        hub.register(of_all);
        hub.register(of_another);
        let unreadable = Box::new(IntegrityError {
            run: key(),
            seq: 1,
            problem: runjournal_core::IntegrityProblem::Missing { next_seq: 2 },
        });
        hub.publish([Ok(envelope(0)), Err(unreadable.clone()), Ok(envelope(2))]);

        for (receiver, ended) in [(run_receiver, run_ended), (all_receiver, all_ended)] {
            let seqs: Vec<u64> = receiver.try_iter().map(|envelope| envelope.seq).collect();
            assert_eq!(seqs, vec![0], "nothing after the unreadable event");
            let why = ended.lock().unwrap().clone();
            assert_eq!(why, Some(Ended::Unreadable(unreadable.clone())));
        }
        assert_eq!(*another_ended.lock().unwrap(), None, "another run's subscriber stays");
        assert_eq!(hub.lock().len(), 1);
    }
}
