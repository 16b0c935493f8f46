//! An append on its way to the hub: its run and first seq. Its events are
//! not kept (the caller's fold took their messages); a subscriber's
//! envelopes are decoded from the append's stored records.
//!
//! Invariant: an [`Envelope`] is built (a record decoded, the key cloned into
//! it) only when a subscriber is there to receive it; with none, publishing
//! costs a look at the hub's subscriber list.

use std::sync::Arc;

use runjournal_core::codec::decode_event;
use runjournal_core::{ChainHash, Envelope, Event, IntegrityError, IntegrityProblem, RunKey};

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
    /// run kept for this (the fold reads envelopes, and building one per
    /// event would clone the run's key), moving a step's messages into the
    /// transcript: the event keeps no messages. `scratch` keeps only its run.
    pub(crate) fn fold_taking(&mut self, state: &mut runjournal_core::fold::ResumeState, scratch: &mut Envelope) {
        scratch.seq = self.seq;
        scratch.epoch = self.epoch;
        scratch.ts = self.ts;
        scratch.hash = self.hash;
        std::mem::swap(&mut scratch.event, &mut self.event);
        state.apply_taking(scratch);
        std::mem::swap(&mut scratch.event, &mut self.event);
    }
}

/// An append, for the hub.
pub(crate) struct Published {
    pub(crate) run: Arc<RunKey>,
    /// The seq of its first record.
    pub(crate) first_seq: u64,
}

impl Published {
    /// The envelopes of the append's `records`, each decoded as it is taken;
    /// a record that does not decode is an integrity error naming its seq.
    pub(crate) fn envelopes<'a>(
        &'a self,
        records: &'a [Vec<u8>],
    ) -> impl Iterator<Item = Result<Envelope, Box<IntegrityError>>> + 'a {
        (self.first_seq..).zip(records).map(|(seq, record)| {
            let decoded = decode_event(record).map_err(|source| {
                Box::new(IntegrityError {
                    run: RunKey::clone(&self.run),
                    seq,
                    problem: IntegrityProblem::Undecodable(source),
                })
            })?;
            Ok(Envelope {
                run: RunKey::clone(&self.run),
                seq,
                epoch: decoded.epoch,
                ts: decoded.ts,
                hash: decoded.hash,
                event: decoded.event,
            })
        })
    }
}

/// An envelope of `run` to fold through ([`Stamped::fold_taking`]).
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

    fn records(first_seq: u64, texts: &[&str]) -> (Vec<Vec<u8>>, Vec<Envelope>) {
        let head = runjournal_core::Head {
            next_seq: first_seq,
            hash: ChainHash([9; 32]),
            epoch: 1,
            last_ts: 0,
        };
        let mut writer = runjournal_core::ChainWriter::new(key(), head, runjournal_core::DEFAULT_MAX_EVENT_SIZE);
        let mut records = Vec::new();
        let mut envelopes = Vec::new();
        for (seq, text) in (first_seq..).zip(texts) {
            let event = stamped(seq, text).event;
            let (record, head) = writer.append_record(2, 100 + seq, &event).unwrap();
            records.push(record);
            envelopes.push(Envelope {
                run: key(),
                seq,
                epoch: 2,
                ts: 100 + seq,
                hash: head.hash,
                event,
            });
        }
        (records, envelopes)
    }

    #[test]
    fn published_records_become_the_envelopes_of_their_run() {
        let (records, expected) = records(3, &["a", "b"]);
        let published = Published {
            run: Arc::new(key()),
            first_seq: 3,
        };
        let envelopes: Vec<Envelope> = published.envelopes(&records).map(Result::unwrap).collect();
        assert_eq!(envelopes, expected);
        assert_eq!(envelopes[1].seq, 4);
        assert_eq!(envelopes[1].run, key());
    }

    #[test]
    fn a_published_record_that_does_not_decode_is_an_integrity_error_naming_its_seq() {
        let (mut records, expected) = records(3, &["a", "b"]);
        records[1] = b"not a record".to_vec();
        let published = Published {
            run: Arc::new(key()),
            first_seq: 3,
        };
        let mut envelopes = published.envelopes(&records);
        assert_eq!(envelopes.next().unwrap().unwrap(), expected[0]);
        let Some(Err(error)) = envelopes.next() else {
            panic!("the second record decodes");
        };
        assert_eq!((error.run.clone(), error.seq), (key(), 4));
        assert!(
            matches!(error.problem, IntegrityProblem::Undecodable(_)),
            "{:?}",
            error.problem
        );
    }

    #[test]
    fn folding_through_the_scratch_envelope_folds_as_the_envelope_does_taking_the_messages() {
        let mut events = vec![stamped(0, "a"), stamped(1, "b")];
        let mut by_envelope = ResumeState::new(key());
        for event in &events {
            by_envelope.apply(&event.envelope(&key()));
        }
        let mut through_scratch = ResumeState::new(key());
        let mut scratch = scratch_envelope(key());
        for event in &mut events {
            event.fold_taking(&mut through_scratch, &mut scratch);
        }
        assert_eq!(through_scratch, by_envelope);
        assert_eq!(through_scratch.iteration, 2);
        assert_eq!(
            events[1].event,
            Event::Step { messages: Vec::new() },
            "the messages moved into the transcript"
        );
        assert_eq!(scratch.event, Event::TurnCompleted);
    }
}
