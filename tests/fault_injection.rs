//! Fail-stop under injected storage failures, injected with
//! `runjournal_core::testing::faulty::FaultyStore`, over the in-memory store and over a
//! real sled database.
//!
//! What is shown:
//! - a failed sync or write poisons the journal: `AppendError::Storage` for
//!   the callers whose appends were in flight, then `AppendError::Poisoned`
//!   for every later write, on any run, until a new `Journal` is opened;
//! - many threads appending while a sync fails: every one of them gets an
//!   error, and no caller is told a batch is stored that was only applied in
//!   the failed group (acknowledged batches == batches synced before it);
//! - a batch whose write failed is, after reopening, wholly present or wholly
//!   absent;
//! - a failure while recording `run_failed` keeps the run's own failure and
//!   its cleanup errors, with the storage error as `source`;
//! - failed reads are typed errors, write nothing and do not poison.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use runjournal::core::testing::faulty::{Fault, FaultyStore, OpClass};
use runjournal::core::{MemoryStore, Store};
use runjournal::{
    AppendError, BeginError, Durability, ErrorInfo, Event, Journal, Message, Options, Outcome, ReadError, RebuildError,
    ResumeError, Role, RunFilter, RunKey, RunMeta, RunStatus, StoreError, SubscribeError, WriteError,
};
use runjournal_sled::{OpenMode, SledStore};

fn key(agent: &str) -> RunKey {
    RunKey::new("fault-injection", 0, agent).unwrap()
}

fn step(text: &str) -> Event {
    Event::Step {
        messages: vec![Message::new(Role::Assistant, text)],
    }
}

fn custom(kind: &str, data: String) -> Event {
    Event::Custom {
        kind: kind.into(),
        data,
    }
}

fn journal_over<S: Store>(store: &Arc<S>, options: Options) -> Journal {
    Journal::with_store(store.clone(), options).unwrap()
}

fn memory() -> Arc<FaultyStore<MemoryStore>> {
    Arc::new(FaultyStore::new(MemoryStore::new()))
}

fn sled_store(dir: &tempfile::TempDir) -> Arc<FaultyStore<SledStore>> {
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    Arc::new(FaultyStore::new(store))
}

fn is_injected_io(error: &StoreError) -> bool {
    matches!(error, StoreError::Io { source, .. } if source.to_string().contains("injected"))
}

/// The storage error inside an append error that reports a storage failure.
fn storage_source(error: &AppendError) -> Option<&StoreError> {
    match error {
        AppendError::Storage { source, .. } | AppendError::Poisoned { source } => Some(source),
        _ => None,
    }
}

