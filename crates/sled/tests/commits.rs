//! Store format 3: an append group of one run is one commit, a single sled
//! `insert` whose value holds the events, the run's record and the store's
//! counters after it; the stored run record and meta records are rewritten
//! only by multi-key batches. The run's true head is the newer of the two,
//! and the loss guard checks the counters through the commit it names.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::path::Path;

use runjournal_core::codec::{decode_record, RecordKind};
use runjournal_core::testing::conformance::{after, batch, create, key, new_run};
use runjournal_core::{chunk, RunRecord, SnapshotRecord, Store};
use runjournal_sled::commit::decode_header;
use runjournal_sled::guard::read_guard;
use runjournal_sled::{files, layout, OpenMode, SledStore};

fn open(path: &Path) -> SledStore {
    SledStore::open(path, OpenMode::CreateIfMissing).unwrap()
}

fn raw(store: &SledStore, key: &[u8]) -> Option<Vec<u8>> {
    store.sled().get(key).unwrap().map(|value| value.to_vec())
}

fn counter(store: &SledStore, key: &[u8]) -> u64 {
    decode_record(RecordKind::Meta, &raw(store, key).unwrap()).unwrap()
}

fn stored_record(store: &SledStore, id: u64) -> RunRecord {
    decode_record(RecordKind::Run, &raw(store, &layout::run_key(id)).unwrap()).unwrap()
}

/// Appends `events` events to `record`'s run as one call; returns the record after.
fn append(store: &SledStore, record: &RunRecord, events: usize) -> RunRecord {
    let append = batch(record, record.head.next_seq, 0, events);
    assert_eq!(store.append(std::slice::from_ref(&append)).unwrap(), vec![Ok(())]);
    after(record, &append)
}

#[test]
fn an_append_of_one_run_is_one_commit_and_rewrites_no_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let record = create(&store, &new_run(&key("one", 0)));
    let run_record = raw(&store, &layout::run_key(record.id));
    let (appended, writes) = (
        counter(&store, &layout::appended_key()),
        counter(&store, &layout::writes_key()),
    );
    let one = append(&store, &record, 1);
    let three = append(&store, &one, 3);

    assert_eq!(
        raw(&store, &layout::run_key(record.id)),
        run_record,
        "the run record is not rewritten"
    );
    assert_eq!(
        counter(&store, &layout::appended_key()),
        appended,
        "nor the appended record"
    );
    assert_eq!(counter(&store, &layout::writes_key()), writes, "nor the writes record");
    for (seq, expected, count) in [(1, &one, 1), (2, &three, 3)] {
        let value = raw(&store, &layout::event_key(record.id, seq)).unwrap();
        assert!(chunk::is_commit(&value), "seq {seq} is stored as a commit");
        assert_eq!(chunk::declared_count(&value), count);
        let header = decode_header(chunk::commit_header(&value).unwrap()).unwrap();
        assert_eq!(&header.record, expected, "the commit holds the run's record after it");
        assert_eq!(header.events, appended + count + u64::from(seq == 2));
        assert_eq!(header.writes, writes + seq);
    }
    assert_eq!(store.run(record.id).unwrap().unwrap(), three);
}

#[test]
fn a_reopened_store_takes_a_runs_head_from_its_newest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (id, last) = {
        let store = open(&path);
        let mut record = create(&store, &new_run(&key("reopen", 0)));
        for events in [1, 2, 1] {
            record = append(&store, &record, events);
        }
        store.close().unwrap();
        (record.id, record)
    };
    let store = open(&path);
    assert_eq!(
        stored_record(&store, id).head.next_seq,
        1,
        "the stored record is the creation's"
    );
    assert_eq!(store.run(id).unwrap().unwrap(), last);
    assert_eq!(store.find(&last.key).unwrap().unwrap(), last);
    let stale = batch(&last, 3, 0, 1);
    assert_eq!(
        store.append(&[stale]).unwrap(),
        vec![Err(runjournal_core::AppendRejection::Conflict {
            expected: 3,
            actual: 5
        })],
        "conditions are checked against the commit's head"
    );
    append(&store, &last, 1);
}

