//! Verified reading: every stored record of a run is checked, in seq order,
//! for position, header, decoding and chain hash before it becomes an
//! [`Envelope`]. Nothing is skipped: the first problem is a typed
//! [`IntegrityError`] naming the run and the seq.

use crate::codec::{decode_event_body, split_event_record, CodecError};
use crate::envelope::Envelope;
use crate::hash::ChainHash;
use crate::key::RunKey;

/// A stored event that cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("run {run} seq {seq}: {problem}")]
pub struct IntegrityError {
    /// The run.
    pub run: RunKey,
    /// The first bad seq.
    pub seq: u64,
    /// What is wrong.
    pub problem: IntegrityProblem,
}

/// What is wrong with a stored event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityProblem {
    /// The record does not decode.
    #[error("stored event does not decode: {0}")]
    Undecodable(CodecError),
    /// The seq due next is not stored; the next stored event has a later seq.
    #[error("event is missing (the next stored event is seq {found})")]
    Gap {
        /// The seq of the next stored event.
        found: u64,
    },
    /// The record decodes but its hash does not continue the chain.
    #[error("hash mismatch: stored {stored}, chain gives {computed}")]
    HashMismatch {
        /// The hash stored in the record.
        stored: ChainHash,
        /// The hash the chain computes for it.
        computed: ChainHash,
    },
    /// The run's head says the event exists but it is not stored.
    #[error("event is missing (the run's head says it has {next_seq} events)")]
    Missing {
        /// The head's event count.
        next_seq: u64,
    },
    /// The chain is whole but does not end at the hash the head records.
    #[error("last event's hash {last} differs from the run head's {head}")]
    HeadMismatch {
        /// The last verified hash.
        last: ChainHash,
        /// The head's hash.
        head: ChainHash,
    },
}

/// Verifies one run's records in order.
#[derive(Clone, Debug)]
pub struct ChainReader {
    key: RunKey,
    key_bytes: Vec<u8>,
    previous: ChainHash,
    next_seq: u64,
}

impl ChainReader {
    /// A reader that expects `start_seq` next, chained after `previous`.
    pub fn new(key: RunKey, previous: ChainHash, start_seq: u64) -> Self {
        let key_bytes = key.canonical_bytes();
        ChainReader {
            key,
            key_bytes,
            previous,
            next_seq: start_seq,
        }
    }

    /// The run being read.
    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// The seq expected next.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last verified event (or the starting hash).
    pub fn last_hash(&self) -> ChainHash {
        self.previous
    }

    /// Verifies and decodes the record at `seq`.
    #[expect(
        clippy::result_large_err,
        reason = "the Ok envelope is larger than the error; boxing saves nothing"
    )]
    pub fn read(&mut self, seq: u64, record: &[u8]) -> Result<Envelope, IntegrityError> {
        if seq != self.next_seq {
            return Err(self.error(IntegrityProblem::Gap { found: seq }));
        }
        let (stored, body) =
            split_event_record(record).map_err(|error| self.error(IntegrityProblem::Undecodable(error)))?;
        let computed = ChainHash::next(&self.previous, &self.key_bytes, seq, body);
        if computed != stored {
            return Err(self.error(IntegrityProblem::HashMismatch { stored, computed }));
        }
        let (epoch, ts, event) =
            decode_event_body(body).map_err(|error| self.error(IntegrityProblem::Undecodable(error)))?;
        self.previous = computed;
        self.next_seq += 1;
        Ok(Envelope {
            run: self.key.clone(),
            seq,
            epoch,
            ts,
            hash: computed,
            event,
        })
    }

    /// Checks that reading ended where it should: every event up to
    /// `end_seq` was read and, when `end_seq` is the run's head, the last hash
    /// is the head's (`head_hash`).
    #[expect(
        clippy::result_large_err,
        reason = "errors are rare and end the read; boxing would only add an allocation"
    )]
    pub fn finish(&self, end_seq: u64, head_hash: Option<&ChainHash>) -> Result<(), IntegrityError> {
        if self.next_seq < end_seq {
            return Err(self.error(IntegrityProblem::Missing { next_seq: end_seq }));
        }
        if let Some(head) = head_hash.filter(|head| **head != self.previous) {
            let problem = IntegrityProblem::HeadMismatch {
                last: self.previous,
                head: *head,
            };
            return Err(IntegrityError {
                run: self.key.clone(),
                seq: self.next_seq.saturating_sub(1),
                problem,
            });
        }
        Ok(())
    }

    fn error(&self, problem: IntegrityProblem) -> IntegrityError {
        IntegrityError {
            run: self.key.clone(),
            seq: self.next_seq,
            problem,
        }
    }
}
