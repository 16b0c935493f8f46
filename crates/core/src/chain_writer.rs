//! Chained writing, the twin of [`crate::chain::ChainReader`]: every event
//! written to a run's log becomes a stored record through a [`ChainWriter`].
//!
//! Invariants:
//! - A writer hands out seqs gapless from its starting head, each record
//!   chained after the previous one: `hash(n) = blake3(hash(n-1) ‖ key ‖ seq ‖
//!   body)`, exactly what [`crate::chain::ChainReader`] verifies.
//! - The body is encoded once; the hash is taken over the bytes that are
//!   stored, so reading never re-encodes.
//! - An event whose body exceeds the size limit, or that does not encode, is
//!   a [`ChainWriteError`] naming the run and the seq, and the writer is left
//!   where it was: it advances only on success.
//! - The writer knows nothing of ordering rules (see [`crate::rules`]) or of
//!   storage; it only builds records.

use crate::codec::{encode_event, CodecError};
use crate::envelope::Envelope;
use crate::event::Event;
use crate::hash::ChainHash;
use crate::key::RunKey;
use crate::store::Head;

/// An event that cannot become a stored record; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("run {run} seq {seq}: {problem}")]
pub struct ChainWriteError {
    /// The run.
    pub run: RunKey,
    /// The seq the event would have had.
    pub seq: u64,
    /// What is wrong.
    pub problem: ChainWriteProblem,
}

/// Why an event cannot become a stored record. Exhaustive on purpose: the
/// handle maps each problem to an error of its own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainWriteProblem {
    /// The encoded body is larger than the writer's limit.
    #[error("event is {size} bytes encoded, larger than the maximum of {max} bytes")]
    TooLarge {
        /// The encoded body's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The encoder refused the event.
    #[error("event does not encode: {0}")]
    Unencodable(CodecError),
}

/// One event made into a stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainedEvent {
    /// The whole stored value (header ‖ hash ‖ body).
    pub record: Vec<u8>,
    /// The event with its run, seq, epoch, time and chain hash.
    pub envelope: Envelope,
    /// The run's head after it.
    pub head: Head,
}

/// Builds one run's records in order, from a head.
#[derive(Clone, Debug)]
pub struct ChainWriter {
    key: RunKey,
    key_bytes: Vec<u8>,
    head: Head,
    max_event_size: usize,
}

impl ChainWriter {
    /// A writer that continues after `head`: its next record gets
    /// `head.next_seq` and is chained after `head.hash`. Bodies larger than
    /// `max_event_size` bytes are refused.
    pub fn new(key: RunKey, head: Head, max_event_size: usize) -> Self {
        let key_bytes = key.canonical_bytes();
        ChainWriter {
            key,
            key_bytes,
            head,
            max_event_size,
        }
    }

    /// A writer for a new run's log, from seq 0, chained after `previous`:
    /// [`ChainHash::GENESIS`], or a parent's hash at the fork point.
    pub fn starting(key: RunKey, previous: ChainHash, max_event_size: usize) -> Self {
        let head = Head {
            next_seq: 0,
            hash: previous,
            epoch: 0,
            last_ts: 0,
        };
        ChainWriter::new(key, head, max_event_size)
    }

    /// The run being written.
    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// The head after the last record written (or the starting head).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Makes `event` the next record, written in `epoch` at `ts`, and
    /// advances the writer; on error the writer is unchanged.
    pub fn append(&mut self, epoch: u64, ts: u64, event: Event) -> Result<ChainedEvent, ChainWriteError> {
        let (record, head) = self.append_record(epoch, ts, &event)?;
        Ok(ChainedEvent {
            record,
            envelope: Envelope {
                run: self.key.clone(),
                seq: head.next_seq - 1,
                epoch,
                ts,
                hash: head.hash,
                event,
            },
            head,
        })
    }

