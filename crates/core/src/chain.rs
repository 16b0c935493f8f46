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

/// Records with their seqs, as a store's scan hands them out.
pub type SeqRecords<'r> = [(u64, &'r [u8])];

/// The fewest records [`ChainReader::split`] puts in a part.
pub const PARALLEL_MIN_RECORDS: usize = 512;

/// What reading a run of records gave: the envelopes that verified, in
/// order, and the error of the first record that did not.
#[derive(Debug)]
pub struct PartRead {
    /// The verified envelopes.
    pub envelopes: Vec<Envelope>,
    /// `Err` with the first bad record's error; nothing after it was read.
    pub outcome: Result<(), IntegrityError>,
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

    /// Verifies and decodes consecutive `records` (each with its seq), as
    /// [`ChainReader::read`] of each in turn does: the envelopes before the
    /// first bad record, then its error (or `Ok`); the reader advances past
    /// the records that verified.
    pub fn read_each(&mut self, records: &[(u64, &[u8])]) -> PartRead {
        let mut envelopes = Vec::with_capacity(records.len());
        for (seq, record) in records {
            match self.read(*seq, record) {
                Ok(envelope) => envelopes.push(envelope),
                Err(error) => {
                    return PartRead {
                        envelopes,
                        outcome: Err(error),
                    }
                }
            }
        }
        PartRead {
            envelopes,
            outcome: Ok(()),
        }
    }