/// The storage error inside a write error that reports a storage failure.
fn write_storage_source(error: &WriteError) -> Option<&StoreError> {
    match error {
        WriteError::Storage { source } | WriteError::Poisoned { source } => Some(source),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Poisoning after a failed sync.
// ---------------------------------------------------------------------------

/// Two runs; the next sync fails: Storage for that append, Poisoned for every
/// later write on any run and for begin, resume, sync and finish. A new
/// journal over the same inner store writes again.
fn failed_sync_poisons_until_reopen<S: Store>(faulty: &Arc<FaultyStore<S>>) {
    let journal = journal_over(faulty, Options::default());
    let a = journal.begin(key("a"), RunMeta::default()).unwrap();
    let b = journal.begin(key("b"), RunMeta::default()).unwrap();
    a.append(vec![step("a1")]).unwrap();
    b.append(vec![step("b1")]).unwrap();

    faulty.fail_nth_sync(1);
    let error = a.append(vec![step("a2"), step("a3")]).unwrap_err();
    match &error {
        AppendError::Storage { run, seq, source } => {
            assert_eq!(run, &key("a"));
            assert_eq!(*seq, 2);
            assert!(is_injected_io(source), "{source}");
        }
        other => panic!("expected Storage, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("storage failed") && text.contains("injected sync fault"),
        "{text}"
    );

    // Every later write is refused, on any run, without touching the store.
    let syncs_before = faulty.calls(OpClass::Sync);
    let writes_before = faulty.calls(OpClass::Write);
    for run in [&a, &b] {
        let error = run.append(vec![step("later")]).unwrap_err();
        assert!(matches!(error, AppendError::Poisoned { .. }), "{error:?}");
        assert!(is_injected_io(storage_source(&error).unwrap()));
        assert!(error.to_string().contains("refuses writes until reopened"), "{error}");
    }
    let begin = journal.begin(key("c"), RunMeta::default()).unwrap_err();
    assert!(
        matches!(begin, BeginError::Write(WriteError::Poisoned { .. })),
        "{begin:?}"
    );
    let resume = journal.resume(&key("b")).unwrap_err();
    assert!(
        matches!(resume, ResumeError::Append(AppendError::Poisoned { .. })),
        "{resume:?}"
    );
    assert!(matches!(journal.sync().unwrap_err(), WriteError::Poisoned { .. }));
    let finish = b.finish(Outcome::Success { output: None }).unwrap_err();
    assert!(matches!(finish.source, AppendError::Poisoned { .. }), "{finish:?}");
    assert_eq!(
        faulty.calls(OpClass::Sync),
        syncs_before,
        "a poisoned journal syncs nothing"
    );
    assert_eq!(
        faulty.calls(OpClass::Write),
        writes_before,
        "a poisoned journal writes nothing"
    );
    // Reads still work on the poisoned journal.
    journal.verify(&key("a")).unwrap();
    assert_eq!(faulty.injected(OpClass::Sync), 1);
    drop((a, journal));

    // A new journal over the same store: the failed batch (applied, then the
    // sync failed) is wholly there; resume and appends work again.
    let reopened = journal_over(faulty.inner(), Options::default());
    for agent in ["a", "b"] {
        reopened.verify(&key(agent)).unwrap();
    }
    let events = reopened.read(&key("a"), 0).unwrap();
    assert_eq!(events.len(), 4, "run_started, a1 and the whole failed batch a2 a3");
    assert_eq!(events[2].event, step("a2"));
    assert_eq!(events[3].event, step("a3"));
    assert!(reopened.run_info(&key("c")).is_err(), "begin of c wrote nothing");
    let (a, state) = reopened.resume(&key("a")).unwrap();
    assert_eq!(state.iteration, 3);
    assert_eq!(a.append(vec![step("a4")]).unwrap(), 5);
    reopened.begin(key("c"), RunMeta::default()).unwrap();
    reopened.verify(&key("a")).unwrap();
}

#[test]
fn failed_sync_poisons_a_memory_journal_until_reopen() {
    failed_sync_poisons_until_reopen(&memory());
}

#[test]
fn failed_sync_poisons_a_sled_journal_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    failed_sync_poisons_until_reopen(&sled_store(&dir));
    // And after a real close and reopen of the database.
    let journal = Journal::open(dir.path().join("db"), Options::default()).unwrap();
    for record in journal.runs(&RunFilter::default()).unwrap() {
        journal.verify(&record.key).unwrap();
    }
    assert_eq!(journal.read(&key("a"), 0).unwrap().len(), 6);
    let (b, _) = journal.resume(&key("b")).unwrap();
    b.append(vec![step("after reopen")]).unwrap();
}

#[test]
fn a_failed_sync_in_buffered_mode_poisons_later_appends() {
    let faulty = memory();
    let options = Options {
        durability: Durability::Buffered,
        flush_interval: Duration::from_millis(10),
        ..Options::default()
    };
    let journal = journal_over(&faulty, options);
    let run = journal.begin(key("buffered"), RunMeta::default()).unwrap();
    faulty.fail_nth_sync(1);
    // Buffered appends return before the sync; the interval's sync fails.
    run.append(vec![step("one")]).unwrap();
    // A bounded wait on a condition (an append sees the interval sync's
    // failure), polled until a deadline: not a sleep standing in for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        match run.append(vec![step("more")]) {
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) => panic!("the periodic sync never ran"),
            Err(error) => break error,
        }
    };
    // The append that waited for that sync (a buffered append waits once
    // the oldest unsynced one is half an interval old) gets the failure
    // itself; any other learns the journal is poisoned.
    assert!(
        matches!(error, AppendError::Poisoned { .. } | AppendError::Storage { .. }),
        "{error:?}"
    );
    assert!(is_injected_io(storage_source(&error).unwrap()));
    let later = run.append(vec![step("after")]).unwrap_err();
    assert!(matches!(later, AppendError::Poisoned { .. }), "{later:?}");
    assert_eq!(faulty.injected(OpClass::Sync), 1);
}

