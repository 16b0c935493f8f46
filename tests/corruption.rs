//! Damaged stored values in real sled databases are typed errors naming the
//! run and the seq, never a panic and never a silently shorter history.
//!
//! Each test builds a database with `Journal::open`, closes it, damages it
//! through the raw sled tree (`SledStore::sled`) or its files, reopens it and
//! checks that every reading method returns a typed error naming the exact
//! run and seq (or a typed store error) — never a panic, never a silently
//! skipped event, never a default. Every check runs under `catch_unwind` so a
//! panic is reported as such.
//!
//! Stored layout used (see `runjournal_sled::layout`): event values under
//! `0x01 ‖ run id u64 BE ‖ seq u64 BE`, run records under `0x02 ‖ run id`, the
//! key index under `0x03 ‖ canonical key`, snapshots under `0x04 ‖ run ‖ seq`,
//! meta records under `0x00 ‖ name`. Every value starts with the header
//! `"RJ" ‖ kind ‖ format version ‖ codec id`; an event value continues with its
//! 32-byte chain hash and then its body.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use runjournal::core::chunk;
use runjournal::core::codec::{decode_record, encode_record, CodecError, RecordKind};
use runjournal::core::Store;
use runjournal::{
    CompactionSource, Envelope, Event, IntegrityError, IntegrityProblem, Journal, Message, OpenError, Options,
    ReadError, ResumeError, ResumeState, Role, RunFilter, RunKey, RunMeta, RunRecord, StoreError,
};
use runjournal_sled::{layout, OpenMode, SledStore};

// ---------------------------------------------------------------------------
// Fixture.
// ---------------------------------------------------------------------------

fn victim() -> RunKey {
    RunKey::new("corruption", 0, "victim").unwrap()
}

fn bystander() -> RunKey {
    RunKey::new("corruption", 0, "bystander").unwrap()
}

fn step(text: &str) -> Event {
    Event::Step {
        messages: vec![Message::new(Role::Assistant, text)],
    }
}

/// The victim's events after `run_started`: 11 events in 7 batches, seqs 1..=11.
fn victim_batches() -> Vec<Vec<Event>> {
    vec![
        vec![step("look around")],
        vec![
            Event::PhaseStarted {
                index: 0,
                name: "plan".into(),
            },
            step("plan it"),
            Event::PhaseCompleted {
                index: 0,
                name: "plan".into(),
                output: "the plan".into(),
            },
        ],
        vec![Event::CompactionStarted {
            id: Some("c1".into()),
            source: CompactionSource::Structured,
            messages_before: Some(10),
            tokens_before: Some(9000),
        }],
        vec![Event::CompactionDone {
            id: Some("c1".into()),
            source: CompactionSource::Structured,
            summary: Some("we planned".into()),
            messages_after: Some(1),
            tokens_after: Some(100),
        }],
        vec![
            Event::PhaseStarted {
                index: 1,
                name: "build".into(),
            },
            step("build it"),
            step("test it"),
        ],
        vec![Event::Custom {
            kind: "note".into(),
            data: "x".repeat(300),
        }],
        vec![Event::TurnCompleted],
    ]
}

/// A database with the victim (12 events, seqs 0..=11) and a bystander (5 events).
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    victim_events: Vec<Envelope>,
}

fn fixture(options: Options, victim_steps: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let journal = Journal::open(&path, options).unwrap();
    let run = journal.begin(victim(), RunMeta::default()).unwrap();
    for batch in victim_batches() {
        run.append(batch).unwrap();
    }
    for i in 0..victim_steps {
        run.append(vec![step(&format!("extra {i}"))]).unwrap();
    }
    let other = journal.begin(bystander(), RunMeta::default()).unwrap();
    for i in 0..4 {
        other.append(vec![step(&format!("bystander {i}"))]).unwrap();
    }
    let victim_events = journal.read(&victim(), 0).unwrap();
    assert_eq!(victim_events.len(), 12 + victim_steps);
    drop((run, other, journal));
    Fixture {
        _dir: dir,
        path,
        victim_events,
    }
}

fn open(path: &Path) -> Journal {
    Journal::open(path, Options::default()).unwrap()
}

/// Runs `f` on the raw sled tree of a closed database, then flushes and
/// closes it. The victim's chunks and commits are first stored as bare
/// records, one per key (what a multi-key batch stores for a group of one
/// event), with its run record at its head (what the commits carried), so
/// that `f` can damage one seq at a time.
fn raw<T>(path: &Path, f: impl FnOnce(&sled::Db, &RunRecord) -> T) -> T {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let record = store.find(&victim()).unwrap().unwrap();
    unchunk(store.sled(), record.id);
    store
        .sled()
        .insert(layout::run_key(record.id), encode_record(RecordKind::Run, &record))
        .unwrap();
    let out = f(store.sled(), &record);
    store.sled().flush().unwrap();
    out
}