#[test]
fn a_group_of_several_runs_is_one_batch_that_rewrites_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let first = create(&store, &new_run(&key("several", 0)));
    let second = create(&store, &new_run(&key("several", 1)));
    let writes = counter(&store, &layout::writes_key());
    let (a, b) = (batch(&first, 1, 0, 1), batch(&second, 1, 0, 2));
    assert_eq!(store.append(&[a.clone(), b.clone()]).unwrap(), vec![Ok(()), Ok(())]);
    assert_eq!(stored_record(&store, first.id), after(&first, &a));
    assert_eq!(stored_record(&store, second.id), after(&second, &b));
    assert_eq!(counter(&store, &layout::writes_key()), writes + 1);
    let value = raw(&store, &layout::event_key(first.id, 1)).unwrap();
    assert!(!chunk::is_chunk(&value), "a batch stores a single event bare");
}

#[test]
fn a_group_with_a_snapshot_is_one_commit_and_its_snapshot_is_in_the_snapshot_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let record = create(&store, &new_run(&key("snapshot", 0)));
    let mut append = batch(&record, 1, 0, 2);
    append.snapshot = Some(SnapshotRecord {
        seq: 2,
        bytes: b"state".to_vec(),
    });
    assert_eq!(store.append(&[append.clone()]).unwrap(), vec![Ok(())]);
    assert!(chunk::is_commit(
        &raw(&store, &layout::event_key(record.id, 1)).unwrap()
    ));
    let snapshot_key = layout::snapshot_key(record.id, 2);
    assert_eq!(
        store.sled_snapshots().get(snapshot_key).unwrap().unwrap().to_vec(),
        b"state".to_vec()
    );
    assert_eq!(raw(&store, &snapshot_key), None, "no snapshot in the events' tree");
}

#[test]
fn the_guard_names_the_newest_commit_a_sync_covered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let record = create(&store, &new_run(&key("guard", 0)));
    let record = append(&store, &record, 2);
    store.close().unwrap();
    drop(store);
    let guarded = read_guard(&path).unwrap().unwrap();
    assert_eq!(guarded.reference, Some(layout::event_key(record.id, 1)));
    let store = open(&path);
    let value = raw(&store, &layout::event_key(record.id, 1)).unwrap();
    let header = decode_header(chunk::commit_header(&value).unwrap()).unwrap();
    assert_eq!((guarded.events, guarded.writes), (header.events, Some(header.writes)));
    assert!(
        counter(&store, &layout::writes_key()) < header.writes,
        "the meta record alone is behind the guard"
    );
    // The counters go on from the commit's: the next batch's writes record is one past it.
    store.reserve_run_id().unwrap();
    assert_eq!(counter(&store, &layout::writes_key()), header.writes + 1);
}

#[test]
fn a_lost_commit_the_guard_names_is_a_loud_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let reference = {
        let store = open(&path);
        let record = create(&store, &new_run(&key("lost", 0)));
        let record = append(&store, &record, 1);
        store.sync().unwrap();
        // What a damaged log does to the newest write: it is gone, and so is
        // everything after it (nothing is).
        store.sled().remove(layout::event_key(record.id, 1)).unwrap();
        store.sled().flush().unwrap();
        store.close().unwrap();
        layout::event_key(record.id, 1)
    };
    assert_eq!(read_guard(&path).unwrap().unwrap().reference, Some(reference));
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap().to_string();
    assert!(error.contains("sled lost events that were durable"), "{error}");
    assert!(error.contains("holds 1 appended events, but 2"), "{error}");
}

#[test]
fn a_damaged_commit_the_guard_names_opens_and_its_run_names_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let id = {
        let store = open(&path);
        let record = create(&store, &new_run(&key("damaged", 0)));
        append(&store, &record, 1);
        store.sync().unwrap();
        store
            .sled()
            .insert(layout::event_key(record.id, 1), &b"not a commit"[..])
            .unwrap();
        store.sled().flush().unwrap();
        store.close().unwrap();
        record.id
    };
    // sled drops the end of its log, it never rewrites a value: the named
    // key being there proves the log reaches it, so the open succeeds.
    let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
    let error = store.run(id).unwrap_err().to_string();
    assert!(
        error.contains("at seq 1") && error.contains("past the run's head"),
        "{error}"
    );
}