    /// Makes `event` the next record exactly as [`ChainWriter::append`]
    /// does, without building its envelope (which clones the run's key):
    /// the stored record and the run's head after it, whose `hash` is the
    /// event's chain hash and whose `next_seq` is one past the event's seq.
    pub fn append_record(&mut self, epoch: u64, ts: u64, event: &Event) -> Result<(Vec<u8>, Head), ChainWriteError> {
        let seq = self.head.next_seq;
        let error = |problem| ChainWriteError {
            run: self.key.clone(),
            seq,
            problem,
        };
        let unsealed =
            encode_event(epoch, ts, event).map_err(|source| error(ChainWriteProblem::Unencodable(source)))?;
        let size = unsealed.body().len();
        if size > self.max_event_size {
            return Err(error(ChainWriteProblem::TooLarge {
                size,
                max: self.max_event_size,
            }));
        }
        let hash = ChainHash::next(&self.head.hash, &self.key_bytes, seq, unsealed.body());
        let head = Head {
            next_seq: seq + 1,
            hash,
            epoch,
            last_ts: ts,
        };
        self.head = head;
        Ok((unsealed.seal(&hash), head))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::chain::{ChainReader, IntegrityProblem};
    use crate::codec::{split_event_record, DEFAULT_MAX_EVENT_SIZE};
    use crate::event::{ErrorInfo, Message, Role, RunMeta};

    fn key(goal: &str) -> RunKey {
        RunKey {
            goal: goal.into(),
            episode: 0,
            agent: "a".into(),
        }
    }

    fn step(text: &str) -> Event {
        Event::Step {
            messages: vec![Message::new(Role::User, text)],
        }
    }

    fn started() -> Event {
        Event::RunStarted {
            meta: RunMeta::default(),
        }
    }

    /// Events of several shapes and sizes, chosen by `choice`.
    fn varied_event(choice: u8, text: String) -> Event {
        match choice % 6 {
            0 => step(&text),
            1 => Event::Custom {
                kind: "k".into(),
                data: text,
            },
            2 => Event::TurnCompleted,
            3 => Event::PhaseStarted { index: 1, name: text },
            4 => Event::Teardown {
                resource: text,
                error: None,
            },
            _ => Event::RunFailed {
                error: ErrorInfo::new("kind", text),
                cleanup_errors: Vec::new(),
            },
        }
    }

    #[test]
    fn records_chain_the_stored_body_after_the_previous_hash() {
        let run = key("g");
        let mut writer = ChainWriter::starting(run.clone(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
        let first = writer.append(0, 5, started()).unwrap();
        let second = writer.append(0, 6, step("hi")).unwrap();
        let (stored, body) = split_event_record(&second.record).unwrap();
        let expected = ChainHash::next(&first.envelope.hash, &run.canonical_bytes(), 1, body);
        assert_eq!((stored, second.envelope.hash), (expected, expected));
        assert_eq!(
            second.head,
            Head {
                next_seq: 2,
                hash: expected,
                epoch: 0,
                last_ts: 6
            }
        );
        assert_eq!(writer.head(), second.head);
    }

    #[test]
    fn an_oversized_event_is_too_large_names_run_and_seq_and_leaves_the_writer_unchanged() {
        let mut writer = ChainWriter::starting(key("g"), ChainHash::GENESIS, 50);
        writer.append(0, 0, Event::TurnCompleted).unwrap();
        let before = writer.head();
        let big = Event::Custom {
            kind: "k".into(),
            data: "x".repeat(100),
        };
        let error = writer.append(0, 0, big).unwrap_err();
        assert_eq!((&error.run, error.seq), (&key("g"), 1));
        assert!(
            matches!(error.problem, ChainWriteProblem::TooLarge { max: 50, .. }),
            "{error:?}"
        );
        assert_eq!(writer.head(), before);
        assert_eq!(writer.append(0, 0, Event::TurnCompleted).unwrap().envelope.seq, 1);
    }

    #[test]
    fn a_forks_writer_chains_from_the_parents_hash_and_verifies_with_a_reader_from_it() {
        let mut parent = ChainWriter::starting(key("parent"), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
        let parent_records: Vec<ChainedEvent> = (0..4)
            .map(|seq| parent.append(0, seq, if seq == 0 { started() } else { step("p") }))
            .collect::<Result<_, _>>()
            .unwrap();
        let fork_hash = parent_records[2].envelope.hash;
        let mut child = ChainWriter::starting(key("child"), fork_hash, DEFAULT_MAX_EVENT_SIZE);
        let child_records: Vec<ChainedEvent> = (0..3)
            .map(|seq| child.append(0, seq, if seq == 0 { started() } else { step("c") }))
            .collect::<Result<_, _>>()
            .unwrap();
        let mut reader = ChainReader::new(key("child"), fork_hash, 0);
        for written in &child_records {
            assert_eq!(
                reader.read(written.envelope.seq, &written.record).unwrap(),
                written.envelope
            );
        }
        reader.finish(3, Some(&child.head().hash)).unwrap();
        // The same records do not verify from the genesis hash: the fork point is chained.
        let mut from_genesis = ChainReader::new(key("child"), ChainHash::GENESIS, 0);
        let error = from_genesis.read(0, &child_records[0].record).unwrap_err();
        assert!(
            matches!(error.problem, IntegrityProblem::HashMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_writer_continuing_after_a_head_extends_the_same_chain() {
        let mut whole = ChainWriter::starting(key("g"), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
        let mut records = Vec::new();
        for seq in 0..3 {
            records.push(whole.append(1, seq, step("x")).unwrap());
        }
        let mut continued = ChainWriter::new(key("g"), records[1].head, DEFAULT_MAX_EVENT_SIZE);
        assert_eq!(continued.append(1, 2, step("x")).unwrap(), records[2]);
    }

    #[test]
    fn append_record_writes_the_record_and_head_append_writes() {
        let mut enveloped = ChainWriter::starting(key("g"), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
        let mut bare = enveloped.clone();
        for seq in 0..3 {
            let written = enveloped.append(2, 10 + seq, step("x")).unwrap();
            let (record, head) = bare.append_record(2, 10 + seq, &step("x")).unwrap();
            assert_eq!((record, head), (written.record, written.head));
            assert_eq!(written.envelope.seq, seq);
            assert_eq!(written.envelope.hash, head.hash);
        }
        assert_eq!(bare.head(), enveloped.head());
        let mut small = ChainWriter::starting(key("g"), ChainHash::GENESIS, 4);
        let refused = small.append_record(0, 0, &step("too long")).unwrap_err();
        assert_eq!(refused.seq, 0);
        assert!(matches!(refused.problem, ChainWriteProblem::TooLarge { max: 4, .. }));
        assert_eq!(
            small.head().next_seq,
            0,
            "a refused record leaves the writer where it was"
        );
    }

    proptest! {
        #[test]
        fn records_written_by_a_chain_writer_verify_with_a_chain_reader(
            events in prop::collection::vec((any::<u8>(), ".{0,40}", 0u64..3, any::<u32>()), 1..40),
            genesis in any::<[u8; 32]>(),
        ) {
            let run = key("g");
            let mut writer = ChainWriter::starting(run.clone(), ChainHash(genesis), DEFAULT_MAX_EVENT_SIZE);
            let mut reader = ChainReader::new(run, ChainHash(genesis), 0);
            for (choice, text, epoch, ts) in events {
                let event = varied_event(choice, text);
                let written = writer.append(epoch, u64::from(ts), event.clone()).unwrap();
                let read = reader.read(written.envelope.seq, &written.record).unwrap();
                prop_assert_eq!(&read, &written.envelope);
                prop_assert_eq!(read.event, event);
                prop_assert_eq!((read.epoch, read.ts), (epoch, u64::from(ts)));
            }
            let head = writer.head();
            prop_assert!(reader.finish(head.next_seq, Some(&head.hash)).is_ok());
        }
    }
}