/// Rewrites run `id`'s chunks as bare records under their own seqs.
fn unchunk(db: &sled::Db, id: u64) {
    for entry in db.scan_prefix(layout::run_prefix(layout::EVENT, id)) {
        let (key, value) = entry.unwrap();
        if chunk::is_chunk(&value) {
            let first = layout::trailing_u64(&key).unwrap();
            db.remove(&key).unwrap();
            for (seq, record) in (first..).zip(chunk::records(&value)) {
                db.insert(layout::event_key(id, seq), record).unwrap();
            }
        }
    }
}

/// Rewrites the victim's chunk holding `seq` (it must be stored in one) with `damage`.
fn damage_chunk(path: &Path, seq: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let record = store.find(&victim()).unwrap().unwrap();
    let db = store.sled();
    let (key, value) = db
        .range(layout::event_key(record.id, 0)..=layout::event_key(record.id, seq))
        .next_back()
        .unwrap()
        .unwrap();
    assert!(chunk::is_chunk(&value), "seq {seq} is stored in a chunk");
    let mut value = value.to_vec();
    damage(&mut value);
    db.insert(key, value).unwrap();
    db.flush().unwrap();
}

/// The run id the key index gives `key`, read raw.
fn run_id_of(db: &sled::Db, key: &RunKey) -> u64 {
    let value = db.get(layout::key_index_key(key)).unwrap().unwrap();
    u64::from_be_bytes(value.as_ref().try_into().unwrap())
}

/// Rewrites the victim's stored event `seq` with `damage`.
fn damage_event(path: &Path, seq: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    raw(path, |db, record| {
        let key = layout::event_key(record.id, seq);
        let mut value = db.get(key).unwrap().unwrap().to_vec();
        damage(&mut value);
        db.insert(key, value).unwrap();
    });
}

/// Fails the test with a clear message if `f` panics.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(std::string::ToString::to_string))
                .unwrap_or_default();
            panic!("{what}: panicked: {message}")
        }
    }
}

fn integrity(error: ReadError, method: &str) -> IntegrityError {
    match error {
        ReadError::Integrity(error) => *error,
        other => panic!("{method}: expected ReadError::Integrity, got {other:?}"),
    }
}

/// Opens the damaged database and checks that `verify`, `read`, `history`,
/// `state`, `recoverable` and `resume` all report an integrity error at
/// exactly (victim, `seq`) whose problem passes `problem`; that nothing before
/// `seq` is affected (`state_at(seq - 1)`), that a failed resume wrote nothing,
/// and that the bystander run still verifies.
fn expect_integrity(path: &Path, seq: u64, problem: impl Fn(&IntegrityProblem) -> bool) -> IntegrityError {
    no_panic("reading a corrupt run", || {
        let journal = open(path);
        let key = victim();
        let mut errors = vec![
            ("verify", journal.verify(&key).unwrap_err()),
            ("read", journal.read(&key, 0).unwrap_err()),
            ("read from the end", journal.read(&key, 11).unwrap_err()),
            ("history", journal.history(&key).unwrap_err()),
            ("state", journal.state(&key).unwrap_err()),
            ("recoverable", journal.recoverable().unwrap_err()),
        ];
        let head_before = journal.run_info(&key).unwrap().head;
        match journal.resume(&key) {
            Err(ResumeError::Read(error)) => errors.push(("resume", error)),
            other => panic!("resume: expected ResumeError::Read, got {other:?}"),
        }
        assert_eq!(
            journal.run_info(&key).unwrap().head,
            head_before,
            "a failed resume wrote nothing"
        );
        let mut first = None;
        for (method, error) in errors {
            let text = error.to_string();
            let error = integrity(error, method);
            assert_eq!(error.run, key, "{method}: {error}");
            assert_eq!(error.seq, seq, "{method}: {error}");
            assert!(
                problem(&error.problem),
                "{method}: unexpected problem {:?}",
                error.problem
            );
            assert!(text.contains(&format!("seq {seq}")), "{method}: {text}");
            assert!(text.contains("\"victim\""), "{method}: {text}");
            first.get_or_insert(error);
        }
        if seq > 0 {
            journal.state_at(&key, seq - 1).unwrap();
        }
        journal.verify(&bystander()).unwrap();
        first.unwrap()
    })
}

// ---------------------------------------------------------------------------
// Damaged event values.
// ---------------------------------------------------------------------------