/// The invariant the guard's reference rests on: sled recovers a prefix of
/// its log, so a commit present after a crash implies every write before it
/// is present. Each commit here is flushed on its own (its own log write);
/// every cut of the log must recover exactly the first k commits, for some k.
#[test]
fn sled_recovers_a_prefix_of_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut order = Vec::new();
    {
        let store = open(&path);
        let mut records: Vec<RunRecord> = (0..3)
            .map(|episode| create(&store, &new_run(&key("prefix", episode))))
            .collect();
        store.sled().flush().unwrap();
        for index in 0..120 {
            let record = &mut records[index % 3];
            order.push(layout::event_key(record.id, record.head.next_seq));
            *record = append(&store, record, 1 + index % 4);
            store.sled().flush().unwrap();
        }
        store.close().unwrap();
    }
    let copy = dir.path().join("copy");
    files::copy_without_snapshot(&path, &copy).unwrap();
    let log = files::Log::of(&path, &copy).unwrap();
    let mut recovered = Vec::new();
    let lengths = (0..log.len()).step_by(1_499).chain([log.len()]);
    for length in lengths {
        log.cut_to(length).unwrap();
        if let Ok(db) = sled::Config::new().path(&copy).open() {
            let present: Vec<bool> = order.iter().map(|key| db.get(key).unwrap().is_some()).collect();
            let kept = present.iter().take_while(|present| **present).count();
            assert!(
                present[kept..].iter().all(|present| !present),
                "a log cut at {length} bytes recovered commits after a missing one: {present:?}"
            );
            recovered.push(kept);
        }
    }
    assert!(
        recovered.contains(&0) && recovered.contains(&order.len()),
        "{recovered:?}"
    );
    assert!(
        recovered.iter().collect::<std::collections::BTreeSet<_>>().len() > 20,
        "the cuts recover many different prefixes: {recovered:?}"
    );
}

#[test]
fn a_raw_scan_of_the_log_finds_the_run_record_a_commit_carries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let last = {
        let store = open(&path);
        let mut record = create(&store, &new_run(&key("salvage", 0)));
        for events in [1, 3, 2] {
            record = append(&store, &record, events);
        }
        store.close().unwrap();
        record
    };
    let found = files::scan_run_records(&path).unwrap();
    assert_eq!(
        found.get(&last.id),
        Some(&last),
        "what a salvage compares with is the newest head"
    );
}

#[test]
fn a_purge_of_the_run_whose_commit_the_guard_names_never_trips_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = open(&path);
        let record = create(&store, &new_run(&key("purged", 0)));
        let record = append(&store, &record, 3);
        store.sync().unwrap();
        assert_eq!(
            read_guard(&path).unwrap().unwrap().reference,
            Some(layout::event_key(record.id, 1))
        );
        store.delete_runs(&[record.id]).unwrap();
        store.close().unwrap();
    }
    let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
    assert!(store.list(&runjournal_core::RunFilter::default()).unwrap().is_empty());
}

/// Appends `events` events to each of `runs` (indices into `records`) as one
/// independent group; returns each commit's key, run index and the run's
/// record after it, in the group's order.
fn independent_group(
    store: &SledStore,
    records: &mut [RunRecord],
    runs: &[(usize, usize)],
) -> Vec<(Vec<u8>, usize, RunRecord)> {
    let batches: Vec<_> = runs
        .iter()
        .map(|&(run, events)| batch(&records[run], records[run].head.next_seq, 0, events))
        .collect();
    let outcomes = store.append_independent(&batches).unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    runs.iter()
        .zip(&batches)
        .map(|(&(run, _), append)| {
            let key = layout::event_key(records[run].id, records[run].head.next_seq).to_vec();
            records[run] = after(&records[run], append);
            (key, run, records[run].clone())
        })
        .collect()
}

