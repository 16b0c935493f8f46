//! Format v1 is forever: the committed encoded bytes of one event of every
//! type must decode to the committed envelopes and verify as a chain, in this
//! and every later build. `RUNJOURNAL_WRITE_GOLDEN=1` rewrites the fixture
//! (only ever for a new format version, in a new directory).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use runjournal::core::codec::DEFAULT_MAX_EVENT_SIZE;
use runjournal::core::{ChainReader, ChainWriter, Head};
use runjournal::*;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format_v1")
}

fn golden_key() -> RunKey {
    RunKey::new("golden-goal", 1, "agent-0").unwrap()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn write_fixture() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut writer = ChainWriter::starting(golden_key(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
    let mut records = String::new();
    let mut envelopes = String::new();
    for (seq, event) in (0u64..).zip(common::one_of_every_event()) {
        let ts = 1_763_800_000_000 + seq;
        let written = writer.append(1, ts, event).unwrap();
        let _ = writeln!(
            records,
            "{} {}",
            written.envelope.event.type_name(),
            runjournal::core::hash::to_hex(&written.record)
        );
        envelopes.push_str(&written.envelope.to_json_line());
        envelopes.push('\n');
    }
    std::fs::write(dir.join("events.hex"), records).unwrap();
    std::fs::write(dir.join("events.jsonl"), envelopes).unwrap();
}

#[test]
fn format_v1_fixture_decodes_to_the_expected_envelopes_and_verifies() {
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN").is_some() {
        write_fixture();
    }
    let records = std::fs::read_to_string(fixture_dir().join("events.hex")).unwrap();
    let expected = std::fs::read_to_string(fixture_dir().join("events.jsonl")).unwrap();
    let expected: Vec<Envelope> = expected
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut reader = ChainReader::new(golden_key(), ChainHash::GENESIS, 0);
    let mut seen_types = Vec::new();
    for ((seq, line), expected) in (0u64..).zip(records.lines()).zip(&expected) {
        let (type_name, hex) = line.split_once(' ').unwrap();
        let record = hex_decode(hex);
        assert_eq!(&record[..5], b"RJE\x01\x01", "v1 header of {type_name}");
        let envelope = reader.read(seq, &record).unwrap();
        assert_eq!(envelope, *expected, "seq {seq} ({type_name})");
        assert_eq!(envelope.event.type_name(), type_name);
        seen_types.push(type_name.to_string());
        // This build still writes exactly these bytes.
        let previous = Head {
            next_seq: seq,
            hash: if seq == 0 {
                ChainHash::GENESIS
            } else {
                expected_hash(&records, seq - 1)
            },
            epoch: envelope.epoch,
            last_ts: envelope.ts,
        };
        let reencoded = ChainWriter::new(golden_key(), previous, DEFAULT_MAX_EVENT_SIZE)
            .append(envelope.epoch, envelope.ts, envelope.event.clone())
            .unwrap();
        assert_eq!(
            reencoded.record, record,
            "seq {seq} ({type_name}) re-encodes to the same bytes"
        );
    }
    let all_types: Vec<String> = common::one_of_every_event()
        .iter()
        .map(|event| event.type_name().to_string())
        .collect();
    assert_eq!(seen_types, all_types, "the fixture holds one event of every type");
    assert_eq!(seen_types.len(), 20);
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn expected_hash(records: &str, seq: u64) -> ChainHash {
    let line = records.lines().nth(seq as usize).unwrap();
    let record = hex_decode(line.split_once(' ').unwrap().1);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&record[5..37]);
    ChainHash(hash)
}