#[test]
fn a_flipped_byte_in_an_event_body_is_a_hash_mismatch_at_that_seq() {
    let fixture = fixture(Options::default(), 0);
    damage_event(&fixture.path, 5, |value| {
        let last = value.len() - 1;
        value[last] ^= 0x01;
    });
    let error = expect_integrity(&fixture.path, 5, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
    eprintln!("{error}");
}

#[test]
fn a_flipped_byte_in_a_chunked_event_is_a_hash_mismatch_at_that_seq() {
    // The victim's batch of seqs 2..=4 is one chunk; seq 3's last byte is
    // the last byte before seq 4's length.
    let fixture = fixture(Options::default(), 0);
    let last_len = fixture_record_len(&fixture.path, 4);
    damage_chunk(&fixture.path, 3, |value| {
        let at = value.len() - last_len - chunk::CHUNK_FRAME_LEN - 1;
        value[at] ^= 0x01;
    });
    expect_integrity(&fixture.path, 3, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
}

#[test]
fn a_damaged_chunk_length_is_an_integrity_error_at_that_seq() {
    // Seq 3's length in the chunk of seqs 2..=4 claims more than the chunk
    // holds: seq 3 is the rest of the chunk from that length on, not a record.
    let fixture = fixture(Options::default(), 0);
    let first_len = fixture_record_len(&fixture.path, 2);
    damage_chunk(&fixture.path, 3, |value| {
        let at = chunk::first_frame_offset(value) + chunk::CHUNK_FRAME_LEN + first_len;
        value[at] = 0x7f;
    });
    expect_integrity(&fixture.path, 3, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::BadMagic { found: [0x7f, 0] })
    });
}

/// The length of the victim's stored record at `seq`.
fn fixture_record_len(path: &Path, seq: u64) -> usize {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let record = store.find(&victim()).unwrap().unwrap();
    let mut len = 0;
    store
        .scan(record.id, seq, seq + 1, &mut |_, bytes| {
            len = bytes.len();
            runjournal::core::ScanControl::Stop
        })
        .unwrap();
    len
}

#[test]
fn a_flipped_byte_in_an_event_hash_is_a_hash_mismatch_at_that_seq() {
    let fixture = fixture(Options::default(), 0);
    damage_event(&fixture.path, 3, |value| value[20] ^= 0x80);
    expect_integrity(&fixture.path, 3, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
}

#[test]
fn a_flipped_byte_in_an_event_header_is_undecodable() {
    let fixture = fixture(Options::default(), 0);
    damage_event(&fixture.path, 0, |value| value[0] = b'X');
    expect_integrity(&fixture.path, 0, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::BadMagic { found: [b'X', b'J'] })
    });
    damage_event(&fixture.path, 0, |value| {
        value[0] = b'R';
        value[2] = b'S';
    });
    expect_integrity(&fixture.path, 0, |problem| {
        matches!(
            problem,
            IntegrityProblem::Undecodable(CodecError::WrongKind { found: b'S', .. })
        )
    });
}

#[test]
fn a_changed_format_version_byte_is_an_unknown_version() {
    let fixture = fixture(Options::default(), 0);
    damage_event(&fixture.path, 7, |value| value[3] = 9);
    let error = expect_integrity(&fixture.path, 7, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::UnknownVersion { found: 9 })
    });
    assert!(error.to_string().contains("unknown format version 9"), "{error}");
}

#[test]
fn a_changed_codec_byte_is_an_unknown_codec() {
    let fixture = fixture(Options::default(), 0);
    damage_event(&fixture.path, 11, |value| value[4] = 7);
    let error = expect_integrity(&fixture.path, 11, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::UnknownCodec { found: 7 })
    });
    assert!(error.to_string().contains("unknown codec id 7"), "{error}");
}

#[test]
fn a_truncated_event_value_is_refused() {
    let fixture = fixture(Options::default(), 0);
    // Shorter than header + hash: undecodable.
    damage_event(&fixture.path, 4, |value| value.truncate(20));
    expect_integrity(&fixture.path, 4, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::Truncated { len: 20, needed: 37 })
    });
    // Empty.
    damage_event(&fixture.path, 4, std::vec::Vec::clear);
    expect_integrity(&fixture.path, 4, |problem| {
        *problem == IntegrityProblem::Undecodable(CodecError::Truncated { len: 0, needed: 37 })
    });
    // One byte short of the whole body: the hash no longer matches.
    let fixture = self::fixture(Options::default(), 0);
    damage_event(&fixture.path, 9, |value| {
        value.pop();
    });
    expect_integrity(&fixture.path, 9, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
}

#[test]
fn an_event_removed_from_the_middle_is_missing() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        db.remove(layout::event_key(record.id, 6)).unwrap()
    });
    let error = expect_integrity(&fixture.path, 6, |problem| {
        matches!(problem, IntegrityProblem::Gap { found: 7 })
    });
    eprintln!("{error}");
}

#[test]
fn the_last_event_removed_is_missing() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        db.remove(layout::event_key(record.id, 11)).unwrap()
    });
    let error = expect_integrity(&fixture.path, 11, |problem| {
        *problem == IntegrityProblem::Missing { next_seq: 12 }
    });
    assert!(error.to_string().contains("12 events"), "{error}");
}

#[test]
fn two_swapped_events_are_a_hash_mismatch_at_the_first() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        let (a, b) = (layout::event_key(record.id, 4), layout::event_key(record.id, 8));
        let value_a = db.get(a).unwrap().unwrap();
        let value_b = db.get(b).unwrap().unwrap();
        db.insert(a, value_b).unwrap();
        db.insert(b, value_a).unwrap();
    });
    expect_integrity(&fixture.path, 4, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
}