/// A subscription on a poisoned journal reports `Poisoned` (not `Closed`), as
/// does a live subscription when the journal is poisoned under it, after the
/// events it already received.
#[test]
fn subscriptions_on_a_poisoned_journal_report_poisoned() {
    let faulty = memory();
    let journal = journal_over(&faulty, Options::default());
    let run = journal.begin(key("watched"), RunMeta::default()).unwrap();
    let mut live = journal.subscribe(&key("watched"), 0, 16).unwrap();
    run.append(vec![step("stored")]).unwrap();
    assert_eq!(live.recv().unwrap().seq, 0);
    assert_eq!(live.recv().unwrap().seq, 1);

    faulty.fail_nth_sync(1);
    let error = run.append(vec![step("lost")]).unwrap_err();
    assert!(matches!(error, AppendError::Storage { .. }), "{error:?}");

    match live.recv().unwrap_err() {
        SubscribeError::Poisoned { source } => assert!(is_injected_io(&source), "{source}"),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(live.next().is_none(), "the subscription ended");
    for error in [
        journal.subscribe(&key("watched"), 0, 16).err().unwrap(),
        journal.subscribe_all(16).err().unwrap(),
    ] {
        assert_eq!(error.code(), "poisoned");
        match &error {
            SubscribeError::Poisoned { source } => assert!(is_injected_io(source), "{source}"),
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert!(error.to_string().contains("refuses writes until reopened"), "{error}");
    }
}

// ---------------------------------------------------------------------------
// Many callers in the failing group.
// ---------------------------------------------------------------------------

/// What one appending thread saw.
struct ThreadReport {
    key: RunKey,
    /// Events acknowledged (their last seq is `acked_events`, counting `run_started`).
    acked_events: u64,
    acked_batches: u64,
    /// The size of the batch whose append failed.
    failed_len: u64,
    error: AppendError,
}

/// Eight threads append batches of 1–3 events to their own runs; once enough
/// are acknowledged the next sync fails. Every thread gets an error; the
/// batches acknowledged are exactly those applied before the last good sync;
/// after reopening each run holds its acknowledged events plus at most its
/// whole failed batch.
#[expect(clippy::cast_sign_loss, reason = "the value is non-negative by construction")]
#[expect(
    clippy::too_many_lines,
    reason = "one linear scenario; splitting it would scatter what it checks"
)]
fn concurrent_appenders_all_get_the_error<S: Store>(faulty: &Arc<FaultyStore<S>>) {
    const THREADS: usize = 8;
    let journal = journal_over(faulty, Options::default());
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let acked_total = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let run = journal
                .begin(key(&format!("thread-{thread}")), RunMeta::default())
                .unwrap();
            let barrier = barrier.clone();
            let acked_total = acked_total.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut acked_events = 1; // run_started
                let mut acked_batches = 0;
                for round in 0u64.. {
                    let len = 1 + (round + thread as u64) % 3;
                    let batch = (0..len)
                        .map(|i| custom("batch", format!("{round}:{i}/{len}")))
                        .collect();
                    match run.append(batch) {
                        Ok(last) => {
                            assert_eq!(last, acked_events + len - 1);
                            acked_events += len;
                            acked_batches += 1;
                            acked_total.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error) => {
                            return ThreadReport {
                                key: run.key().clone(),
                                acked_events,
                                acked_batches,
                                failed_len: len,
                                error,
                            }
                        }
                    }
                }
                unreachable!()
            })
        })
        .collect();
    barrier.wait();
    // A bounded wait on a condition (200 batches acknowledged), polled until
    // a deadline: not a sleep standing in for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_total.load(Ordering::SeqCst) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    faulty.fail_nth_sync(1);
    let reports: Vec<ThreadReport> = handles.into_iter().map(|handle| handle.join().unwrap()).collect();

    let mut storage = 0;
    for report in &reports {
        match &report.error {
            AppendError::Storage { run, seq, source } => {
                assert_eq!(run, &report.key);
                assert_eq!(
                    *seq, report.acked_events,
                    "the failed batch starts after the acknowledged ones"
                );
                assert!(is_injected_io(source));
                storage += 1;
            }
            AppendError::Poisoned { source } => assert!(is_injected_io(source)),
            other => panic!("{}: unexpected {other:?}", report.key),
        }
    }
    assert_eq!(faulty.injected(OpClass::Sync), 1);
    let acked: u64 = reports.iter().map(|report| report.acked_batches).sum();
    assert_eq!(
        acked,
        faulty.batches_synced(),
        "exactly the batches applied before the last successful sync were acknowledged"
    );
    let in_failed_group = faulty.batches_applied() - faulty.batches_synced();
    assert!(in_failed_group >= 1, "the failing sync covered at least one batch");
    assert!(
        storage as u64 >= in_failed_group,
        "every caller of the failed group got Storage"
    );
    drop(journal);

    let reopened = journal_over(faulty.inner(), Options::default());
    let mut stored_unacked_batches = 0;
    for report in &reports {
        reopened.verify(&report.key).unwrap();
        let events = reopened.read(&report.key, 0).unwrap();
        let stored = events.len() as u64;
        if stored == report.acked_events {
            continue;
        }
        assert_eq!(
            stored,
            report.acked_events + report.failed_len,
            "{}: the failed batch is whole or absent",
            report.key
        );
        assert!(matches!(report.error, AppendError::Storage { .. }));
        stored_unacked_batches += 1;
    }
    assert_eq!(stored_unacked_batches, in_failed_group);
    eprintln!(
        "concurrent appenders: {acked} batches acknowledged, {in_failed_group} in the failed group, {storage} callers got Storage"
    );
}