#[test]
fn an_independent_group_of_several_runs_is_one_commit_per_run_with_cumulative_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let mut records = vec![
        create(&store, &new_run(&key("independent", 0))),
        create(&store, &new_run(&key("independent", 1))),
    ];
    let created: Vec<_> = records
        .iter()
        .map(|record| raw(&store, &layout::run_key(record.id)))
        .collect();
    let (appended, writes) = (
        counter(&store, &layout::appended_key()),
        counter(&store, &layout::writes_key()),
    );
    let commits = independent_group(&store, &mut records, &[(1, 3), (0, 1)]);
    for ((key, run, expected), (events, count)) in commits.iter().zip([(appended + 3, 1), (appended + 4, 2)]) {
        let value = raw(&store, key).unwrap();
        assert!(chunk::is_commit(&value), "run {run}'s part is a commit");
        let header = decode_header(chunk::commit_header(&value).unwrap()).unwrap();
        assert_eq!(&header.record, expected);
        assert_eq!(
            (header.events, header.writes),
            (events, writes + count),
            "the counters after this commit"
        );
    }
    for (record, stored) in records.iter().zip(&created) {
        assert_eq!(
            &raw(&store, &layout::run_key(record.id)),
            stored,
            "no run record is rewritten"
        );
        assert_eq!(&store.run(record.id).unwrap().unwrap(), record);
    }
    assert_eq!(counter(&store, &layout::appended_key()), appended, "nor a meta record");
    assert_eq!(counter(&store, &layout::writes_key()), writes);
    store.close().unwrap();
    drop(store);
    assert_eq!(
        read_guard(&path).unwrap().unwrap().reference.map(|key| key.to_vec()),
        Some(commits[1].0.clone()),
        "the guard names the group's last commit"
    );
    let store = open(&path);
    for record in &records {
        assert_eq!(&store.run(record.id).unwrap().unwrap(), record, "reopened");
    }
}

#[test]
fn an_atomic_group_of_several_runs_stays_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let first = create(&store, &new_run(&key("atomic", 0)));
    let second = create(&store, &new_run(&key("atomic", 1)));
    let writes = counter(&store, &layout::writes_key());
    let (a, b) = (batch(&first, 1, 0, 2), batch(&second, 1, 0, 2));
    assert_eq!(store.append(&[a.clone(), b.clone()]).unwrap(), vec![Ok(()), Ok(())]);
    assert!(!chunk::is_commit(
        &raw(&store, &layout::event_key(first.id, 1)).unwrap()
    ));
    assert_eq!(stored_record(&store, first.id), after(&first, &a));
    assert_eq!(stored_record(&store, second.id), after(&second, &b));
    assert_eq!(counter(&store, &layout::writes_key()), writes + 1);
}

#[test]
fn an_independent_group_with_a_snapshot_is_commits_and_one_with_an_oversized_part_is_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let first = create(&store, &new_run(&key("fallback", 0)));
    let second = create(&store, &new_run(&key("fallback", 1)));
    let mut snapshot = batch(&first, 1, 0, 2);
    snapshot.snapshot = Some(SnapshotRecord {
        seq: 2,
        bytes: b"state".to_vec(),
    });
    let plain = batch(&second, 1, 0, 2);
    assert_eq!(
        store.append_independent(&[snapshot.clone(), plain.clone()]).unwrap(),
        vec![Ok(()), Ok(())]
    );
    assert!(chunk::is_commit(&raw(&store, &layout::event_key(first.id, 1)).unwrap()));
    assert!(chunk::is_commit(
        &raw(&store, &layout::event_key(second.id, 1)).unwrap()
    ));
    assert_eq!(
        store
            .sled_snapshots()
            .get(layout::snapshot_key(first.id, 2))
            .unwrap()
            .unwrap()
            .to_vec(),
        b"state".to_vec()
    );
    let second = after(&second, &plain);
    let first = after(&first, &snapshot);
    let oversized = batch(&first, 3, 0, 300);
    let small = batch(&second, 3, 0, 1);
    assert_eq!(
        store.append_independent(&[oversized.clone(), small.clone()]).unwrap(),
        vec![Ok(()), Ok(())]
    );
    assert_eq!(stored_record(&store, first.id), after(&first, &oversized));
    assert_eq!(stored_record(&store, second.id), after(&second, &small));
}