#[test]
fn an_event_of_another_run_is_a_hash_mismatch() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        let other = run_id_of(db, &bystander());
        let value = db.get(layout::event_key(other, 2)).unwrap().unwrap();
        db.insert(layout::event_key(record.id, 2), value).unwrap();
    });
    expect_integrity(&fixture.path, 2, |problem| {
        matches!(problem, IntegrityProblem::HashMismatch { .. })
    });
}

#[test]
fn a_rewritten_and_rechained_tail_still_fails_at_the_head() {
    // Someone rewrites seq 10 and re-chains seqs 10 and 11 so that every
    // stored hash is self-consistent: the run's head hash still catches it.
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        use runjournal::core::codec::{decode_event, DEFAULT_MAX_EVENT_SIZE};
        use runjournal::core::{ChainWriter, Head};
        let previous = Head {
            next_seq: 10,
            hash: fixture.victim_events[9].hash,
            epoch: fixture.victim_events[9].epoch,
            last_ts: fixture.victim_events[9].ts,
        };
        let mut writer = ChainWriter::new(victim(), previous, DEFAULT_MAX_EVENT_SIZE);
        for seq in 10..12u64 {
            let old = decode_event(&db.get(layout::event_key(record.id, seq)).unwrap().unwrap()).unwrap();
            let event = if seq == 10 { step("forged") } else { old.event };
            let written = writer.append(old.epoch, old.ts, event).unwrap();
            db.insert(layout::event_key(record.id, seq), written.record).unwrap();
        }
    });
    let error = expect_integrity(&fixture.path, 11, |problem| {
        matches!(problem, IntegrityProblem::HeadMismatch { .. })
    });
    eprintln!("{error}");
}

#[test]
fn a_value_beyond_the_head_that_is_not_a_commit_is_reported() {
    // Every stored value of a run lies below its head, or is a commit (store
    // format 3) carrying the head past it. Anything else past the head is
    // damage (a commit whose leading bytes changed, say): taking the stored
    // head would hide it, so every read of the run names it.
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        db.insert(layout::event_key(record.id, 12), &b"garbage"[..]).unwrap()
    });
    no_panic("reading past the head", || {
        let journal = open(&fixture.path);
        for (method, error) in [
            ("read", journal.read(&victim(), 0).unwrap_err()),
            ("verify", journal.verify(&victim()).unwrap_err()),
        ] {
            let detail = expect_store_corrupt(error, method);
            assert!(
                detail.contains("at seq 12") && detail.contains("past the run's head"),
                "{method}: {detail}"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Damaged run records, key index and meta records.
// ---------------------------------------------------------------------------

fn expect_store_corrupt(error: ReadError, method: &str) -> String {
    match error {
        ReadError::Store(StoreError::Corrupt { detail }) => detail,
        other => panic!("{method}: expected ReadError::Store(StoreError::Corrupt), got {other:?}"),
    }
}

/// Every method that looks the victim up reports `StoreError::Corrupt`.
fn expect_victim_corrupt(path: &Path, detail_contains: &str) {
    no_panic("reading a corrupt run record", || {
        let journal = open(path);
        let key = victim();
        let mut errors = vec![
            ("run_info", journal.run_info(&key).unwrap_err()),
            ("verify", journal.verify(&key).unwrap_err()),
            ("read", journal.read(&key, 0).unwrap_err()),
            ("state", journal.state(&key).unwrap_err()),
            ("runs", journal.runs(&RunFilter::default()).unwrap_err()),
            ("recoverable", journal.recoverable().unwrap_err()),
        ];
        match journal.resume(&key) {
            Err(ResumeError::Read(error)) => errors.push(("resume", error)),
            other => panic!("resume: expected ResumeError::Read, got {other:?}"),
        }
        for (method, error) in errors {
            let text = error.to_string();
            let detail = expect_store_corrupt(error, method);
            assert!(detail.contains(detail_contains), "{method}: {detail}");
            assert!(text.starts_with("database corrupt: "), "{method}: {text}");
        }
        journal.verify(&bystander()).unwrap();
    });
}

#[test]
fn a_corrupt_run_record_is_database_corrupt() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        let key = layout::run_key(record.id);
        let mut value = db.get(key).unwrap().unwrap().to_vec();
        value.truncate(value.len() / 2);
        db.insert(key, value).unwrap();
    });
    expect_victim_corrupt(&fixture.path, "run record");
    // A wrong version byte in the run record.
    let fixture = self::fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        let key = layout::run_key(record.id);
        let mut value = db.get(key).unwrap().unwrap().to_vec();
        value[3] = 2;
        db.insert(key, value).unwrap();
    });
    expect_victim_corrupt(&fixture.path, "unknown format version 2");
}

