//! A blocking durable append (or a begin, a purge, a sync) that finds the
//! writer idle (nothing queued, no group being applied) commits itself on
//! its own thread, as a group of one;
//! otherwise it queues to the writer thread, which applies it in order with
//! whatever else waits, in one group. A panic while committing on the
//! caller's thread stops the writer as a panic of the writer thread does.
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/counting.rs"]
mod counting;

use std::sync::Arc;
use std::time::Instant;

use runjournal::core::MemoryStore;
use runjournal::{AppendError, Durability, Journal, Message, Options, Outcome, Role, Run, RunKey, RunMeta, RunStatus};

use counting::{wait_queued, CountingStore, DEADLINE};

const WRITER_THREAD: &str = "runjournal-writer";

fn gated_journal(durability: Durability) -> (Arc<CountingStore<MemoryStore>>, Journal) {
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let journal = Journal::with_store(store.clone(), Options::with_durability(durability)).unwrap();
    (store, journal)
}

fn key(goal: &str, episode: u32) -> RunKey {
    RunKey::new(goal, episode, "agent").unwrap()
}

fn step(content: &str) -> Vec<Message> {
    vec![Message::new(Role::Assistant, content)]
}

/// Waits until the writer answered every write handed to it (it counts a
/// group out just after answering it).
fn wait_idle(journal: &Journal) {
    let deadline = Instant::now() + DEADLINE;
    while journal.queued_appends() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} writes still queued",
            journal.queued_appends()
        );
        std::thread::yield_now();
    }
}

/// Steps every run once, each from a thread of its own: the first run's step
/// holds the group lock inside the closed store while the others are handed
/// to the writer behind it, and the gate opens once all of them are. Returns
/// the writer groups the waiting steps took.
fn step_each_behind_the_first(store: &CountingStore<MemoryStore>, journal: &Journal, runs: &[Run]) -> u64 {
    store.close();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| runs[0].step(step("first")).unwrap());
        store.wait_entered(1);
        let waiting: Vec<_> = runs[1..]
            .iter()
            .map(|run| scope.spawn(move || run.step(step("waiting")).unwrap()))
            .collect();
        // The first counts as queued until it is answered.
        wait_queued(journal, runs.len());
        assert_eq!(store.entered(), 1, "the queued steps wait for the first");
        let groups_before = journal.metrics().groups;
        store.open();
        for handle in std::iter::once(first).chain(waiting) {
            assert_eq!(handle.join().unwrap(), 1);
        }
        journal.metrics().groups - groups_before
    })
}

#[test]
fn a_lone_durable_append_is_committed_on_its_caller_s_thread() {
    let (store, journal) = gated_journal(Durability::Durable);
    let run = journal.begin(key("lone", 0), RunMeta::default()).unwrap();
    wait_idle(&journal);
    let groups_before = journal.metrics().groups;
    run.step(step("one")).unwrap();
    run.step(step("two")).unwrap();
    let this_thread = std::thread::current().name().map(str::to_owned);
    assert_eq!(store.appenders(), vec![this_thread.clone(), this_thread]);
    assert_eq!(
        journal.metrics().groups,
        groups_before + 2,
        "each append is a group of its own"
    );
    assert_eq!(
        journal.metrics().flushes,
        journal.metrics().groups,
        "and each was synced"
    );
    let state = journal.state(&key("lone", 0)).unwrap();
    assert_eq!(state.iteration, 2);
    journal.verify(&key("lone", 0)).unwrap();
}

#[test]
fn durable_appends_that_find_a_group_in_progress_go_to_the_writer_thread_in_one_group() {
    const WAITING: u32 = 8;
    let (store, journal) = gated_journal(Durability::Durable);
    let keys: Vec<_> = (0..=WAITING).map(|index| key("waiting", index)).collect();
    let runs: Vec<_> = keys
        .iter()
        .map(|key| journal.begin(key.clone(), RunMeta::default()).unwrap())
        .collect();
    wait_idle(&journal);
    assert_eq!(
        step_each_behind_the_first(&store, &journal, &runs),
        1,
        "the waiting appends are one group"
    );
    let appenders = store.appenders();
    assert_eq!(appenders.len(), 2, "{appenders:?}");
    assert_ne!(
        appenders[0].as_deref(),
        Some(WRITER_THREAD),
        "the first committed itself"
    );
    assert_eq!(appenders[1].as_deref(), Some(WRITER_THREAD), "the waiting ones queued");
    for key in &keys {
        assert_eq!(journal.state(key).unwrap().iteration, 1);
        journal.verify(key).unwrap();
    }
}