/// Commits of independent groups (key, run index, run record after) as
/// written.
type Written = Vec<(Vec<u8>, usize, RunRecord)>;

/// Writes 48 independent groups over 4 runs at `path`, one flush each;
/// returns the commits, the runs as created, the counters before the groups
/// and how many commits the first 25 groups made.
fn write_independent_groups(path: &Path) -> (Written, Vec<RunRecord>, u64, u64, usize) {
    let mut commits = Vec::new();
    let store = open(path);
    let mut records: Vec<RunRecord> = (0..4)
        .map(|episode| create(&store, &new_run(&key("groups", episode))))
        .collect();
    let created = records.clone();
    let base = (
        counter(&store, &layout::appended_key()),
        counter(&store, &layout::writes_key()),
    );
    store.sled().flush().unwrap();
    let mut guarded_group = 0;
    for group in 0..48 {
        let runs: Vec<(usize, usize)> = (0..2 + group % 3)
            .map(|offset| ((group + offset) % 4, 1 + (group + offset) % 3))
            .collect();
        commits.extend(independent_group(&store, &mut records, &runs));
        // One flush per group: its commits reach the log in one write.
        store.sled().flush().unwrap();
        if group == 24 {
            guarded_group = commits.len();
        }
    }
    store.close().unwrap();
    (commits, created, base.0, base.1, guarded_group)
}

/// Copies the database at `path` to `copy` with its log cut to `length`;
/// `None` when sled refuses the cut log.
/// The log's length up to its last byte that is not zero: the store extends
/// the log to the end of its segment with zeros, which sled reads as the end
/// of the file, so cuts past it all leave the same log.
fn written_length(log: &Path) -> u64 {
    let bytes = std::fs::read(log).unwrap();
    let written = bytes.iter().rposition(|byte| *byte != 0).map_or(0, |last| last + 1);
    u64::try_from(written).unwrap()
}

fn cut_copy(path: &Path, copy: &Path, length: u64) -> Option<()> {
    files::copy_without_snapshot(path, copy).unwrap();
    files::Log::of(path, copy).unwrap().cut_to(length).unwrap();
    sled::Config::new().path(copy).open().ok().map(drop)
}

/// What a cut of the log kept: the commits present in `order`, which must be
/// a prefix of it.
fn kept_prefix(store: &SledStore, order: &[Vec<u8>], length: u64) -> usize {
    let present: Vec<bool> = order.iter().map(|key| raw(store, key).is_some()).collect();
    let kept = present.iter().take_while(|present| **present).count();
    assert!(
        present[kept..].iter().all(|present| !present),
        "a log cut at {length} bytes recovered commits after a missing one: {present:?}"
    );
    kept
}