#[test]
fn a_run_record_whose_head_claims_more_events_is_missing_events() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, record| {
        let mut changed = record.clone();
        changed.head.next_seq += 3;
        db.insert(layout::run_key(record.id), encode_record(RecordKind::Run, &changed))
            .unwrap();
    });
    let error = expect_integrity(&fixture.path, 12, |problem| {
        *problem == IntegrityProblem::Missing { next_seq: 15 }
    });
    eprintln!("{error}");
}

#[test]
fn a_run_record_with_another_key_breaks_the_chain_at_seq_0() {
    // The chain hashes the key: a record renamed to another key cannot pass.
    let fixture = fixture(Options::default(), 0);
    let renamed = RunKey::new("corruption", 0, "renamed").unwrap();
    raw(&fixture.path, |db, record| {
        let mut changed = record.clone();
        changed.key = renamed.clone();
        db.insert(layout::run_key(record.id), encode_record(RecordKind::Run, &changed))
            .unwrap();
        db.insert(layout::key_index_key(&renamed), &record.id.to_be_bytes()[..])
            .unwrap();
        db.remove(layout::key_index_key(&victim())).unwrap();
    });
    no_panic("reading a renamed run", || {
        let journal = open(&fixture.path);
        let error = integrity(journal.verify(&renamed).unwrap_err(), "verify");
        assert_eq!((error.run, error.seq), (renamed.clone(), 0));
        assert!(matches!(error.problem, IntegrityProblem::HashMismatch { .. }));
        match journal.resume(&renamed) {
            Err(ResumeError::Read(ReadError::Integrity(error))) => assert_eq!(error.seq, 0),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_corrupt_key_index_entry_is_database_corrupt() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        db.insert(layout::key_index_key(&victim()), &[1u8, 2, 3][..]).unwrap()
    });
    expect_victim_corrupt(&fixture.path, "key index entry is 3 bytes, not 8");
}

#[test]
fn a_key_index_entry_naming_a_missing_run_is_database_corrupt() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        db.insert(layout::key_index_key(&victim()), &999u64.to_be_bytes()[..])
            .unwrap()
    });
    expect_victim_corrupt(&fixture.path, "no run record");
}

#[test]
fn a_key_index_entry_naming_another_run_is_database_corrupt() {
    // Without the check the victim's key would silently resolve to the
    // bystander's run, and resume would attach to the wrong run.
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        let other = run_id_of(db, &bystander());
        db.insert(layout::key_index_key(&victim()), &other.to_be_bytes()[..])
            .unwrap()
    });
    no_panic("a key index entry naming another run", || {
        let journal = open(&fixture.path);
        for (method, error) in [
            ("run_info", journal.run_info(&victim()).unwrap_err()),
            ("verify", journal.verify(&victim()).unwrap_err()),
            ("runs", journal.runs(&RunFilter::default()).unwrap_err()),
        ] {
            let detail = expect_store_corrupt(error, method);
            assert!(detail.contains("key index"), "{method}: {detail}");
        }
        match journal.resume(&victim()) {
            Err(ResumeError::Read(ReadError::Store(StoreError::Corrupt { .. }))) => {}
            other => panic!("resume: {other:?}"),
        }
    });
}

fn expect_open_corrupt(path: &Path, detail_contains: &str) {
    no_panic("opening a database with a corrupt meta record", || {
        for error in [
            Journal::open(path, Options::default()).unwrap_err(),
            Journal::open_existing(path, Options::default()).unwrap_err(),
        ] {
            match &error {
                OpenError::Store(StoreError::Corrupt { detail }) => {
                    assert!(detail.contains(detail_contains), "{detail}");
                }
                other => panic!("expected OpenError::Store(Corrupt), got {other:?}"),
            }
            eprintln!("{error}");
        }
    });
}

#[test]
fn a_changed_database_format_is_refused_at_open() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        db.insert(
            layout::format_key(),
            encode_record(RecordKind::Meta, &(runjournal_sled::STORE_FORMAT + 1)),
        )
        .unwrap()
    });
    no_panic("opening a database of another format version", || {
        for error in [
            Journal::open(&fixture.path, Options::default()).unwrap_err(),
            Journal::open_existing(&fixture.path, Options::default()).unwrap_err(),
        ] {
            assert!(
                matches!(
                    &error,
                    OpenError::Store(StoreError::UnsupportedFormat {
                        found,
                        supported: runjournal_sled::STORE_FORMAT,
                        ..
                    }) if *found == runjournal_sled::STORE_FORMAT + 1
                ),
                "{error:?}"
            );
            assert!(
                error.to_string().contains(&format!(
                    "has format version {}; this build reads version {}",
                    runjournal_sled::STORE_FORMAT + 1,
                    runjournal_sled::STORE_FORMAT
                )),
                "{error}"
            );
        }
    });
}

