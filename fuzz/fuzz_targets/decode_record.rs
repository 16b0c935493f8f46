//! Fuzzes the stored-format decoder: arbitrary bytes as an event record, a run
//! record, a snapshot, and through the verifying chain reader. Nothing may
//! panic or allocate beyond the decoder's limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runjournal_core::codec::{decode_event, decode_record, RecordKind};
use runjournal_core::snapshot::decode_snapshot;
use runjournal_core::{ChainHash, ChainReader, RunKey, RunRecord};

fuzz_target!(|bytes: &[u8]| {
    let _ = decode_event(bytes);
    let _ = decode_record::<RunRecord>(RecordKind::Run, bytes);
    let _ = decode_snapshot(bytes);
    let key = RunKey {
        goal: "fuzz".into(),
        episode: 0,
        agent: "agent".into(),
    };
    let _ = ChainReader::new(key, ChainHash::GENESIS, 0).read(0, bytes);
});