/// A group of independent appends to several runs is one commit per run,
/// written by one flush. sled recovers a prefix of those commits, so after
/// any cut of the log every run is wholly at the end of one of its own
/// appends, the counters in the last commit present are those of what is
/// present, and the guard passes when its reference survived and fails
/// loudly when it did not.
#[test]
fn sled_recovers_a_prefix_of_an_independent_groups_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (commits, created, base_events, base_writes, guarded_group) = write_independent_groups(&path);
    let order: Vec<Vec<u8>> = commits.iter().map(|(key, _, _)| key.clone()).collect();
    // The guard a sync after group 24 would have written.
    let reference: [u8; 17] = order[guarded_group - 1].clone().try_into().unwrap();
    let events_at = |kept: usize| {
        base_events
            + commits[..kept]
                .iter()
                .map(|(key, _, record)| record.head.next_seq - layout::trailing_u64(key).unwrap())
                .sum::<u64>()
    };
    let log_len = written_length(&path.join(files::LOG));
    let step = (log_len / 160).max(1);
    let mut recovered = Vec::new();
    for (index, length) in (0..log_len)
        .step_by(usize::try_from(step).unwrap())
        .chain([log_len])
        .enumerate()
    {
        let copy = dir.path().join(format!("cut-{index}"));
        if cut_copy(&path, &copy, length).is_none() {
            continue;
        }
        let guarded = dir.path().join(format!("guarded-{index}"));
        files::copy_without_snapshot(&copy, &guarded).unwrap();
        let Ok(store) = SledStore::open(&copy, OpenMode::MustExist) else {
            continue;
        };
        let kept = kept_prefix(&store, &order, length);
        recovered.push(kept);
        for (run, created) in created.iter().enumerate() {
            let expected = commits[..kept]
                .iter()
                .rev()
                .find(|(_, of, _)| *of == run)
                .map_or(created, |(_, _, record)| record);
            let Some(record) = store.run(created.id).unwrap() else {
                assert_eq!(kept, 0, "cut at {length}: run {run} is gone though commits survived");
                continue;
            };
            assert_eq!(
                &record, expected,
                "cut at {length}: run {run} is at the end of one of its appends"
            );
            let seqs = runjournal_core::testing::conformance::seqs(&store, &record);
            assert_eq!(
                seqs,
                (0..record.head.next_seq).collect::<Vec<_>>(),
                "cut at {length}: run {run}"
            );
        }
        if let Some((key, _, _)) = kept.checked_sub(1).map(|last| &commits[last]) {
            let value = raw(&store, key).unwrap();
            let header = decode_header(chunk::commit_header(&value).unwrap()).unwrap();
            assert_eq!(
                (header.events, header.writes),
                (events_at(kept), base_writes + kept as u64),
                "cut at {length}: the last commit's counters count what is present"
            );
        }
        drop(store);
        runjournal_sled::guard::write_guard(
            &guarded,
            events_at(guarded_group),
            base_writes + guarded_group as u64,
            Some(&reference),
        )
        .unwrap();
        let opened = SledStore::open(&guarded, OpenMode::MustExist);
        if kept >= guarded_group {
            assert!(opened.is_ok(), "cut at {length}: a false alarm: {:?}", opened.err());
        } else {
            let error = opened.err().unwrap().to_string();
            assert!(
                error.contains("sled lost"),
                "cut at {length}, {kept} commits kept: {error}"
            );
        }
        let _ = std::fs::remove_dir_all(&copy);
        let _ = std::fs::remove_dir_all(&guarded);
    }
    let distinct: std::collections::BTreeSet<_> = recovered.iter().collect();
    assert!(
        recovered.contains(&order.len()) && distinct.len() > 10,
        "the cuts recover many different prefixes: {recovered:?}"
    );
    assert!(
        recovered.iter().any(|&kept| kept < guarded_group) && recovered.iter().any(|&kept| kept >= guarded_group),
        "some cuts lose the guarded commit and some keep it: {recovered:?}"
    );
}

