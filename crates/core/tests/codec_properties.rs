//! The stored-format decoder on untrusted bytes: it never panics, and a
//! length that would claim more than 32× the input is refused before any
//! allocation of that size.

use proptest::prelude::*;
use runjournal_core::codec::{
    decode_event, decode_event_body, decode_record, CodecError, RecordKind, DEFAULT_MAX_EVENT_SIZE,
};
use runjournal_core::snapshot::decode_snapshot;
use runjournal_core::{ChainHash, ChainReader, ChainWriter, Event, Message, Role, RunKey, RunRecord};

fn writer() -> ChainWriter {
    let key = RunKey {
        goal: "key".into(),
        episode: 0,
        agent: "a".into(),
    };
    ChainWriter::starting(key, ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE)
}

fn valid_record() -> Vec<u8> {
    let event = Event::Step {
        messages: vec![Message::new(Role::Assistant, "hello there")],
    };
    writer()
        .append(1, 2, event)
        .map(|written| written.record)
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_event(&bytes);
        let _ = decode_event_body(&bytes);
        let _ = decode_record::<RunRecord>(RecordKind::Run, &bytes);
        let _ = decode_snapshot(&bytes);
        let key = RunKey { goal: "g".into(), episode: 0, agent: "a".into() };
        let _ = ChainReader::new(key, ChainHash::GENESIS, 0).read(0, &bytes);
    }

    #[test]
    fn decoding_a_mutated_valid_record_never_panics(position in 0usize..64, value in any::<u8>(), cut in 0usize..80) {
        let mut record = valid_record();
        if position < record.len() {
            record[position] = value;
        }
        record.truncate(cut.max(1));
        let _ = decode_event(&record);
    }

    #[test]
    fn a_claimed_length_beyond_the_allocation_limit_is_refused(claimed in (1u64 << 20)..(1u64 << 62)) {
        // Epoch 0, ts 0, then a step (variant 2) whose message count, or a
        // custom event (variant 19) whose kind length, claims `claimed` entries.
        for variant in [2u8, 19] {
            let mut body = vec![0u8, 0, variant];
            body.push(253); // varint marker: a u64 follows
            body.extend_from_slice(&claimed.to_le_bytes());
            let error = decode_event_body(&body);
            let refused_by_the_limit = matches!(
                &error,
                Err(CodecError::Payload { reason }) if reason.to_lowercase().contains("limit")
            );
            prop_assert!(refused_by_the_limit, "{:?}", error);
        }
    }
}

#[test]
fn a_large_legitimate_event_still_decodes() {
    let event = Event::Custom {
        kind: "blob".into(),
        data: "x".repeat(4 * 1024 * 1024),
    };
    let written = writer()
        .append(0, 0, event.clone())
        .unwrap_or_else(|error| panic!("{error}"));
    let decoded = decode_event(&written.record).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(decoded.event, event);
}