    /// Splits consecutive `records` into at most `parts` contiguous parts
    /// that can be verified independently (on threads of the caller's, with
    /// [`ChainReader::read_each`]), each with a reader of its own. Each record
    /// carries its hash, so record `n` is checked against the *stored* hash
    /// of record `n − 1`: a part's reader starts at its first record's
    /// position, chained after the stored hash of the record before it.
    /// [`ChainReader::join`] then takes the parts in order. Parts hold at
    /// least [`PARALLEL_MIN_RECORDS`] records: below that a thread costs more
    /// than it saves.
    pub fn split<'r>(&self, records: &'r SeqRecords<'r>, parts: usize) -> Vec<(ChainReader, &'r SeqRecords<'r>)> {
        let parts = parts.clamp(1, records.len().div_ceil(PARALLEL_MIN_RECORDS).max(1));
        let part_len = records.len().div_ceil(parts).max(1);
        records
            .chunks(part_len)
            .enumerate()
            .map(|(index, part)| {
                let offset = index * part_len;
                let mut reader = self.clone();
                reader.next_seq = self.next_seq + offset as u64;
                if let Some((_, before)) = offset.checked_sub(1).and_then(|at| records.get(at)) {
                    // An unreadable record fails the part before; this part is then unused.
                    reader.previous = split_event_record(before).map_or(ChainHash([0; 32]), |(hash, _)| hash);
                }
                (reader, part)
            })
            .collect()
    }

    /// The reader that continues after consecutive `records` once they
    /// verify, built without reading them: it expects the seq after them and
    /// is chained after the *stored* hash of the last one, as a part of
    /// [`ChainReader::split`] is after the part before it. The next records
    /// can so be verified while `records` still are; their parts are then
    /// joined ([`ChainReader::join`]) after those of `records`, which is what
    /// proves that stored hash to be the chain's.
    #[must_use]
    pub fn past(&self, records: &SeqRecords<'_>) -> ChainReader {
        let mut reader = self.clone();
        reader.next_seq = self.next_seq + records.len() as u64;
        if let Some((_, last)) = records.last() {
            // An unreadable last record fails `records`; this reader is then unused.
            reader.previous = split_event_record(last).map_or(ChainHash([0; 32]), |(hash, _)| hash);
        }
        reader
    }

    /// Joins the parts of [`ChainReader::split`], each read with its reader,
    /// in order: a part counts only when every part before it verified, so
    /// the stored hash it started from was proven to be the chain's and the
    /// links between parts hold. The outcome is exactly that of
    /// [`ChainReader::read_each`] over all the records, and this reader
    /// advances past the records that verified.
    pub fn join(&mut self, parts: Vec<(ChainReader, PartRead)>) -> PartRead {
        let mut joined = PartRead {
            envelopes: Vec::new(),
            outcome: Ok(()),
        };
        for (reader, part) in parts {
            if joined.envelopes.is_empty() {
                // The first part's envelopes are taken as they are, not copied.
                joined.envelopes = part.envelopes;
            } else {
                joined.envelopes.extend(part.envelopes);
            }
            self.previous = reader.previous;
            self.next_seq = reader.next_seq;
            if part.outcome.is_err() {
                joined.outcome = part.outcome;
                break;
            }
        }
        joined
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain_writer::ChainWriter;
    use crate::codec::DEFAULT_MAX_EVENT_SIZE;
    use crate::event::Event;

    fn records(count: usize) -> (RunKey, Vec<Vec<u8>>) {
        let key = RunKey::new("g", 0, "a").unwrap();
        let mut writer = ChainWriter::starting(key.clone(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
        let records = (0..count)
            .map(|index| {
                let event = Event::Custom {
                    kind: "n".into(),
                    data: index.to_string(),
                };
                writer.append(0, 1, event).unwrap().record
            })
            .collect();
        (key, records)
    }

    /// Verifies as a caller with threads does, part after part.
    fn in_parts(
        reader: &mut ChainReader,
        records: &[(u64, &[u8])],
        parts: usize,
    ) -> (Vec<Envelope>, Result<(), IntegrityError>) {
        let read = reader
            .split(records, parts)
            .into_iter()
            .map(|(mut part_reader, part)| {
                let read = part_reader.read_each(part);
                (part_reader, read)
            })
            .collect();
        let joined = reader.join(read);
        (joined.envelopes, joined.outcome)
    }

    fn sequential(key: &RunKey, records: &[(u64, &[u8])]) -> (Vec<Envelope>, Result<(), IntegrityError>, u64) {
        let mut reader = ChainReader::new(key.clone(), ChainHash::GENESIS, 0);
        let mut envelopes = Vec::new();
        for (seq, record) in records {
            match reader.read(*seq, record) {
                Ok(envelope) => envelopes.push(envelope),
                Err(error) => return (envelopes, Err(error), reader.next_seq()),
            }
        }
        (envelopes, Ok(()), reader.next_seq())
    }

    #[test]
    fn parallel_verification_gives_exactly_the_sequential_outcome() {
        let (key, stored) = records(3000);
        let damages: [Option<(usize, usize)>; 5] =
            [None, Some((0, 40)), Some((1499, 40)), Some((1500, 3)), Some((2999, 45))];
        for damage in damages {
            let mut stored = stored.clone();
            if let Some((seq, at)) = damage {
                stored[seq][at] ^= 0x10;
            }
            let pairs: Vec<(u64, &[u8])> = (0u64..).zip(stored.iter().map(Vec::as_slice)).collect();
            let expected = sequential(&key, &pairs);
            for threads in [1, 2, 4] {
                let mut reader = ChainReader::new(key.clone(), ChainHash::GENESIS, 0);
                let (envelopes, outcome) = in_parts(&mut reader, &pairs, threads);
                assert_eq!(envelopes, expected.0, "{damage:?} on {threads} threads");
                assert_eq!(outcome, expected.1, "{damage:?} on {threads} threads");
                assert_eq!(reader.next_seq(), expected.2);
            }
        }
    }

    #[test]
    fn a_reader_past_records_verifies_the_next_records_as_sequential_reading_does() {
        let (key, stored) = records(3000);
        let damages: [Option<(usize, usize)>; 5] = [
            None,
            Some((999, 40)),
            Some((999, 6)),
            Some((1000, 40)),
            Some((2500, 40)),
        ];
        for damage in damages {
            let mut stored = stored.clone();
            if let Some((seq, at)) = damage {
                stored[seq][at] ^= 0x10;
            }
            let pairs: Vec<(u64, &[u8])> = (0u64..).zip(stored.iter().map(Vec::as_slice)).collect();
            let expected = sequential(&key, &pairs);
            let mut reader = ChainReader::new(key.clone(), ChainHash::GENESIS, 0);
            // Each batch is read with a reader built past the batch before,
            // before that batch is read; the parts are joined in order.
            let mut ahead = reader.clone();
            let mut parts = Vec::new();
            for batch in pairs.chunks(1000) {
                let mut batch_reader = ahead.clone();
                ahead = batch_reader.past(batch);
                let read = batch_reader.read_each(batch);
                parts.push((batch_reader, read));
            }
            let joined = reader.join(parts);
            assert_eq!(joined.envelopes, expected.0, "{damage:?}");
            assert_eq!(joined.outcome, expected.1, "{damage:?}");
            assert_eq!(reader.next_seq(), expected.2, "{damage:?}");
        }
        let mut gapped: Vec<(u64, &[u8])> = (0u64..).zip(stored.iter().map(Vec::as_slice)).collect();
        gapped.remove(500);
        let start = ChainReader::new(key, ChainHash::GENESIS, 0);
        let mut next = start.past(&gapped[..1000]);
        assert_eq!(next.next_seq(), 1000);
        let read = next.read_each(&gapped[1000..]);
        assert_eq!(read.outcome.unwrap_err().problem, IntegrityProblem::Gap { found: 1001 });
    }

    #[test]
    fn parallel_verification_finds_a_gap_and_a_swap_where_sequential_reading_does() {
        let (key, stored) = records(2000);
        let mut pairs: Vec<(u64, &[u8])> = (0u64..).zip(stored.iter().map(Vec::as_slice)).collect();
        pairs.remove(1200);
        let expected = sequential(&key, &pairs);
        let mut reader = ChainReader::new(key.clone(), ChainHash::GENESIS, 0);
        let (envelopes, outcome) = in_parts(&mut reader, &pairs, 2);
        assert_eq!(outcome.unwrap_err().problem, IntegrityProblem::Gap { found: 1201 });
        assert_eq!(envelopes.len(), 1200);
        assert_eq!(envelopes, expected.0);
        let mut swapped: Vec<(u64, &[u8])> = (0u64..).zip(stored.iter().map(Vec::as_slice)).collect();
        let (a, b) = (swapped[600].1, swapped[1600].1);
        swapped[600].1 = b;
        swapped[1600].1 = a;
        let mut reader = ChainReader::new(key, ChainHash::GENESIS, 0);
        let (envelopes, outcome) = in_parts(&mut reader, &swapped, 2);
        assert_eq!(outcome.unwrap_err().seq, 600);
        assert_eq!(envelopes.len(), 600);
    }

    #[test]
    fn parallel_verification_checks_the_link_between_parts() {
        // A record whose stored hash is self-consistent but does not follow
        // its predecessor (a forged tail starting at a part boundary) fails
        // at that seq, as sequential reading finds.
        let (key, stored) = records(2000);
        let (_, forged) = {
            let other = RunKey::new("other", 0, "a").unwrap();
            let mut writer = ChainWriter::starting(other.clone(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
            let forged: Vec<Vec<u8>> = (0..2000)
                .map(|index| {
                    let event = Event::Custom {
                        kind: "n".into(),
                        data: index.to_string(),
                    };
                    writer.append(0, 1, event).unwrap().record
                })
                .collect();
            (other, forged)
        };
        let mut mixed = stored.clone();
        mixed[1000..].clone_from_slice(&forged[1000..]);
        let pairs: Vec<(u64, &[u8])> = (0u64..).zip(mixed.iter().map(Vec::as_slice)).collect();
        let mut reader = ChainReader::new(key, ChainHash::GENESIS, 0);
        let (envelopes, outcome) = in_parts(&mut reader, &pairs, 2);
        assert_eq!(envelopes.len(), 1000);
        assert_eq!(outcome.unwrap_err().seq, 1000);
    }
}