/// Writes, one flush each, a creation of 3 runs, an independent group, an
/// atomic group of the 3, another independent group, a purge of runs 1 and
/// 2 and a rewind of run 0; returns the runs, the atomic group's keys and the
/// rewind's new run.
fn write_multi_run_operations(path: &Path) -> (Vec<RunRecord>, Vec<[u8; 17]>, RunRecord) {
    let store = open(path);
    let mut records = store
        .create_runs(
            &(0..3)
                .map(|episode| new_run(&key("whole", episode)))
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .unwrap();
    store.sled().flush().unwrap();
    independent_group(&store, &mut records, &[(0, 2), (1, 1), (2, 3)]);
    store.sled().flush().unwrap();
    let batches: Vec<_> = records
        .iter()
        .map(|record| batch(record, record.head.next_seq, 0, 2))
        .collect();
    let atomic_keys: Vec<_> = records
        .iter()
        .map(|record| layout::event_key(record.id, record.head.next_seq))
        .collect();
    assert!(store.append(&batches).unwrap().iter().all(Result::is_ok));
    for (record, append) in records.iter_mut().zip(&batches) {
        *record = after(record, append);
    }
    store.sled().flush().unwrap();
    independent_group(&store, &mut records, &[(2, 1), (0, 1)]);
    store.sled().flush().unwrap();
    store.delete_runs(&[records[1].id, records[2].id]).unwrap();
    store.sled().flush().unwrap();
    let mut rewound = new_run(&key("whole", 9));
    rewound.supersedes = Some(records[0].id);
    let rewind = create(&store, &rewound);
    store.close().unwrap();
    (records, atomic_keys, rewind)
}

/// What must stay all or nothing across runs does: a creation of several
/// runs, a rewind (a creation that supersedes a run), an atomic append group
/// ([`Store::append`]) and a purge of several runs each go through one sled
/// batch, so no cut of the log between and inside them leaves half of one,
/// while independent groups around them are cut per run.
#[test]
fn a_cut_never_leaves_half_of_a_multi_run_operation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (records, atomic_keys, rewind) = write_multi_run_operations(&path);
    let log_len = written_length(&path.join(files::LOG));
    let step = (log_len / 160).max(1);
    let mut states = std::collections::BTreeSet::new();
    for (index, length) in (0..log_len)
        .step_by(usize::try_from(step).unwrap())
        .chain([log_len])
        .enumerate()
    {
        let copy = dir.path().join(format!("cut-{index}"));
        if cut_copy(&path, &copy, length).is_none() {
            continue;
        }
        let Ok(store) = SledStore::open(&copy, OpenMode::MustExist) else {
            continue;
        };
        let all_or_none = |what: &str, present: Vec<bool>| {
            assert!(
                present.iter().all(|p| *p) || present.iter().all(|p| !*p),
                "cut at {length}: half of the {what}: {present:?}"
            );
            present[0]
        };
        // A purge removes runs 1 and 2 whole (record and key index), so the
        // creation is whole when run 0's key is there and runs 1 and 2 are
        // either there with their keys or purged whole.
        let purged = !all_or_none(
            "purge",
            records[1..]
                .iter()
                .flat_map(|record| {
                    [
                        store.run(record.id).unwrap().is_some(),
                        raw(&store, &layout::key_index_key(&record.key)).is_some(),
                    ]
                })
                .collect(),
        );
        let created = raw(&store, &layout::key_index_key(&records[0].key)).is_some();
        assert!(
            created || purged,
            "cut at {length}: runs 1 and 2 without run 0: half of the creation"
        );
        let appended = all_or_none(
            "atomic group",
            atomic_keys[..if purged { 1 } else { 3 }]
                .iter()
                .map(|key| raw(&store, key).is_some())
                .collect(),
        );
        let rewound = all_or_none(
            "rewind",
            vec![
                store.find(&rewind.key).unwrap().is_some(),
                store
                    .run(records[0].id)
                    .unwrap()
                    .is_some_and(|record| record.status == runjournal_core::RunStatus::Superseded),
            ],
        );
        states.insert((created, appended, created && purged, rewound));
        drop(store);
        let _ = std::fs::remove_dir_all(&copy);
    }
    assert!(
        states.contains(&(true, false, false, false))
            && states.contains(&(true, true, false, false))
            && states.contains(&(true, true, true, true)),
        "the cuts land between the operations: {states:?}"
    );
}

/// Independent groups of 8 runs, each followed by a sync, as the
/// group-commit writer makes them: every run reopens at its last append.
/// (Under `strace -f -e trace=pwrite64,sync_file_range,fdatasync` each
/// group's sync is one `pwrite64`, one `sync_file_range` and one `fdatasync`;
/// with `append`, an atomic group, two of each of the first two.)
#[test]
fn synced_independent_groups_of_eight_runs_reopen_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut records = {
        let store = open(&path);
        let created = store
            .create_runs(
                &(0..8)
                    .map(|episode| new_run(&key("synced", episode)))
                    .collect::<Vec<_>>(),
            )
            .unwrap()
            .unwrap();
        store.sync().unwrap();
        created
    };
    {
        let store = open(&path);
        for group in 0..10 {
            let runs: Vec<(usize, usize)> = (0..8).map(|run| (run, 1 + (run + group) % 3)).collect();
            independent_group(&store, &mut records, &runs);
            store.sync().unwrap();
        }
        store.close().unwrap();
    }
    let store = open(&path);
    for record in &records {
        assert_eq!(&store.run(record.id).unwrap().unwrap(), record);
    }
}
