//! The contract v2 events in format v1: the committed encoded bytes of the event
//! types v2 added (`usage`, `segment_rotated`, `resource_acquired`, with their
//! optional fields set and absent) must decode to the committed envelopes,
//! verify as a chain and re-encode byte-identically, in this and every later
//! build. Their variant indices come after every v1 variant, so the v1 fixture
//! (`golden_format_v1.rs`) is untouched. `RUNJOURNAL_WRITE_GOLDEN=1` writes the
//! fixture only when it is missing.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use runjournal::core::codec::DEFAULT_MAX_EVENT_SIZE;
use runjournal::core::{ChainReader, ChainWriter, ChainedEvent, Head};
use runjournal::*;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format_v1_events_v2")
}

fn golden_key() -> RunKey {
    RunKey::new("golden-goal", 2, "agent-0").unwrap()
}

/// The v2 event types, each with its optional fields set and absent.
fn v2_events() -> Vec<Event> {
    vec![
        Event::Usage {
            input_tokens: Some(1200),
            output_tokens: Some(300),
            cost_usd: Some(0.0231),
            counters: Some(BTreeMap::from([
                ("retries".to_string(), 1.0),
                ("tool_calls".to_string(), 4.0),
            ])),
        },
        Event::Usage {
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            counters: None,
        },
        Event::SegmentRotated {
            reason: RotationReason::SessionLoad,
            session_id: Some("h-2".into()),
            provenance: Some(BTreeMap::from([
                ("hermes_session_id".to_string(), "h-2".to_string()),
                ("loaded_from".to_string(), "disk — ünïcödé".to_string()),
            ])),
        },
        Event::SegmentRotated {
            reason: RotationReason::SessionChanged,
            session_id: None,
            provenance: None,
        },
        Event::ResourceAcquired {
            resource: "sandbox-1".into(),
        },
    ]
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn encode(previous: &ChainHash, seq: u64, envelope_ts: u64, event: &Event) -> ChainedEvent {
    let head = Head {
        next_seq: seq,
        hash: *previous,
        epoch: 1,
        last_ts: envelope_ts,
    };
    ChainWriter::new(golden_key(), head, DEFAULT_MAX_EVENT_SIZE)
        .append(1, envelope_ts, event.clone())
        .unwrap()
}

fn write_fixture() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut previous = ChainHash::GENESIS;
    let mut records = String::new();
    let mut envelopes = String::new();
    for (seq, event) in (0u64..).zip(v2_events()) {
        let ts = 1_763_900_000_000 + seq;
        let encoded = encode(&previous, seq, ts, &event);
        let _ = writeln!(
            records,
            "{} {}",
            event.type_name(),
            runjournal::core::hash::to_hex(&encoded.record)
        );
        let envelope = Envelope {
            run: golden_key(),
            seq,
            epoch: 1,
            ts,
            hash: encoded.envelope.hash,
            event,
        };
        envelopes.push_str(&envelope.to_json_line());
        envelopes.push('\n');
        previous = encoded.envelope.hash;
    }
    std::fs::write(dir.join("events.hex"), records).unwrap();
    std::fs::write(dir.join("events.jsonl"), envelopes).unwrap();
}

#[test]
fn v2_events_in_format_v1_decode_verify_and_reencode_byte_identically() {
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN").is_some() && !fixture_dir().exists() {
        write_fixture();
    }
    let records = std::fs::read_to_string(fixture_dir().join("events.hex")).unwrap();
    let lines = std::fs::read_to_string(fixture_dir().join("events.jsonl")).unwrap();
    let mut reader = ChainReader::new(golden_key(), ChainHash::GENESIS, 0);
    let mut previous = ChainHash::GENESIS;
    let mut decoded = Vec::new();
    for ((seq, record_line), json_line) in (0u64..).zip(records.lines()).zip(lines.lines()) {
        let (type_name, hex) = record_line.split_once(' ').unwrap();
        let record = hex_decode(hex);
        assert_eq!(&record[..5], b"RJE\x01\x01", "v1 header of {type_name}");
        let envelope = reader.read(seq, &record).unwrap();
        assert_eq!(envelope.event.type_name(), type_name);
        let expected: Envelope = serde_json::from_str(json_line).unwrap();
        assert_eq!(envelope, expected, "seq {seq} ({type_name})");
        assert_eq!(envelope.to_json_line(), json_line, "seq {seq} exports to the same JSON");
        let reencoded = encode(&previous, seq, envelope.ts, &envelope.event);
        assert_eq!(
            reencoded.record, record,
            "seq {seq} ({type_name}) re-encodes to the same bytes"
        );
        previous = envelope.hash;
        decoded.push(envelope.event);
    }
    assert_eq!(decoded, v2_events(), "the fixture holds exactly the v2 events");
    let types: std::collections::BTreeSet<&str> = decoded.iter().map(Event::type_name).collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["resource_acquired", "segment_rotated", "usage"]
    );
    // The variant index follows every v1 variant. The body is epoch (varint 1:
    // one byte), ts (above u32::MAX: 0xfd and eight bytes), then the variant.
    for (line, index) in records.lines().zip([20u8, 20, 21, 21, 22]) {
        let record = hex_decode(line.split_once(' ').unwrap().1);
        let body = &record[5 + 32..];
        assert_eq!((body[0], body[1]), (1, 0xfd), "{line}");
        assert_eq!(body[10], index, "{line}");
    }
}

#[test]
#[expect(
    clippy::float_cmp,
    reason = "the values are exact (small integers or copied through unchanged), so exact comparison is the check"
)]
fn v2_events_fold_from_the_fixture() {
    let lines = std::fs::read_to_string(fixture_dir().join("events.jsonl")).unwrap();
    let envelopes: Vec<Envelope> = lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let state = ResumeState::fold(golden_key(), &envelopes);
    assert_eq!(state.usage.input_tokens, 1200);
    assert_eq!(state.usage.cost_usd, 0.0231);
    assert_eq!(state.segment, 2);
    assert_eq!(state.provenance["hermes_session_id"], "h-2");
    assert_eq!(state.resources.len(), 1);
    assert_eq!(state.wall_ms, 4);
    assert!(state.anomalies.is_empty());
}