#[test]
fn concurrent_appenders_in_a_failed_group_all_get_the_error_memory() {
    concurrent_appenders_all_get_the_error(&memory());
}

#[test]
fn concurrent_appenders_in_a_failed_group_all_get_the_error_sled() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_appenders_all_get_the_error(&sled_store(&dir));
}

// ---------------------------------------------------------------------------
// No partial batch after a failed write.
// ---------------------------------------------------------------------------

/// A five-event batch whose write fails (before or after it reaches the store)
/// is, after reopening, wholly absent or wholly present.
fn failed_write_leaves_no_partial_batch<S: Store>(faulty: &Arc<FaultyStore<S>>, after_apply: bool) -> Journal {
    let journal = journal_over(faulty, Options::default());
    let run = journal.begin(key("batch"), RunMeta::default()).unwrap();
    run.append(vec![step("before")]).unwrap();
    let fault = if after_apply {
        Fault::nth(1).after_apply()
    } else {
        Fault::nth(1)
    };
    faulty.arm(OpClass::Write, fault);
    let batch: Vec<Event> = (0..5).map(|i| custom("batch", format!("{i}/5"))).collect();
    let error = run.append(batch.clone()).unwrap_err();
    assert!(
        matches!(&error, AppendError::Storage { seq: 2, source, .. } if is_injected_io(source)),
        "{error:?}"
    );
    assert!(matches!(
        run.append(vec![step("after")]).unwrap_err(),
        AppendError::Poisoned { .. }
    ));
    drop((run, journal));

    let reopened = journal_over(faulty.inner(), Options::default());
    reopened.verify(&key("batch")).unwrap();
    let events: Vec<Event> = reopened
        .read(&key("batch"), 0)
        .unwrap()
        .into_iter()
        .map(|envelope| envelope.event)
        .collect();
    if after_apply {
        assert_eq!(events.len(), 7, "applied then failed: the whole batch is there");
        assert_eq!(events[2..], batch[..]);
    } else {
        assert_eq!(
            events.len(),
            2,
            "failed before it was applied: none of the batch is there"
        );
    }
    let (run, _) = reopened.resume(&key("batch")).unwrap();
    run.append(vec![step("resumed")]).unwrap();
    reopened.verify(&key("batch")).unwrap();
    reopened
}

