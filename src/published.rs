//! An append's events on their way to the hub: each with its position, time
//! and chain hash, and the run's key shared by all of them.
//!
//! Invariant: an [`Envelope`] is built (the key cloned into it) only when a
//! subscriber is there to receive it; with none, publishing costs a look at
//! the hub's subscriber list.

use std::sync::Arc;

use runjournal_core::{ChainHash, Envelope, Event, RunKey};

/// One appended event, without its run.
pub(crate) struct Stamped {
    pub(crate) seq: u64,
    pub(crate) epoch: u64,
    pub(crate) ts: u64,
    pub(crate) hash: ChainHash,
    pub(crate) event: Event,
}

impl Stamped {
    /// The event's envelope in `run`.
    pub(crate) fn envelope(&self, run: &RunKey) -> Envelope {
        Envelope {
            run: run.clone(),
            seq: self.seq,
            epoch: self.epoch,
            ts: self.ts,
            hash: self.hash,
            event: self.event.clone(),
        }
    }

    /// Folds the event into `state` through `scratch`, an envelope of the
    /// run kept for this: the fold reads envelopes, and building one per
    /// event would clone the run's key. The event is moved into `scratch`
    /// for the fold and back; `scratch` keeps only its run.
    pub(crate) fn fold_into(&mut self, state: &mut runjournal_core::fold::ResumeState, scratch: &mut Envelope) {
        scratch.seq = self.seq;
        scratch.epoch = self.epoch;
        scratch.ts = self.ts;
        scratch.hash = self.hash;
        std::mem::swap(&mut scratch.event, &mut self.event);
        state.apply(scratch);
        std::mem::swap(&mut scratch.event, &mut self.event);
    }
}

/// The events of one append, for the hub.
pub(crate) struct Published {
    pub(crate) run: Arc<RunKey>,
    pub(crate) events: Vec<Stamped>,
    /// Bytes of the append's encoded records: what the events weigh, near
    /// enough, to bound how many are kept ([`crate::spent::Spent`]).
    pub(crate) record_bytes: u64,
}

impl IntoIterator for Published {
    type Item = Envelope;
    type IntoIter = Envelopes;

    /// The envelopes, each built as it is taken.
    fn into_iter(self) -> Envelopes {
        Envelopes {
            run: self.run,
            events: self.events.into_iter(),
        }
    }
}

/// The envelopes of a [`Published`], built one at a time.
pub(crate) struct Envelopes {
    run: Arc<RunKey>,
    events: std::vec::IntoIter<Stamped>,
}

impl Iterator for Envelopes {
    type Item = Envelope;

    fn next(&mut self) -> Option<Envelope> {
        self.events.next().map(|stamped| Envelope {
            run: RunKey::clone(&self.run),
            seq: stamped.seq,
            epoch: stamped.epoch,
            ts: stamped.ts,
            hash: stamped.hash,
            event: stamped.event,
        })
    }
}

/// An envelope of `run` to fold through ([`Stamped::fold_into`]).
pub(crate) fn scratch_envelope(run: RunKey) -> Envelope {
    Envelope {
        run,
        seq: 0,
        epoch: 0,
        ts: 0,
        hash: ChainHash::GENESIS,
        event: Event::TurnCompleted,
    }
}

#[cfg(test)]
mod tests {
    use runjournal_core::fold::ResumeState;
    use runjournal_core::{Message, Role};

    use super::*;

    fn key() -> RunKey {
        RunKey {
            goal: "g".into(),
            episode: 0,
            agent: "a".into(),
        }
    }

    fn stamped(seq: u64, text: &str) -> Stamped {
        Stamped {
            seq,
            epoch: 1,
            ts: 100 + seq,
            hash: ChainHash([u8::try_from(seq).unwrap(); 32]),
            event: Event::Step {
                messages: vec![Message::new(Role::User, text)],
            },
        }
    }

    #[test]
    fn published_events_become_the_envelopes_of_their_run() {
        let published = Published {
            run: Arc::new(key()),
            events: vec![stamped(3, "a"), stamped(4, "b")],
            record_bytes: 0,
        };
        let expected: Vec<Envelope> = published.events.iter().map(|event| event.envelope(&key())).collect();
        let envelopes: Vec<Envelope> = published.into_iter().collect();
        assert_eq!(envelopes, expected);
        assert_eq!(envelopes[1].seq, 4);
        assert_eq!(envelopes[1].run, key());
        assert_eq!(envelopes[1].hash, ChainHash([4; 32]));
    }

    #[test]
    fn folding_through_the_scratch_envelope_folds_as_the_envelope_does() {
        let mut events = vec![stamped(0, "a"), stamped(1, "b")];
        let mut by_envelope = ResumeState::new(key());
        for event in &events {
            by_envelope.apply(&event.envelope(&key()));
        }
        let mut through_scratch = ResumeState::new(key());
        let mut scratch = scratch_envelope(key());
        for event in &mut events {
            event.fold_into(&mut through_scratch, &mut scratch);
        }
        assert_eq!(through_scratch, by_envelope);
        assert_eq!(through_scratch.iteration, 2);
        assert_eq!(
            events[1].envelope(&key()).event,
            stamped(1, "b").event,
            "the event is moved back"
        );
        assert_eq!(scratch.event, Event::TurnCompleted);
    }
}
