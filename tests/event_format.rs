//! Every event type round-trips unchanged through its JSON line and through
//! its stored record (same event, epoch, time and chain hash).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, one_of_every_event};
use runjournal::core::codec::{decode_event, DEFAULT_MAX_EVENT_SIZE};
use runjournal::core::ChainWriter;
use runjournal::*;

#[test]
fn every_event_type_round_trips_through_json() {
    for event in one_of_every_event() {
        let envelope = Envelope {
            run: key("g", 1, "a"),
            seq: 9,
            epoch: 2,
            ts: 1_763_800_000_123,
            hash: ChainHash([7; 32]),
            event,
        };
        let line = envelope.to_json_line();
        let parsed: Envelope = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, envelope, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"]["type"], envelope.event.type_name());
        assert_eq!(value["hash"], "07".repeat(32));
    }
}

#[test]
fn every_event_type_round_trips_through_the_stored_format() {
    let mut writer = ChainWriter::starting(key("g", 1, "a"), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
    for (seq, event) in (0u64..).zip(one_of_every_event()) {
        let written = writer.append(3, 1000 + seq, event.clone()).unwrap();
        let decoded = decode_event(&written.record).unwrap();
        assert_eq!(decoded.event, event);
        assert_eq!(
            (decoded.epoch, decoded.ts, decoded.hash),
            (3, 1000 + seq, written.envelope.hash)
        );
    }
}