#[test]
fn a_failed_write_leaves_no_partial_batch_memory() {
    failed_write_leaves_no_partial_batch(&memory(), false);
    failed_write_leaves_no_partial_batch(&memory(), true);
}

#[test]
fn a_failed_write_leaves_no_partial_batch_sled() {
    for after_apply in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        drop(failed_write_leaves_no_partial_batch(&sled_store(&dir), after_apply));
        // And after a real close and reopen.
        let journal = Journal::open(dir.path().join("db"), Options::default()).unwrap();
        let report = journal.verify(&key("batch")).unwrap();
        assert_eq!(report.events, if after_apply { 9 } else { 4 });
    }
}

#[test]
fn a_failed_create_writes_no_run() {
    let faulty = memory();
    let journal = journal_over(&faulty, Options::default());
    faulty.fail_nth_write(1);
    let error = journal.begin(key("never"), RunMeta::default()).unwrap_err();
    // The caller whose create failed is told the write failed (not that an
    // earlier failure poisoned the journal), with the cause.
    match &error {
        BeginError::Write(write @ WriteError::Storage { .. }) => {
            assert!(is_injected_io(write_storage_source(write).unwrap()), "{write:?}");
        }
        other => panic!("{other:?}"),
    }
    drop(journal);
    let reopened = journal_over(faulty.inner(), Options::default());
    assert!(matches!(
        reopened.run_info(&key("never")).unwrap_err(),
        ReadError::NotFound { .. }
    ));
    reopened.begin(key("never"), RunMeta::default()).unwrap();
}

// ---------------------------------------------------------------------------
// Recording a failure fails.
// ---------------------------------------------------------------------------

fn failure_outcome() -> (ErrorInfo, Vec<ErrorInfo>, Outcome) {
    let primary = ErrorInfo::new("backend", "the model backend returned 529 overloaded");
    let cleanup = vec![
        ErrorInfo::new("stop", "container did not stop within 10s"),
        ErrorInfo::new("unmount", "workspace busy"),
    ];
    let outcome = Outcome::Failure {
        error: primary.clone(),
        cleanup_errors: cleanup.clone(),
    };
    (primary, cleanup, outcome)
}

