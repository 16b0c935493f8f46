//! The one event every workload writes: a `step` with one assistant message
//! of [`CONTENT_BYTES`] bytes, and its stored records.

use runjournal_core::{
    ChainHash, ChainWriter, CompactionSource, Event, Head, Message, Role, RunKey, DEFAULT_MAX_EVENT_SIZE,
};
use runjournal_sled::layout;

/// Bytes of message content in every step.
pub const CONTENT_BYTES: usize = 256;
/// Bytes of an event key in sled (`0x01 ‖ run ‖ seq`).
pub const KEY_BYTES: usize = 17;

/// The step payload and its encoded size.
pub(crate) struct Payload {
    message: Message,
    record_len: usize,
}

impl Payload {
    pub(crate) fn new() -> Payload {
        let message = Message::new(Role::Assistant, content(0));
        let mut payload = Payload { message, record_len: 0 };
        payload.record_len = payload.records(1).first().map_or(0, Vec::len);
        payload
    }

    /// The step's message.
    pub(crate) fn message(&self) -> Message {
        self.message.clone()
    }

    /// The step event.
    pub(crate) fn step(&self) -> Event {
        Event::Step {
            messages: vec![self.message()],
        }
    }

    /// Bytes of one encoded step record, as stored.
    pub(crate) fn record_len(&self) -> usize {
        self.record_len
    }

    /// `count` step records chained from seq 1 of the bench run, encoded
    /// exactly as the journal stores them.
    pub(crate) fn records(&self, count: u64) -> Vec<Vec<u8>> {
        let ts = now_millis();
        let start = Head {
            next_seq: 1,
            hash: ChainHash::GENESIS,
            epoch: 0,
            last_ts: ts,
        };
        let mut writer = ChainWriter::new(bench_key("raw", 0), start, DEFAULT_MAX_EVENT_SIZE);
        (1..=count)
            .map(|_| {
                let written = writer.append(0, ts, self.step());
                let written = written.unwrap_or_else(|error| unreachable!("a 256-byte step always encodes: {error}"));
                written.record
            })
            .collect()
    }
}

/// The key of the bench's run number `index` of workload `name`.
pub(crate) fn bench_key(name: &str, index: usize) -> RunKey {
    RunKey {
        goal: format!("bench-{name}"),
        episode: 0,
        agent: format!("agent-{index}"),
    }
}

/// The sled key of event `seq` of run `run`.
pub(crate) fn event_key(run: u64, seq: u64) -> [u8; KEY_BYTES] {
    layout::event_key(run, seq)
}

/// A realistic agent session for the resume workload: steps, with a
/// structured context compaction (started, done with a summary) closing every
/// `cycle` events, so the transcript, and with it the resume state and its
/// snapshots, stays bounded as real agent contexts do.
pub(crate) fn session_event(payload: &Payload, seq: u64, cycle: u64) -> Event {
    let position = seq % cycle;
    let id = Some(format!("c{}", seq / cycle));
    if position == cycle - 2 {
        Event::CompactionStarted {
            id,
            source: CompactionSource::Structured,
            messages_before: Some(cycle - 2),
            tokens_before: None,
        }
    } else if position == cycle - 1 {
        Event::CompactionDone {
            id,
            source: CompactionSource::Structured,
            summary: Some(content(seq)),
            messages_after: Some(1),
            tokens_after: None,
        }
    } else {
        payload.step()
    }
}

/// [`CONTENT_BYTES`] bytes of text, numbered.
fn content(number: u64) -> String {
    const FILLER: &str = "The build failed in the integration tests; I will read the failing test, reproduce it \
        locally, bisect the change that broke it and propose a minimal fix with a regression test. ";
    let mut text = format!("{number:08} ");
    while text.len() < CONTENT_BYTES {
        text.push_str(FILLER);
    }
    text.truncate(CONTENT_BYTES);
    text
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_exactly_the_advertised_size() {
        assert_eq!(content(7).len(), CONTENT_BYTES);
    }

    #[test]
    fn session_cycles_end_with_a_compaction() {
        let payload = Payload::new();
        assert!(matches!(
            session_event(&payload, 98, 100),
            Event::CompactionStarted { .. }
        ));
        assert!(matches!(session_event(&payload, 99, 100), Event::CompactionDone { .. }));
        assert!(matches!(session_event(&payload, 100, 100), Event::Step { .. }));
    }
}