#[test]
fn a_changed_format_record_header_is_refused_at_open() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        let mut value = db.get(layout::format_key()).unwrap().unwrap().to_vec();
        value[3] = 5;
        db.insert(layout::format_key(), value).unwrap();
    });
    expect_open_corrupt(&fixture.path, "format record: unknown format version 5");
    raw_without_victim(&fixture.path, |db| {
        let mut value = db.get(layout::format_key()).unwrap().unwrap().to_vec();
        value[3] = 1;
        value[4] = 4;
        db.insert(layout::format_key(), value).unwrap();
    });
    expect_open_corrupt(&fixture.path, "format record: unknown codec id 4");
}

#[test]
fn a_corrupt_next_run_id_record_is_refused_at_open() {
    let fixture = fixture(Options::default(), 0);
    raw(&fixture.path, |db, _| {
        db.insert(layout::next_run_id_key(), &b"RJM"[..]).unwrap()
    });
    expect_open_corrupt(&fixture.path, "next run id record");
}

/// Like [`raw`] for a database that `SledStore::open` refuses.
fn raw_without_victim(path: &Path, f: impl FnOnce(&sled::Db)) {
    let db = sled::open(path).unwrap();
    f(&db);
    db.flush().unwrap();
}

// ---------------------------------------------------------------------------
// Snapshots.
// ---------------------------------------------------------------------------

fn snapshot_options() -> Options {
    Options {
        snapshot_every: 10,
        ..Options::default()
    }
}

fn snapshot_seqs(path: &Path) -> Vec<u64> {
    raw(path, |db, record| {
        let snapshots = db.open_tree(layout::SNAPSHOT_TREE).unwrap();
        snapshots
            .scan_prefix(layout::run_prefix(layout::SNAPSHOT, record.id))
            .map(|entry| layout::trailing_u64(&entry.unwrap().0).unwrap())
            .collect()
    })
}

fn full_fold(journal: &Journal, key: &RunKey) -> ResumeState {
    ResumeState::fold(key.clone(), &journal.read(key, 0).unwrap())
}

#[test]
fn a_corrupt_snapshot_fails_resume_loudly_and_rebuild_snapshots_fixes_it() {
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "flipped byte",
            Box::new(|value: &mut Vec<u8>| {
                let middle = value.len() / 2;
                value[middle] ^= 0xff;
            }),
        ),
        (
            "truncated",
            Box::new(|value: &mut Vec<u8>| value.truncate(value.len() - 7)),
        ),
        ("version byte", Box::new(|value: &mut Vec<u8>| value[3] = 3)),
        ("codec byte", Box::new(|value: &mut Vec<u8>| value[4] = 3)),
        ("emptied", Box::new(|value: &mut Vec<u8>| value.clear())),
    ];
    for (name, damage) in damages {
        let fixture = fixture(snapshot_options(), 14);
        let snapshots = snapshot_seqs(&fixture.path);
        assert_eq!(
            snapshots.len(),
            1,
            "a run keeps only its newest snapshot: {snapshots:?}"
        );
        let latest = *snapshots.last().unwrap();
        raw(&fixture.path, |db, record| {
            let snapshots = db.open_tree(layout::SNAPSHOT_TREE).unwrap();
            let key = layout::snapshot_key(record.id, latest);
            let mut value = snapshots.get(key).unwrap().unwrap().to_vec();
            damage(&mut value);
            snapshots.insert(key, value).unwrap();
        });
        no_panic(name, || {
            let journal = Journal::open(&fixture.path, snapshot_options()).unwrap();
            let key = victim();
            let error = match journal.resume(&key) {
                Err(ResumeError::Read(error)) => error,
                other => panic!("{name}: resume: expected ResumeError::Read, got {other:?}"),
            };
            let text = error.to_string();
            match &error {
                ReadError::SnapshotCorrupt { run, seq, .. } => assert_eq!((run, *seq), (&key, latest)),
                other => panic!("{name}: expected SnapshotCorrupt, got {other:?}"),
            }
            assert!(text.contains(&format!("snapshot at seq {latest} is corrupt")), "{text}");
            assert!(text.contains("rebuild_snapshots"), "{text}");
            assert!(text.contains("\"victim\""), "{text}");
            assert!(matches!(
                journal.state(&key).unwrap_err(),
                ReadError::SnapshotCorrupt { seq, .. } if seq == latest
            ));
            // The log itself is intact: verify and read do not use snapshots.
            journal.verify(&key).unwrap();
            assert_eq!(journal.read(&key, 0).unwrap(), fixture.victim_events);
            // Older states fold from the start, past the damaged snapshot.
            assert_eq!(journal.state_at(&key, latest - 1).unwrap().last_seq, Some(latest - 1));

            journal.rebuild_snapshots(&key).unwrap();
            assert_eq!(journal.state(&key).unwrap(), full_fold(&journal, &key));
            let (run, state) = journal.resume(&key).unwrap();
            assert_eq!(state.iteration, full_fold(&journal, &key).iteration);
            run.append(vec![step("after the rebuild")]).unwrap();
            drop(run);
            assert_eq!(journal.state(&key).unwrap(), full_fold(&journal, &key));
            if name == "flipped byte" {
                eprintln!("{text}");
            }
        });
    }
}