fn check_finish_error(error: &runjournal::FinishError, primary: &ErrorInfo, cleanup: &[ErrorInfo]) {
    assert_eq!(error.primary.as_ref(), Some(primary), "the primary failure is intact");
    assert_eq!(error.cleanup_errors, cleanup, "the cleanup errors are intact");
    let text = error.to_string();
    for part in [
        "backend",
        "the model backend returned 529 overloaded",
        "2 cleanup error(s)",
        "injected",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    let source = error.source().expect("the storage failure is the source");
    let append = source.downcast_ref::<AppendError>().expect("source is an AppendError");
    assert!(is_injected_io(storage_source(append).unwrap()), "{append:?}");
}

#[test]
fn a_failure_while_recording_run_failed_keeps_both_failures() {
    for (fault_class, after_apply) in [(OpClass::Write, false), (OpClass::Write, true), (OpClass::Sync, false)] {
        let faulty = memory();
        let journal = journal_over(&faulty, Options::default());
        let run = journal.begin(key("failing"), RunMeta::default()).unwrap();
        run.append(vec![step("work")]).unwrap();
        let fault = if after_apply {
            Fault::nth(1).after_apply()
        } else {
            Fault::nth(1)
        };
        faulty.arm(fault_class, fault);
        let (primary, cleanup, outcome) = failure_outcome();
        let error = run.finish(outcome).unwrap_err();
        check_finish_error(&error, &primary, &cleanup);
        assert!(
            matches!(error.source, AppendError::Storage { seq: 2, .. }),
            "{:?}",
            error.source
        );
        eprintln!("{fault_class:?}/after_apply={after_apply}: {error}");
        drop(journal);

        // After reopening, run_failed is wholly there or absent; either way
        // the chain verifies and the state is consistent with it.
        let reopened = journal_over(faulty.inner(), Options::default());
        reopened.verify(&key("failing")).unwrap();
        let state = reopened.state(&key("failing")).unwrap();
        let stored = reopened.read(&key("failing"), 0).unwrap().len();
        if stored == 3 {
            assert_eq!(state.status, RunStatus::Failed);
            let failure = state.failure.unwrap();
            assert_eq!((failure.error, failure.cleanup_errors), (primary, cleanup));
        } else {
            assert_eq!(stored, 2);
            assert_eq!(state.status, RunStatus::Running);
            reopened.resume(&key("failing")).unwrap();
        }
    }
}

#[test]
fn finishing_on_a_poisoned_journal_keeps_the_primary_failure() {
    let faulty = memory();
    let journal = journal_over(&faulty, Options::default());
    let poisoner = journal.begin(key("poisoner"), RunMeta::default()).unwrap();
    let run = journal.begin(key("victim"), RunMeta::default()).unwrap();
    faulty.fail_nth_sync(1);
    poisoner.append(vec![step("x")]).unwrap_err();
    let (primary, cleanup, outcome) = failure_outcome();
    let error = run.finish(outcome).unwrap_err();
    check_finish_error(&error, &primary, &cleanup);
    assert!(matches!(error.source, AppendError::Poisoned { .. }));
}

#[test]
fn a_run_dropped_by_a_panicking_thread_on_a_poisoned_journal_does_not_abort() {
    let faulty = memory();
    let journal = journal_over(&faulty, Options::default());
    let run = journal.begin(key("panicking"), RunMeta::default()).unwrap();
    faulty.fail_nth_sync(1);
    run.append(vec![step("x")]).unwrap_err();
    let outcome = std::thread::spawn(move || {
        let _run = run;
        panic!("agent crashed while its journal was poisoned");
    })
    .join();
    assert!(
        outcome.is_err(),
        "the panic propagates; recording run_failed fails quietly"
    );
    drop(journal);
    let reopened = journal_over(faulty.inner(), Options::default());
    let state = reopened.state(&key("panicking")).unwrap();
    assert_eq!(
        state.status,
        RunStatus::Running,
        "run_failed(panic) could not be stored"
    );
}

// ---------------------------------------------------------------------------
// Failed reads.
// ---------------------------------------------------------------------------

fn is_injected_read(error: &ReadError) -> bool {
    matches!(error, ReadError::Store(store) if is_injected_io(store))
}

/// Fails the 1st, 2nd, … read of a resume: each is either a typed error that
/// wrote nothing, or (once the fault falls past the resume's reads) success.
#[expect(
    clippy::items_after_statements,
    reason = "the helper type is declared next to the only code that uses it"
)]
fn failed_reads_during_resume<S: Store>(faulty: &Arc<FaultyStore<S>>, options: Options) {
    let journal = journal_over(faulty, options);
    let run = journal.begin(key("reader"), RunMeta::default()).unwrap();
    for i in 0..25 {
        run.append(vec![step(&format!("s{i}"))]).unwrap();
    }
    drop(run);
    let mut failures = 0;
    for nth in 1.. {
        let before = journal.run_info(&key("reader")).unwrap();
        faulty.fail_nth_read(nth);
        let injected = faulty.injected(OpClass::Read);
        match journal.resume(&key("reader")) {
            Ok((run, state)) => {
                faulty.disarm();
                assert_eq!(
                    faulty.injected(OpClass::Read),
                    injected,
                    "resume succeeded without a fault"
                );
                assert_eq!(state.epoch, before.head.epoch + 1);
                drop(run);
                break;
            }
            Err(ResumeError::Read(error)) => {
                faulty.disarm();
                assert!(is_injected_read(&error), "read {nth}: {error:?}");
                failures += 1;
                let after = journal.run_info(&key("reader")).unwrap();
                assert_eq!(after.head, before.head, "a resume that failed to read wrote nothing");
            }
            Err(other) => panic!("read {nth}: unexpected {other:?}"),
        }
        assert!(nth < 100, "resume keeps reading");
    }
    assert!(failures >= 2, "resume reads at least the record and the events");

    // Every reading method with its first read failing.
    let k = key("reader");
    type Check<'a> = Box<dyn Fn() -> Option<ReadError> + 'a>;
    let checks: Vec<(&str, Check)> = vec![
        ("read", Box::new(|| journal.read(&k, 0).err())),
        ("verify", Box::new(|| journal.verify(&k).err())),
        ("state", Box::new(|| journal.state(&k).err())),
        ("state_at", Box::new(|| journal.state_at(&k, 3).err())),
        ("history", Box::new(|| journal.history(&k).err())),
        ("run_info", Box::new(|| journal.run_info(&k).err())),
        ("runs", Box::new(|| journal.runs(&RunFilter::default()).err())),
        ("recoverable", Box::new(|| journal.recoverable().err())),
        (
            "latest_episode",
            Box::new(|| journal.latest_episode("fault-injection", "reader").err()),
        ),
        (
            "next_episode",
            Box::new(|| journal.next_episode("fault-injection").err()),
        ),
    ];
    for (name, check) in &checks {
        for nth in [1, 2] {
            faulty.fail_nth_read(nth);
            let outcome = check();
            faulty.disarm();
            match outcome {
                Some(error) => assert!(is_injected_read(&error), "{name} read {nth}: {error:?}"),
                None => assert!(nth > 1, "{name}: its first read failed but it returned Ok"),
            }
        }
    }
    // Failed reads do not poison the journal.
    let (run, _) = journal.resume(&k).unwrap();
    run.append(vec![step("still writable")]).unwrap();
    journal.verify(&k).unwrap();
}