#[test]
fn after_a_group_of_several_appends_the_next_goes_to_the_writer_thread_and_the_one_after_commits_itself() {
    let (store, journal) = gated_journal(Durability::Durable);
    let runs: Vec<_> = (0..4)
        .map(|index| journal.begin(key("solo", index), RunMeta::default()).unwrap())
        .collect();
    wait_idle(&journal);
    assert_eq!(step_each_behind_the_first(&store, &journal, &runs), 1);
    // The last group was of three appends: appends may be concurrent.
    wait_idle(&journal);
    runs[0].step(step("after the group")).unwrap();
    // That group was of one: appends come one at a time again.
    wait_idle(&journal);
    runs[0].step(step("one at a time")).unwrap();
    let appenders = store.appenders();
    let this_thread = std::thread::current().name().map(str::to_owned);
    assert_eq!(appenders.len(), 4, "{appenders:?}");
    assert_eq!(appenders[2].as_deref(), Some(WRITER_THREAD));
    assert_eq!(appenders[3], this_thread);
    assert_eq!(journal.state(&key("solo", 0)).unwrap().iteration, 3);
}

#[test]
fn a_durable_append_never_overtakes_its_run_s_buffered_appends() {
    let (store, journal) = gated_journal(Durability::Buffered);
    let run = journal.begin(key("order", 0), RunMeta::default()).unwrap();
    store.close();
    for index in 0..3 {
        run.step(step(&format!("buffered {index}"))).unwrap();
    }
    store.wait_entered(1);
    std::thread::scope(|scope| {
        // An outcome is a run boundary: durable in every mode.
        let finish = scope.spawn(move || run.finish(Outcome::Success { output: None }).unwrap());
        // The three steps and the outcome.
        wait_queued(&journal, 4);
        store.open();
        assert_eq!(finish.join().unwrap(), 4);
    });
    let state = journal.state(&key("order", 0)).unwrap();
    assert_eq!(state.status, RunStatus::Completed);
    assert_eq!(state.iteration, 3);
    journal.verify(&key("order", 0)).unwrap();
    assert!(
        store
            .appenders()
            .iter()
            .all(|name| name.as_deref() == Some(WRITER_THREAD)),
        "{:?}",
        store.appenders()
    );
}

#[test]
fn a_panic_while_committing_on_the_caller_s_thread_stops_the_writer_and_is_not_passed_on() {
    let (store, journal) = gated_journal(Durability::Durable);
    let run = journal.begin(key("panic", 0), RunMeta::default()).unwrap();
    wait_idle(&journal);
    run.step(step("stored")).unwrap();
    store.panic_on_next_append();
    let failed = run.step(step("the store panics"));
    assert!(
        matches!(failed, Err(AppendError::WriterStopped)),
        "expected WriterStopped, got {failed:?}"
    );
    let later = journal.begin(key("panic", 1), RunMeta::default());
    assert!(
        later.as_ref().is_err_and(|error| error.code() == "writer_stopped"),
        "expected writer_stopped, got {later:?}"
    );
    let appenders = store.appenders();
    let this_thread = std::thread::current().name().map(str::to_owned);
    assert_eq!(appenders, vec![this_thread.clone(), this_thread]);
}

#[test]
fn a_lone_begin_and_a_sync_are_committed_on_their_caller_s_thread() {
    let (store, journal) = gated_journal(Durability::Buffered);
    let this_thread = std::thread::current().name().map(str::to_owned);
    wait_idle(&journal);
    let run = journal.begin(key("begin", 0), RunMeta::default()).unwrap();
    assert_eq!(store.creators(), vec![this_thread.clone()]);
    wait_idle(&journal);
    let flushes = journal.metrics().flushes;
    journal.sync().unwrap();
    assert_eq!(journal.metrics().flushes, flushes + 1, "the sync synced");
    assert_eq!(store.syncers().last(), Some(&this_thread), "on this thread");
    // A buffered step goes to the writer thread; a begin after it, on another
    // run, waits behind it there.
    store.close();
    run.step(step("buffered")).unwrap();
    store.wait_entered(1);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| journal.begin(key("begin", 1), RunMeta::default()).unwrap());
        wait_queued(&journal, 2);
        store.open();
        second.join().unwrap();
    });
    assert_eq!(store.creators(), vec![this_thread, Some(WRITER_THREAD.to_owned())]);
    assert_eq!(journal.state(&key("begin", 0)).unwrap().iteration, 1);
    journal.verify(&key("begin", 1)).unwrap();
}