#[test]
fn a_corrupt_event_after_the_snapshot_fails_resume() {
    let fixture = fixture(snapshot_options(), 14);
    let latest = *snapshot_seqs(&fixture.path).last().unwrap();
    let total = fixture.victim_events.len() as u64;
    assert!(latest + 2 < total, "the snapshot {latest} leaves a tail of {total}");
    let bad = latest + 1;
    damage_event(&fixture.path, bad, |value| value[40] ^= 1);
    no_panic("a corrupt tail after a snapshot", || {
        let journal = Journal::open(&fixture.path, snapshot_options()).unwrap();
        for (method, error) in [
            ("state", journal.state(&victim()).unwrap_err()),
            ("verify", journal.verify(&victim()).unwrap_err()),
        ] {
            let error = integrity(error, method);
            assert_eq!(error.seq, bad, "{method}");
        }
        match journal.resume(&victim()) {
            Err(ResumeError::Read(ReadError::Integrity(error))) => assert_eq!(error.seq, bad),
            other => panic!("resume: {other:?}"),
        }
    });
}

#[test]
fn a_corrupt_event_before_the_snapshot_is_found_by_verify_and_read() {
    // `state` and `resume` fold from the newest checksummed snapshot and
    // verify only the tail after it (that is what snapshots are for), so an
    // event damaged before the snapshot is found by `verify` and `read` (and
    // by `runjournal verify`), which always walk the whole chain.
    let fixture = fixture(snapshot_options(), 14);
    let first_snapshot = snapshot_seqs(&fixture.path)[0];
    damage_event(&fixture.path, 2, |value| value[40] ^= 1);
    no_panic("a corrupt event before a snapshot", || {
        let journal = Journal::open(&fixture.path, snapshot_options()).unwrap();
        for (method, error) in [
            ("verify", journal.verify(&victim()).unwrap_err()),
            ("read", journal.read(&victim(), first_snapshot + 1).unwrap_err()),
            ("history", journal.history(&victim()).unwrap_err()),
        ] {
            let error = integrity(error, method);
            assert_eq!(error.seq, 2, "{method}");
        }
        let state = journal.state(&victim());
        eprintln!(
            "state() with an event damaged before its snapshot: {}",
            match &state {
                Ok(_) => "Ok (served from the snapshot)".to_string(),
                Err(error) => error.to_string(),
            }
        );
    });
}

// ---------------------------------------------------------------------------
// Damage to sled's own files.
// ---------------------------------------------------------------------------

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn file_named(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_name().unwrap().to_string_lossy().starts_with(prefix))
}

fn overwrite(file: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.seek(SeekFrom::Start(offset)).unwrap();
    handle.write_all(bytes).unwrap();
}

/// What opening and reading a damaged database gave.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Outcome {
    /// `Journal::open` returned an error.
    OpenError,
    /// It opened; a read of some run returned an error.
    ReadError,
    /// Every run verified and every event is the original one, all there.
    Intact,
    /// Every run verified, each an unchanged prefix of the original, but
    /// runs or events are gone without any error (sled dropped the log tail).
    SilentPrefix,
}

/// Opens the damaged copy and reads everything, checking that whatever is
/// returned without an error is original data.
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn read_damaged(path: &Path, original: &[(RunKey, Vec<Envelope>)]) -> (Outcome, String) {
    let journal = match Journal::open(path, Options::default()) {
        Ok(journal) => journal,
        Err(error) => return (Outcome::OpenError, error.to_string()),
    };
    let runs = match journal.runs(&RunFilter::default()) {
        Ok(runs) => runs,
        Err(error) => return (Outcome::ReadError, error.to_string()),
    };
    let mut complete = runs.len() == original.len();
    for record in &runs {
        let events = match journal.read(&record.key, 0) {
            Ok(events) => events,
            Err(error) => return (Outcome::ReadError, error.to_string()),
        };
        let (_, expected) = original
            .iter()
            .find(|(key, _)| *key == record.key)
            .unwrap_or_else(|| panic!("run {} appeared from nowhere", record.key));
        assert!(
            events.len() <= expected.len() && events[..] == expected[..events.len()],
            "run {}: events read without an error differ from the ones written",
            record.key
        );
        if let Err(error) = journal.state(&record.key) {
            return (Outcome::ReadError, error.to_string());
        }
        complete &= events.len() == expected.len();
    }
    if complete {
        (Outcome::Intact, format!("{} runs", runs.len()))
    } else {
        let events: usize = runs.iter().map(|record| record.head.next_seq as usize).sum();
        let total: usize = original.iter().map(|(_, events)| events.len()).sum();
        (
            Outcome::SilentPrefix,
            format!(
                "{} of {} runs, {events} of {total} events, no error",
                runs.len(),
                original.len()
            ),
        )
    }
}

