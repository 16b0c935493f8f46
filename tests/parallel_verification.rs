//! A large read verifies its records on several threads (each record
//! against the stored hash of the one before it, the links between parts in
//! order) with exactly the outcome of reading one record at a time: the same
//! envelopes, the first damage named by run and seq, and nothing reported
//! past the point where a visitor stopped.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::ops::ControlFlow;

use common::{key, step, temp_db};
use runjournal::core::chunk;
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

const EVENTS: u64 = 20_000;

fn large_run(path: &std::path::Path) -> RunKey {
    let run_key = key("parallel", 0, "reader");
    let journal = Journal::open(
        path,
        Options {
            snapshot_every: 0,
            ..Options::with_durability(Durability::Buffered)
        },
    )
    .unwrap();
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for batch in 0..EVENTS / 1000 {
        run.append(
            (0..1000)
                .map(|index| Event::Step {
                    messages: step(&format!("{batch}/{index}")),
                })
                .collect(),
        )
        .unwrap();
    }
    drop(run);
    journal.sync().unwrap();
    run_key
}

/// Flips a byte of the record at `seq` inside the chunk that holds it.
fn damage(path: &std::path::Path, run_key: &RunKey, seq: u64) {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let record = runjournal::core::Store::find(&store, run_key).unwrap().unwrap();
    let db = store.sled();
    let (stored_key, value) = db
        .range(layout::event_key(record.id, 0)..=layout::event_key(record.id, seq))
        .next_back()
        .unwrap()
        .unwrap();
    let first = layout::trailing_u64(&stored_key).unwrap();
    assert!(chunk::is_chunk(&value));
    // The offset of seq's record: header, then framed records before it.
    let mut at = chunk::first_frame_offset(&value);
    for record in chunk::records(&value).take(usize::try_from(seq - first).unwrap()) {
        at += chunk::CHUNK_FRAME_LEN + record.len();
    }
    let mut value = value.to_vec();
    let last_of_record = at
        + chunk::CHUNK_FRAME_LEN
        + chunk::records(&value[..])
            .nth(usize::try_from(seq - first).unwrap())
            .unwrap()
            .len()
        - 1;
    value[last_of_record] ^= 0x01;
    db.insert(stored_key, value).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_large_read_verified_in_parallel_is_the_whole_history_in_order() {
    let (_dir, path) = temp_db();
    let run_key = large_run(&path);
    let journal = Journal::open_existing(&path, Options::default()).unwrap();
    let history = journal.history(&run_key).unwrap();
    assert_eq!(history.len() as u64, EVENTS + 1);
    for (seq, envelope) in (0u64..).zip(&history) {
        assert_eq!(envelope.seq, seq);
    }
    assert_eq!(
        history.last().unwrap().hash,
        journal.run_info(&run_key).unwrap().head.hash
    );
    assert_eq!(journal.read(&run_key, 12_345).unwrap()[..], history[12_345..]);
}

#[test]
fn damage_deep_in_a_large_run_is_named_at_its_seq_by_a_parallel_read() {
    let (_dir, path) = temp_db();
    let run_key = large_run(&path);
    damage(&path, &run_key, 15_000);
    let journal = Journal::open_existing(&path, Options::default()).unwrap();
    for error in [
        journal.verify(&run_key).unwrap_err(),
        journal.read(&run_key, 0).unwrap_err(),
    ] {
        let ReadError::Integrity(error) = error else {
            panic!("expected an integrity error, got {error:?}");
        };
        assert_eq!((&error.run, error.seq), (&run_key, 15_000), "{error}");
        assert!(
            matches!(error.problem, IntegrityProblem::HashMismatch { .. }),
            "{error}"
        );
    }
    let mut seen = 0u64;
    journal
        .for_each_event(&run_key, 0, |envelope| {
            seen = envelope.seq;
            if envelope.seq == 14_999 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, 14_999, "a visitor that stops before the damage never sees it");
}

#[test]
fn damage_at_a_batch_boundary_is_named_at_its_seq_after_every_event_before_it() {
    // Batches of 1, 2, 4, … records: seq 8190 ends the batch of 4096 that
    // is visited while the next one (from seq 8191, chained after 8190's
    // stored hash) is already being verified.
    for damaged in [8190, 8191] {
        let (_dir, path) = temp_db();
        let run_key = large_run(&path);
        damage(&path, &run_key, damaged);
        let journal = Journal::open_existing(&path, Options::default()).unwrap();
        let mut visited = 0u64;
        let error = journal
            .for_each_event(&run_key, 0, |envelope| {
                assert_eq!(envelope.seq, visited);
                visited += 1;
                ControlFlow::Continue(())
            })
            .unwrap_err();
        let ReadError::Integrity(error) = error else {
            panic!("expected an integrity error, got {error:?}");
        };
        assert_eq!((&error.run, error.seq), (&run_key, damaged), "{error}");
        assert_eq!(visited, damaged, "every event before the damage is visited, none after");
    }
}