#[test]
fn failed_reads_are_typed_errors_memory() {
    failed_reads_during_resume(&memory(), Options::default());
    // With snapshots, resume also reads the snapshot.
    let options = Options {
        snapshot_every: 10,
        ..Options::default()
    };
    failed_reads_during_resume(&memory(), options);
}

#[test]
fn failed_reads_are_typed_errors_sled() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        snapshot_every: 10,
        ..Options::default()
    };
    failed_reads_during_resume(&sled_store(&dir), options);
}

#[test]
fn a_failed_snapshot_rebuild_poisons_and_leaves_the_log_intact() {
    let faulty = memory();
    let options = Options {
        snapshot_every: 5,
        ..Options::default()
    };
    let journal = journal_over(&faulty, options.clone());
    let run = journal.begin(key("snapshots"), RunMeta::default()).unwrap();
    for i in 0..12 {
        run.append(vec![step(&format!("s{i}"))]).unwrap();
    }
    let before = journal.state(&key("snapshots")).unwrap();
    faulty.fail_nth_write(1);
    let error = journal.rebuild_snapshots(&key("snapshots")).unwrap_err();
    match &error {
        RebuildError::Write(write) => assert!(is_injected_io(write_storage_source(write).unwrap()), "{write:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run.append(vec![step("after")]).unwrap_err(),
        AppendError::Poisoned { .. }
    ));
    drop((run, journal));
    let reopened = journal_over(faulty.inner(), options);
    reopened.verify(&key("snapshots")).unwrap();
    assert_eq!(reopened.state(&key("snapshots")).unwrap(), before);
    reopened.rebuild_snapshots(&key("snapshots")).unwrap();
    assert_eq!(reopened.state(&key("snapshots")).unwrap(), before);
}