/// A database of six runs, closed cleanly; with `reopen`, opened and closed
/// once more (sled then also has a snapshot file of its page table).
fn sled_base(reopen: bool) -> (tempfile::TempDir, Vec<(RunKey, Vec<Envelope>)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let journal = Journal::open(&path, Options::default()).unwrap();
    for agent in 0..6 {
        let key = RunKey::new("sled-damage", 0, format!("agent-{agent}")).unwrap();
        let run = journal.begin(key, RunMeta::default()).unwrap();
        for i in 0..40 {
            let data = "d".repeat(10 * i);
            run.append(vec![Event::Custom { kind: "k".into(), data }, step("s")])
                .unwrap();
        }
    }
    let original = journal
        .runs(&RunFilter::default())
        .unwrap()
        .into_iter()
        .map(|record| {
            let events = journal.read(&record.key, 0).unwrap();
            (record.key, events)
        })
        .collect();
    drop(journal);
    if reopen {
        drop(open(&path));
    }
    (dir, original)
}

#[test]
#[expect(
    clippy::items_after_statements,
    reason = "the helper type is declared next to the only code that uses it"
)]
fn damage_to_sled_files_is_an_error_or_original_data_never_a_panic() {
    count_panics();
    let mut table = Vec::new();
    for reopen in [false, true] {
        let (base, original) = sled_base(reopen);
        let base_path = base.path().join("db");
        let size = std::fs::metadata(base_path.join("db")).unwrap().len();
        type Damage = Box<dyn Fn(&Path)>;
        let mut damages: Vec<(String, Damage)> = Vec::new();
        for fraction in [0, 1, 2, 4, 8, 12, 15] {
            let offset = (size * fraction / 16).max(u64::from(fraction != 0));
            damages.push((
                format!("64 bytes overwritten at {offset} of db"),
                Box::new(move |path: &Path| overwrite(&path.join("db"), offset, &[0xa5; 64])),
            ));
        }
        for fraction in [0, 1, 8, 15] {
            let len = size * fraction / 16;
            damages.push((
                format!("db truncated to {len} bytes"),
                Box::new(move |path: &Path| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(path.join("db"))
                        .unwrap()
                        .set_len(len)
                        .unwrap();
                }),
            ));
        }
        damages.push((
            "conf overwritten".into(),
            Box::new(|path: &Path| overwrite(&path.join("conf"), 10, b"ZZZZ")),
        ));
        damages.push((
            "conf deleted".into(),
            Box::new(|path: &Path| std::fs::remove_file(path.join("conf")).unwrap()),
        ));
        if file_named(&base_path, "snap.").is_some() {
            damages.push((
                "snapshot file overwritten".into(),
                Box::new(|path: &Path| overwrite(&file_named(path, "snap.").unwrap(), 8, b"ZZZZ")),
            ));
            damages.push((
                "snapshot file deleted".into(),
                Box::new(|path: &Path| std::fs::remove_file(file_named(path, "snap.").unwrap()).unwrap()),
            ));
        }
        for (name, damage) in damages {
            let copy = tempfile::tempdir().unwrap();
            let path = copy.path().join("db");
            common::copy_dir(&base_path, &path);
            damage(&path);
            let (outcome, detail) = no_panic(&name, || read_damaged(&path, &original));
            let base_name = if reopen { "reopened" } else { "written once" };
            table.push((base_name, name, outcome, detail));
        }
    }
    for (base, name, outcome, detail) in &table {
        let line = format!("sled damage [{base}] {name}: {outcome:?}: {detail}");
        eprintln!("{line}");
        println!("{line}");
    }
    let silent = table
        .iter()
        .filter(|(_, _, outcome, _)| *outcome == Outcome::SilentPrefix)
        .count();
    let line = format!(
        "sled damage: {} cases, {} open errors, {} read errors, {} intact, {} silently lost a log tail",
        table.len(),
        table.iter().filter(|row| row.2 == Outcome::OpenError).count(),
        table.iter().filter(|row| row.2 == Outcome::ReadError).count(),
        table.iter().filter(|row| row.2 == Outcome::Intact).count(),
        silent
    );
    eprintln!("{line}");
    println!("{line}");
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a panic happened (maybe on a sled thread)"
    );
}

#[test]
fn decode_record_never_panics_on_arbitrary_bytes() {
    // The run, snapshot and meta decoders on every prefix and every single
    // byte flip of a real run record.
    let fixture = fixture(Options::default(), 0);
    let value = raw(&fixture.path, |db, record| {
        db.get(layout::run_key(record.id)).unwrap().unwrap().to_vec()
    });
    no_panic("decoding damaged run records", || {
        for len in 0..value.len() {
            assert!(decode_record::<RunRecord>(RecordKind::Run, &value[..len]).is_err());
        }
        for index in 0..value.len() {
            for bit in 0..8 {
                let mut damaged = value.clone();
                damaged[index] ^= 1 << bit;
                let _ = decode_record::<RunRecord>(RecordKind::Run, &damaged);
            }
        }
    });
}
