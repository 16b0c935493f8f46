//! The storage trait's contract, one public function per rule: every
//! [`Store`] implementation runs all of them in its tests, so a new backend
//! (a networked one included) is held to exactly what the journal relies on.
//!
//! A store's test file generates one `#[test]` per rule with
//! [`conformance_tests!`](crate::conformance_tests), giving it a factory that
//! makes a fresh, empty store (or a [`Fixture`] that owns one and whatever
//! keeps it alive, such as a temporary database):
//!
//! ```ignore
//! runjournal_core::conformance_tests!(runjournal_core::MemoryStore::new);
//! ```
//!
//! [`run_all`] runs every rule on one store instead; each rule works in its own
//! goals, so the rules do not see each other's runs and the store can be
//! inspected (or reopened) afterwards.
//!
//! Every trait method is exercised: `create_runs` (all or nothing, key
//! uniqueness, fork resolution), `append` (fencing before the expected seq,
//! per-batch outcomes within one atomic call, unknown runs, snapshots),
//! `sync`, `run`, `find`, `list` (filters, key order), `max_episode`, `scan`
//! (bounds, order, early stop), `latest_snapshot`, `children`, `delete_runs`
//! and `replace_snapshots`; and the visibility invariant "a reader that sees a
//! head sees every event before it, and never part of an append call".
#![expect(
    clippy::missing_panics_doc,
    reason = "a conformance suite: every check panics on a store that does not conform, which is its purpose"
)]
#![expect(
    clippy::unwrap_used,
    reason = "test support: a failing store call fails the test that made it"
)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::chain_writer::ChainWriter;
use crate::codec::DEFAULT_MAX_EVENT_SIZE;
use crate::event::{Event, RunMeta};
use crate::hash::ChainHash;
use crate::key::RunKey;
use crate::store::{
    AppendBatch, AppendRejection, ForkBase, Head, KeyExists, NewRun, RunFilter, RunId, RunRecord, RunStatus,
    ScanControl, SnapshotRecord, Store,
};

/// What a conformance test runs against: a store, or a value that owns one
/// together with what it needs (a temporary directory, a scratch database).
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// The agent of every run the rules create (unless a rule names another).
pub const AGENT: &str = "agent";

/// The key `(goal, episode, AGENT)`.
pub fn key(goal: &str, episode: u32) -> RunKey {
    agent_key(goal, episode, AGENT)
}

/// The key `(goal, episode, agent)`.
pub fn agent_key(goal: &str, episode: u32, agent: &str) -> RunKey {
    RunKey::new(goal, episode, agent).unwrap()
}

/// A run to create: its `run_started` at seq 0, epoch 0, ts 1.
pub fn new_run(key: &RunKey) -> NewRun {
    let encoded = ChainWriter::starting(key.clone(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE)
        .append(
            0,
            1,
            Event::RunStarted {
                meta: RunMeta::default(),
            },
        )
        .unwrap();
    NewRun {
        key: key.clone(),
        created_ts: 1,
        records: vec![encoded.record],
        head: encoded.head,
        status: RunStatus::Running,
        fork: None,
        supersedes: None,
    }
}

/// A run to create as a fork of `parent_key` after its seq `seq`, whose
/// chain hash there is `hash`; `parent` is the parent's id (ignored when the
/// parent is created in the same call).
pub fn fork_run(key: &RunKey, parent: RunId, parent_key: &RunKey, seq: u64, hash: ChainHash) -> NewRun {
    NewRun {
        fork: Some(ForkBase {
            parent,
            parent_key: parent_key.clone(),
            seq,
            hash,
        }),
        ..new_run(key)
    }
}

/// A batch of `events` `turn_completed` events chained after `record`'s head,
/// from `expected_seq`, written with `epoch` at ts 2.
pub fn batch(record: &RunRecord, expected_seq: u64, epoch: u64, events: usize) -> AppendBatch {
    let head = Head {
        next_seq: expected_seq,
        ..record.head
    };
    let mut writer = ChainWriter::new(record.key.clone(), head, DEFAULT_MAX_EVENT_SIZE);
    let records = (0..events)
        .map(|_| writer.append(epoch, 2, Event::TurnCompleted).unwrap().record)
        .collect();
    AppendBatch {
        run: record.id,
        expected_seq,
        epoch,
        records,
        head_after: Head {
            next_seq: expected_seq + events as u64,
            hash: writer.head().hash,
            epoch,
            last_ts: 2,
        },
        status_after: RunStatus::Running,
        snapshot: None,
    }
}

/// `record` as it stands once `batch` is applied to it.
pub fn after(record: &RunRecord, batch: &AppendBatch) -> RunRecord {
    RunRecord {
        head: batch.head_after,
        status: batch.status_after,
        ..record.clone()
    }
}

/// Creates one run and returns its record.
pub fn create(store: &dyn Store, run: &NewRun) -> RunRecord {
    store.create_runs(std::slice::from_ref(run)).unwrap().unwrap().remove(0)
}

/// The seqs `scan` visits in the whole run.
pub fn seqs(store: &dyn Store, record: &RunRecord) -> Vec<u64> {
    scanned(store, record.id, 0, u64::MAX)
        .into_iter()
        .map(|(seq, _)| seq)
        .collect()
}

/// The stored bytes of the whole run, in seq order.
pub fn records(store: &dyn Store, run: RunId) -> Vec<Vec<u8>> {
    scanned(store, run, 0, u64::MAX)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// What `scan(run, from_seq, end_seq)` visits.
pub fn scanned(store: &dyn Store, run: RunId, from_seq: u64, end_seq: u64) -> Vec<(u64, Vec<u8>)> {
    let mut visited = Vec::new();
    store
        .scan(run, from_seq, end_seq, &mut |seq, bytes| {
            visited.push((seq, bytes.to_vec()));
            ScanControl::Continue
        })
        .unwrap();
    visited
}

fn keys(records: Vec<RunRecord>) -> Vec<RunKey> {
    records.into_iter().map(|record| record.key).collect()
}

fn goal_filter(goal: &str) -> RunFilter {
    RunFilter {
        goal: Some(goal.into()),
        ..RunFilter::default()
    }
}

/// An id no run of this store has: far above every id in `known`.
fn unknown_id(known: &[RunId]) -> RunId {
    known.iter().copied().max().unwrap_or(0) + 1_000_000
}

/// A key exists at most once; a create that names an existing key, or one
/// key twice, creates nothing.
pub fn creating_runs_is_all_or_nothing(store: &dyn Store) {
    let created = store.create_runs(&[new_run(&key("a", 0))]).unwrap().unwrap();
    assert_eq!(created[0].head.next_seq, 1);
    let outcome = store
        .create_runs(&[new_run(&key("b", 0)), new_run(&key("a", 0))])
        .unwrap();
    assert_eq!(outcome, Err(KeyExists(key("a", 0))));
    assert!(
        store.find(&key("b", 0)).unwrap().is_none(),
        "nothing of a refused create is stored"
    );
    let twice = store
        .create_runs(&[new_run(&key("c", 0)), new_run(&key("c", 0))])
        .unwrap();
    assert_eq!(twice, Err(KeyExists(key("c", 0))));
    assert!(
        store.find(&key("c", 0)).unwrap().is_none(),
        "a key named twice in one create is not stored once"
    );
}

/// Keys differing in any part are different runs; the same key again is refused.
pub fn a_key_exists_at_most_once(store: &dyn Store) {
    let first = create(store, &new_run(&agent_key("unique", 0, "one")));
    let other_agent = create(store, &new_run(&agent_key("unique", 0, "two")));
    let other_episode = create(store, &new_run(&agent_key("unique", 1, "one")));
    let ids: BTreeSet<RunId> = [first.id, other_agent.id, other_episode.id].into_iter().collect();
    assert_eq!(ids.len(), 3, "every run has its own id");
    let again = store.create_runs(&[new_run(&agent_key("unique", 0, "one"))]).unwrap();
    assert_eq!(again, Err(KeyExists(agent_key("unique", 0, "one"))));
    assert_eq!(store.list(&goal_filter("unique")).unwrap().len(), 3);
}

/// A created run reads back, by id and by key, as the record `create_runs`
/// returned, with exactly the given records from seq 0.
pub fn created_runs_read_back_by_id_and_key(store: &dyn Store) {
    let runs = [new_run(&key("read-back", 0)), new_run(&key("read-back", 1))];
    let created = store.create_runs(&runs).unwrap().unwrap();
    assert_eq!(created.len(), 2, "one record per created run, in order");
    for (run, record) in runs.iter().zip(&created) {
        assert_eq!(record.key, run.key);
        assert_eq!(record.created_ts, run.created_ts);
        assert_eq!(record.head, run.head);
        assert_eq!(record.status, run.status);
        assert_eq!(record.fork, None);
        assert_eq!(store.run(record.id).unwrap().as_ref(), Some(record), "run(id)");
        assert_eq!(store.find(&run.key).unwrap().as_ref(), Some(record), "find(key)");
        assert_eq!(
            records(store, record.id),
            run.records,
            "the stored bytes are the given bytes"
        );
    }
    assert_ne!(created[0].id, created[1].id);
    assert_eq!(store.find(&key("read-back", 2)).unwrap(), None);
    let ids: Vec<RunId> = created.iter().map(|record| record.id).collect();
    assert_eq!(store.run(unknown_id(&ids)).unwrap(), None);
}

/// A fork names its parent: created in the same call (resolved by key, the
/// given id ignored) or earlier (by id); the parent lists its forks by id.
pub fn forks_resolve_their_parent_and_list_as_children(store: &dyn Store) {
    let parent = new_run(&key("fork", 0));
    let child = fork_run(&key("fork", 1), 987_654_321, &parent.key, 0, parent.head.hash);
    let created = store.create_runs(&[parent.clone(), child]).unwrap().unwrap();
    let (parent_record, child_record) = (&created[0], &created[1]);
    let expected = ForkBase {
        parent: parent_record.id,
        parent_key: parent.key.clone(),
        seq: 0,
        hash: parent.head.hash,
    };
    assert_eq!(
        child_record.fork.as_ref(),
        Some(&expected),
        "a parent created in the same call gets its new id"
    );
    assert_eq!(
        store.run(child_record.id).unwrap().unwrap().fork.as_ref(),
        Some(&expected)
    );
    assert_eq!(
        store.find(&key("fork", 1)).unwrap().unwrap().fork.as_ref(),
        Some(&expected)
    );
    let later = create(
        store,
        &fork_run(&key("fork", 2), parent_record.id, &parent.key, 0, parent.head.hash),
    );
    assert_eq!(later.fork.as_ref().map(|fork| fork.parent), Some(parent_record.id));
    assert_eq!(
        store.children(parent_record.id).unwrap(),
        vec![child_record.id, later.id],
        "children are the forks' ids, in id order"
    );
    assert_eq!(store.children(child_record.id).unwrap(), Vec::<RunId>::new());
    assert_eq!(store.run(parent_record.id).unwrap().unwrap().fork, None);
}

/// An append applies only when its epoch is at least the run's and its
/// expected seq is the run's next seq; a rejected batch writes nothing.
pub fn appends_are_conditional_on_seq_and_epoch(store: &dyn Store) {
    let record = store
        .create_runs(&[new_run(&key("cond", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(store.append(&[batch(&record, 1, 0, 2)]).unwrap(), vec![Ok(())]);
    let record = store.find(&key("cond", 0)).unwrap().unwrap();
    assert_eq!(record.head.next_seq, 3);
    let stale_seq = store.append(&[batch(&record, 1, 0, 1)]).unwrap();
    assert_eq!(
        stale_seq,
        vec![Err(AppendRejection::Conflict { expected: 1, actual: 3 })]
    );
    assert_eq!(
        store.append(&[batch(&record, 3, 1, 1)]).unwrap(),
        vec![Ok(())],
        "a newer epoch may write"
    );
    let record = store.find(&key("cond", 0)).unwrap().unwrap();
    let fenced = store.append(&[batch(&record, 4, 0, 1)]).unwrap();
    assert_eq!(fenced, vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })]);
    let both_stale = store.append(&[batch(&record, 0, 0, 1)]).unwrap();
    assert!(
        matches!(both_stale[0], Err(AppendRejection::Fenced { .. })),
        "fencing is checked first"
    );
    assert_eq!(seqs(store, &record), vec![0, 1, 2, 3], "rejected batches wrote nothing");
}

/// Fencing is decided before the expected seq: an old epoch is `Fenced`
/// whatever seq it names; a current or newer epoch with a wrong seq is a
/// `Conflict`; a newer epoch becomes the run's epoch.
pub fn fencing_is_checked_before_the_expected_seq(store: &dyn Store) {
    let record = create(store, &new_run(&key("fence", 0)));
    let resume = batch(&record, 1, 1, 1);
    assert_eq!(store.append(std::slice::from_ref(&resume)).unwrap(), vec![Ok(())]);
    let record = store.run(record.id).unwrap().unwrap();
    assert_eq!(record.head.epoch, 1);
    for (expected_seq, what) in [(0, "a stale seq"), (2, "the right seq"), (7, "a future seq")] {
        assert_eq!(
            store.append(&[batch(&record, expected_seq, 0, 1)]).unwrap(),
            vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })],
            "an older epoch with {what} is fenced"
        );
    }
    assert_eq!(
        store.append(&[batch(&record, 5, 1, 1)]).unwrap(),
        vec![Err(AppendRejection::Conflict { expected: 5, actual: 2 })]
    );
    assert_eq!(
        store.append(&[batch(&record, 5, 3, 1)]).unwrap(),
        vec![Err(AppendRejection::Conflict { expected: 5, actual: 2 })],
        "a newer epoch with a wrong seq is a conflict, and does not raise the epoch"
    );
    assert_eq!(store.run(record.id).unwrap().unwrap().head.epoch, 1);
    let jump = batch(&record, 2, 5, 1);
    assert_eq!(store.append(std::slice::from_ref(&jump)).unwrap(), vec![Ok(())]);
    let record = store.run(record.id).unwrap().unwrap();
    assert_eq!(record.head, jump.head_after);
    assert_eq!(
        store.append(&[batch(&record, 3, 4, 1)]).unwrap(),
        vec![Err(AppendRejection::Fenced { epoch: 4, current: 5 })]
    );
    assert_eq!(seqs(store, &record), vec![0, 1, 2]);
}

/// The batches of one call apply in order: a later batch sees the earlier ones.
pub fn batches_of_one_call_apply_in_order(store: &dyn Store) {
    let record = store
        .create_runs(&[new_run(&key("order", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    let first = batch(&record, 1, 0, 1);
    let mut after_first = record.clone();
    after_first.head = first.head_after;
    let second = batch(&after_first, 2, 0, 3);
    let outcomes = store.append(&[first.clone(), second, first]).unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Ok(()),
            Err(AppendRejection::Conflict { expected: 1, actual: 5 })
        ]
    );
    assert_eq!(seqs(store, &record), vec![0, 1, 2, 3, 4]);
}

/// Independent batches ([`Store::append_independent`]) keep every rule of
/// [`Store::append`] visible to a live store: in order, each conditional,
/// each run's accepted batches stored with their records, head and status.
pub fn independent_batches_apply_in_order_and_conditionally(store: &dyn Store) {
    let created = store
        .create_runs(&[new_run(&key("independent", 0)), new_run(&key("independent", 1))])
        .unwrap()
        .unwrap();
    let (first, second) = (&created[0], &created[1]);
    let a = batch(first, 1, 0, 2);
    let b = batch(second, 1, 0, 1);
    let a_again = batch(&after(first, &a), 3, 0, 1);
    let stale = batch(second, 1, 0, 1);
    let outcomes = store
        .append_independent(&[a.clone(), b.clone(), a_again.clone(), stale])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Err(AppendRejection::Conflict { expected: 1, actual: 2 })
        ]
    );
    let first_after = after(&after(first, &a), &a_again);
    assert_eq!(store.run(first.id).unwrap(), Some(first_after.clone()));
    assert_eq!(store.run(second.id).unwrap(), Some(after(second, &b)));
    assert_eq!(seqs(store, &first_after), vec![0, 1, 2, 3]);
    let mut expected = new_run(&key("independent", 0)).records;
    expected.extend(a.records.iter().chain(&a_again.records).cloned());
    assert_eq!(
        records(store, first.id),
        expected,
        "the stored bytes are the given bytes"
    );
}

/// A rejected batch (conflict, unknown run) writes nothing, and the other
/// batches of its call are applied all the same.
pub fn a_rejected_batch_leaves_the_other_batches_of_its_call_applied(store: &dyn Store) {
    let created = store
        .create_runs(&[new_run(&key("mixed", 0)), new_run(&key("mixed", 1))])
        .unwrap()
        .unwrap();
    let (first, second) = (&created[0], &created[1]);
    let mut unknown = batch(first, 1, 0, 1);
    unknown.run = unknown_id(&[first.id, second.id]);
    let applied_first = batch(first, 1, 0, 1);
    let applied_second = batch(second, 1, 0, 2);
    let outcomes = store
        .append(&[
            applied_first.clone(),
            batch(second, 5, 0, 1),
            unknown,
            applied_second.clone(),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Err(AppendRejection::Conflict { expected: 5, actual: 1 }),
            Err(AppendRejection::UnknownRun),
            Ok(())
        ]
    );
    assert_eq!(seqs(store, first), vec![0, 1]);
    assert_eq!(seqs(store, second), vec![0, 1, 2]);
    assert_eq!(store.run(first.id).unwrap().unwrap(), after(first, &applied_first));
    assert_eq!(store.run(second.id).unwrap().unwrap(), after(second, &applied_second));
}

/// An accepted batch stores its records byte for byte and its head and
/// status; `sync` then succeeds and changes nothing visible.
pub fn appends_store_their_records_head_and_status(store: &dyn Store) {
    let record = create(store, &new_run(&key("stored", 0)));
    let mut finishing = batch(&record, 1, 0, 3);
    finishing.status_after = RunStatus::Completed;
    finishing.head_after.last_ts = 77;
    assert_eq!(store.append(std::slice::from_ref(&finishing)).unwrap(), vec![Ok(())]);
    let expected = after(&record, &finishing);
    assert_eq!(store.run(record.id).unwrap().as_ref(), Some(&expected));
    assert_eq!(store.find(&record.key).unwrap().as_ref(), Some(&expected));
    let mut stored = new_run(&record.key).records;
    stored.extend(finishing.records.iter().cloned());
    assert_eq!(records(store, record.id), stored);
    store.sync().unwrap();
    assert_eq!(store.run(record.id).unwrap().as_ref(), Some(&expected));
    assert_eq!(records(store, record.id), stored);
}

/// The calls of this many appends race the reader in
/// [`a_reader_never_sees_part_of_an_append_call`].
const RACED_CALLS: u64 = 40;

/// A reader that sees a head sees every event before it, and never sees the
/// head between two batches of one append call (a call is atomic).
pub fn a_reader_never_sees_part_of_an_append_call(store: &dyn Store) {
    let record = create(store, &new_run(&key("atomic", 0)));
    let observed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut current = record.clone();
            for _ in 0..RACED_CALLS {
                let first = batch(&current, current.head.next_seq, 0, 2);
                let between = after(&current, &first);
                let second = batch(&between, between.head.next_seq, 0, 2);
                assert_eq!(store.append(&[first, second.clone()]).unwrap(), vec![Ok(()), Ok(())]);
                current = after(&between, &second);
            }
        });
        loop {
            let finished = writer.is_finished();
            let head = store.run(record.id).unwrap().unwrap().head;
            assert_eq!(
                (head.next_seq - 1) % 4,
                0,
                "a reader saw next seq {}: part of a call of two 2-event batches",
                head.next_seq
            );
            let seen: Vec<u64> = scanned(store, record.id, 0, head.next_seq)
                .into_iter()
                .map(|(seq, _)| seq)
                .collect();
            assert_eq!(
                seen,
                (0..head.next_seq).collect::<Vec<u64>>(),
                "a reader that sees a head sees every event before it"
            );
            observed.fetch_add(1, Ordering::Relaxed);
            if finished {
                break;
            }
        }
        writer.join().unwrap();
    });
    assert!(observed.load(Ordering::Relaxed) > 0);
    assert_eq!(
        store.run(record.id).unwrap().unwrap().head.next_seq,
        1 + 4 * RACED_CALLS
    );
}

/// `list` returns the runs passing its filter, ordered by key; `max_episode`
/// is the highest episode of a goal, of one agent or of all.
pub fn listing_and_episodes(store: &dyn Store) {
    for (goal, episode) in [("list", 0), ("list", 3), ("list-other", 9)] {
        store.create_runs(&[new_run(&key(goal, episode))]).unwrap().unwrap();
    }
    let goal = RunFilter {
        goal: Some("list".into()),
        ..RunFilter::default()
    };
    let keys: Vec<RunKey> = store
        .list(&goal)
        .unwrap()
        .into_iter()
        .map(|record| record.key)
        .collect();
    assert_eq!(keys, vec![key("list", 0), key("list", 3)]);
    assert_eq!(store.max_episode("list", Some("agent")).unwrap(), Some(3));
    assert_eq!(store.max_episode("list", Some("nobody")).unwrap(), None);
    assert_eq!(store.max_episode("list-other", None).unwrap(), Some(9));
}

/// Every filter of `list` (goal, agent, status, together) and its order by
/// key `(goal, agent, episode)`; `max_episode` over the whole `u32` range.
pub fn list_filters_by_goal_agent_and_status_in_key_order(store: &dyn Store) {
    let (agent_a, agent_b) = ("filter-agent-a", "filter-agent-b");
    for (goal, episode, agent) in [
        ("filter", 2, agent_b),
        ("filter-x", 4_000_000_000, agent_a),
        ("filter", 0, agent_b),
        ("filter", 1, agent_a),
        ("filter-x", 0, agent_a),
    ] {
        create(store, &new_run(&agent_key(goal, episode, agent)));
    }
    let done = store.find(&agent_key("filter", 0, agent_b)).unwrap().unwrap();
    let mut completing = batch(&done, 1, 0, 1);
    completing.status_after = RunStatus::Completed;
    assert_eq!(store.append(&[completing]).unwrap(), vec![Ok(())]);

    assert_eq!(
        keys(store.list(&goal_filter("filter")).unwrap()),
        vec![
            agent_key("filter", 1, agent_a),
            agent_key("filter", 0, agent_b),
            agent_key("filter", 2, agent_b)
        ],
        "a goal's runs, ordered by agent then episode; another goal sharing its prefix is not included"
    );
    let by_agent = RunFilter {
        agent: Some(agent_a.into()),
        ..RunFilter::default()
    };
    assert_eq!(
        keys(store.list(&by_agent).unwrap()),
        vec![
            agent_key("filter", 1, agent_a),
            agent_key("filter-x", 0, agent_a),
            agent_key("filter-x", 4_000_000_000, agent_a)
        ]
    );
    let goal_and_agent = RunFilter {
        agent: Some(agent_b.into()),
        ..goal_filter("filter")
    };
    assert_eq!(
        keys(store.list(&goal_and_agent).unwrap()),
        vec![agent_key("filter", 0, agent_b), agent_key("filter", 2, agent_b)]
    );
    let completed = RunFilter {
        status: Some(RunStatus::Completed),
        ..goal_filter("filter")
    };
    let completed_runs = store.list(&completed).unwrap();
    assert_eq!(keys(completed_runs.clone()), vec![agent_key("filter", 0, agent_b)]);
    assert_eq!(completed_runs[0].status, RunStatus::Completed);
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..goal_filter("filter")
    };
    assert_eq!(
        keys(store.list(&running).unwrap()),
        vec![agent_key("filter", 1, agent_a), agent_key("filter", 2, agent_b)]
    );
    let failed = RunFilter {
        status: Some(RunStatus::Failed),
        ..RunFilter::default()
    };
    assert!(keys(store.list(&failed).unwrap()).is_empty());

    let everything = store.list(&RunFilter::default()).unwrap();
    let order: Vec<Vec<u8>> = everything.iter().map(|record| record.key.canonical_bytes()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "an unfiltered list is ordered by key too");
    assert_eq!(
        everything
            .iter()
            .filter(|record| record.key.goal.starts_with("filter"))
            .count(),
        5
    );

    assert_eq!(store.max_episode("filter", Some(agent_a)).unwrap(), Some(1));
    assert_eq!(store.max_episode("filter", Some(agent_b)).unwrap(), Some(2));
    assert_eq!(store.max_episode("filter", None).unwrap(), Some(2));
    assert_eq!(store.max_episode("filter-x", None).unwrap(), Some(4_000_000_000));
    assert_eq!(
        store.max_episode("filter-", None).unwrap(),
        None,
        "a goal is not a prefix"
    );
    assert_eq!(store.max_episode("filter-absent", Some(agent_a)).unwrap(), None);
}

/// Events of the run [`scan_visits_seqs_in_order_within_its_bounds_and_stops_early`]
/// reads (more than a page of a paging store).
const SCANNED_EVENTS: u64 = 300;

/// `scan` visits the run's own records in seq order, from `from_seq` up to
/// (excluding) `end_seq`, stops when told to, and visits nothing of an
/// empty range or an unknown run.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a small test event count; 64-bit targets"
)]
pub fn scan_visits_seqs_in_order_within_its_bounds_and_stops_early(store: &dyn Store) {
    let record = create(store, &new_run(&key("scan", 0)));
    let appended = batch(&record, 1, 0, (SCANNED_EVENTS - 1) as usize);
    assert_eq!(store.append(std::slice::from_ref(&appended)).unwrap(), vec![Ok(())]);
    let mut expected = new_run(&record.key).records;
    expected.extend(appended.records.iter().cloned());

    let whole = scanned(store, record.id, 0, u64::MAX);
    assert_eq!(
        whole.iter().map(|(seq, _)| *seq).collect::<Vec<u64>>(),
        (0..SCANNED_EVENTS).collect::<Vec<u64>>()
    );
    assert_eq!(whole.into_iter().map(|(_, bytes)| bytes).collect::<Vec<_>>(), expected);

    let middle: Vec<u64> = scanned(store, record.id, 3, 7)
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(middle, vec![3, 4, 5, 6], "from_seq included, end_seq excluded");
    let tail: Vec<u64> = scanned(store, record.id, SCANNED_EVENTS - 2, u64::MAX)
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(tail, vec![SCANNED_EVENTS - 2, SCANNED_EVENTS - 1]);
    for (from_seq, end_seq) in [(7, 7), (8, 3), (SCANNED_EVENTS, u64::MAX), (u64::MAX, u64::MAX)] {
        assert!(
            scanned(store, record.id, from_seq, end_seq).is_empty(),
            "scan({from_seq}, {end_seq}) visits nothing"
        );
    }

    for stop_after in [1usize, 2, 260] {
        let mut visited = Vec::new();
        store
            .scan(record.id, 0, u64::MAX, &mut |seq, _| {
                visited.push(seq);
                if visited.len() == stop_after {
                    ScanControl::Stop
                } else {
                    ScanControl::Continue
                }
            })
            .unwrap();
        assert_eq!(
            visited,
            (0..stop_after as u64).collect::<Vec<u64>>(),
            "a scan stops right after the visit that says Stop"
        );
    }

    let mut visits = 0;
    store
        .scan(unknown_id(&[record.id]), 0, u64::MAX, &mut |_, _| {
            visits += 1;
            ScanControl::Continue
        })
        .unwrap();
    assert_eq!(visits, 0, "an unknown run has no records");
}

fn snapshot(seq: u64, bytes: &[u8]) -> SnapshotRecord {
    SnapshotRecord {
        seq,
        bytes: bytes.to_vec(),
    }
}

/// A run keeps only its newest snapshot: one stored with an accepted batch
/// (the last of a call wins) or by `replace_snapshots` replaces the older
/// ones; a rejected batch's snapshot is not stored; `latest_snapshot` finds
/// the newest at or before a seq; snapshots belong to their run.
pub fn snapshots_keep_only_the_newest_and_are_replaced(store: &dyn Store) {
    let created = store
        .create_runs(&[new_run(&key("snap", 0)), new_run(&key("snap", 1))])
        .unwrap()
        .unwrap();
    let (record, neighbour) = (&created[0], &created[1]);
    assert_eq!(store.latest_snapshot(record.id, u64::MAX).unwrap(), None);

    let mut with_snapshot = batch(record, 1, 0, 3);
    with_snapshot.snapshot = Some(snapshot(2, b"at 2"));
    assert_eq!(
        store.append(std::slice::from_ref(&with_snapshot)).unwrap(),
        vec![Ok(())]
    );
    assert_eq!(
        store.latest_snapshot(record.id, u64::MAX).unwrap(),
        Some(snapshot(2, b"at 2"))
    );
    assert_eq!(store.latest_snapshot(record.id, 2).unwrap(), Some(snapshot(2, b"at 2")));
    assert_eq!(
        store.latest_snapshot(record.id, 1).unwrap(),
        None,
        "none at or before seq 1"
    );

    let record = after(record, &with_snapshot);
    let mut first = batch(&record, 4, 0, 1);
    first.snapshot = Some(snapshot(4, b"at 4"));
    let between = after(&record, &first);
    let mut second = batch(&between, 5, 0, 1);
    second.snapshot = Some(snapshot(5, b"at 5"));
    assert_eq!(store.append(&[first, second.clone()]).unwrap(), vec![Ok(()), Ok(())]);
    assert_eq!(
        store.latest_snapshot(record.id, u64::MAX).unwrap(),
        Some(snapshot(5, b"at 5")),
        "the last snapshot of a call is the run's"
    );
    assert_eq!(
        store.latest_snapshot(record.id, 4).unwrap(),
        None,
        "an older snapshot is replaced, not kept"
    );

    let record = after(&between, &second);
    let mut rejected = batch(&record, 2, 0, 1);
    rejected.snapshot = Some(snapshot(9, b"rejected"));
    assert!(store.append(&[rejected]).unwrap()[0].is_err());
    assert_eq!(
        store.latest_snapshot(record.id, u64::MAX).unwrap(),
        Some(snapshot(5, b"at 5"))
    );

    let mut neighbours = batch(neighbour, 1, 0, 1);
    neighbours.snapshot = Some(snapshot(1, b"neighbour"));
    assert_eq!(store.append(&[neighbours]).unwrap(), vec![Ok(())]);

    store
        .replace_snapshots(record.id, Some(snapshot(3, b"rebuilt")))
        .unwrap();
    assert_eq!(
        store.latest_snapshot(record.id, u64::MAX).unwrap(),
        Some(snapshot(3, b"rebuilt"))
    );
    assert_eq!(store.latest_snapshot(record.id, 2).unwrap(), None);
    store.replace_snapshots(record.id, None).unwrap();
    assert_eq!(store.latest_snapshot(record.id, u64::MAX).unwrap(), None);
    assert_eq!(
        store.latest_snapshot(neighbour.id, u64::MAX).unwrap(),
        Some(snapshot(1, b"neighbour")),
        "another run's snapshot is untouched"
    );
    assert_eq!(
        store.run(record.id).unwrap().unwrap().head.next_seq,
        6,
        "replacing snapshots changes no events"
    );
}

/// `delete_runs` removes the runs with their events, snapshots and lineage,
/// returns at least the bytes of their records and snapshots, ignores
/// unknown ids and leaves other runs alone; a deleted key may be created
/// again, under an id never issued before.
pub fn deleting_runs_removes_their_events_snapshots_and_lineage(store: &dyn Store) {
    let parent = new_run(&key("delete", 0));
    let created = store
        .create_runs(&[
            parent.clone(),
            fork_run(&key("delete", 1), 0, &parent.key, 0, parent.head.hash),
            new_run(&key("delete", 2)),
        ])
        .unwrap()
        .unwrap();
    let (parent_record, child, bystander) = (&created[0], &created[1], &created[2]);
    let mut issued: Vec<RunId> = created.iter().map(|record| record.id).collect();
    let mut appended = batch(child, 1, 0, 2);
    appended.snapshot = Some(snapshot(2, b"child snapshot"));
    assert_eq!(store.append(std::slice::from_ref(&appended)).unwrap(), vec![Ok(())]);
    assert_eq!(store.children(parent_record.id).unwrap(), vec![child.id]);

    let stored_bytes: u64 = records(store, child.id)
        .iter()
        .map(|bytes| bytes.len() as u64)
        .sum::<u64>()
        + b"child snapshot".len() as u64;
    let freed = store.delete_runs(&[child.id]).unwrap();
    assert!(
        freed >= stored_bytes,
        "freed {freed} bytes, fewer than the {stored_bytes} stored"
    );
    assert_eq!(store.run(child.id).unwrap(), None);
    assert_eq!(store.find(&child.key).unwrap(), None);
    assert!(records(store, child.id).is_empty(), "its events are gone");
    assert_eq!(store.latest_snapshot(child.id, u64::MAX).unwrap(), None);
    assert_eq!(store.children(parent_record.id).unwrap(), Vec::<RunId>::new());
    assert_eq!(store.run(parent_record.id).unwrap().as_ref(), Some(parent_record));
    assert_eq!(seqs(store, bystander), vec![0]);

    assert_eq!(
        store.delete_runs(&[child.id]).unwrap(),
        0,
        "a deleted run frees nothing twice"
    );
    assert_eq!(store.delete_runs(&[]).unwrap(), 0);
    assert_eq!(store.delete_runs(&[unknown_id(&issued)]).unwrap(), 0);

    let again = create(store, &new_run(&child.key));
    assert!(!issued.contains(&again.id), "run ids are never reused");
    issued.push(again.id);
    assert_eq!(seqs(store, &again), vec![0], "a re-created key starts a new log");

    assert!(store.delete_runs(&[parent_record.id, bystander.id]).unwrap() > 0);
    assert_eq!(
        keys(store.list(&goal_filter("delete")).unwrap()),
        vec![child.key.clone()]
    );
}

/// An import's staged runs are invisible until published, published all or
/// nothing (a taken key publishes none of them), and discarded without a trace.
pub fn staged_runs_are_invisible_until_published_all_or_nothing(store: &dyn Store) {
    let taken = create(store, &new_run(&key("staged", 0)));
    let stage = |episode: u32| {
        let run = new_run(&key("staged", episode));
        let id = store.reserve_run_id().unwrap();
        store.stage(id, 0, &run.records).unwrap();
        RunRecord {
            id,
            key: run.key,
            created_ts: run.created_ts,
            head: run.head,
            status: run.status,
            fork: None,
        }
    };
    let staged = stage(1);
    assert_ne!(staged.id, taken.id, "a reserved id is never a run's id");
    assert_eq!(store.find(&staged.key).unwrap(), None, "a staged run is invisible");
    let clash = stage(0);
    assert_eq!(
        store.publish_staged(&[staged.clone(), clash.clone()]).unwrap(),
        Err(KeyExists(key("staged", 0)))
    );
    assert_eq!(
        store.find(&staged.key).unwrap(),
        None,
        "a refused publication publishes nothing"
    );
    assert_eq!(store.run(taken.id).unwrap().as_ref(), Some(&taken));
    store.discard_staged(&[clash.id]).unwrap();
    assert_eq!(store.publish_staged(std::slice::from_ref(&staged)).unwrap(), Ok(()));
    assert_eq!(store.find(&staged.key).unwrap().as_ref(), Some(&staged));
    assert_eq!(records(store, staged.id), new_run(&staged.key).records);
    assert_eq!(records(store, taken.id), new_run(&taken.key).records);
}

/// A rewind: creating a run may supersede another in the same atomic step;
/// the superseded run keeps its events and head but its status is
/// `superseded` and its epoch one higher, so its old writers are fenced. A
/// refused creation supersedes nothing.
pub fn a_creation_supersedes_the_run_it_names_in_the_same_step(store: &dyn Store) {
    let original = create(store, &new_run(&key("supersede", 0)));
    assert_eq!(store.append(&[batch(&original, 1, 0, 2)]).unwrap(), vec![Ok(())]);
    let before = store.run(original.id).unwrap().unwrap();
    // A refused creation (its key exists) leaves the original as it was.
    let refused = NewRun {
        supersedes: Some(original.id),
        ..new_run(&key("supersede", 0))
    };
    assert_eq!(
        store.create_runs(&[refused]).unwrap(),
        Err(KeyExists(key("supersede", 0)))
    );
    assert_eq!(store.run(original.id).unwrap().unwrap(), before);
    let branch = NewRun {
        supersedes: Some(original.id),
        ..new_run(&key("supersede", 1))
    };
    let created = store.create_runs(&[branch]).unwrap().unwrap();
    assert_eq!(created[0].status, RunStatus::Running);
    let after = store.run(original.id).unwrap().unwrap();
    assert_eq!(after.status, RunStatus::Superseded);
    assert_eq!(after.head.epoch, before.head.epoch + 1);
    assert_eq!(after.head.next_seq, before.head.next_seq);
    assert_eq!(after.head.hash, before.head.hash);
    assert_eq!(seqs(store, &after), vec![0, 1, 2]);
    assert_eq!(store.find(&key("supersede", 0)).unwrap().unwrap(), after);
    assert_eq!(
        store.append(&[batch(&before, 3, 0, 1)]).unwrap(),
        vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })],
        "the superseded run's old writer is fenced"
    );
}

#[doc(hidden)]
#[macro_export]
/// Calls `$callback` with every rule's name (the one list of rules).
macro_rules! __conformance_rules {
    ($callback:ident!($($args:tt)*)) => {
        $crate::$callback! {
            $($args)*
            creating_runs_is_all_or_nothing,
            a_creation_supersedes_the_run_it_names_in_the_same_step,
            staged_runs_are_invisible_until_published_all_or_nothing,
            a_key_exists_at_most_once,
            created_runs_read_back_by_id_and_key,
            forks_resolve_their_parent_and_list_as_children,
            appends_are_conditional_on_seq_and_epoch,
            fencing_is_checked_before_the_expected_seq,
            batches_of_one_call_apply_in_order,
            a_rejected_batch_leaves_the_other_batches_of_its_call_applied,
            independent_batches_apply_in_order_and_conditionally,
            appends_store_their_records_head_and_status,
            a_reader_never_sees_part_of_an_append_call,
            listing_and_episodes,
            list_filters_by_goal_agent_and_status_in_key_order,
            scan_visits_seqs_in_order_within_its_bounds_and_stops_early,
            snapshots_keep_only_the_newest_and_are_replaced,
            deleting_runs_removes_their_events_snapshots_and_lineage
        }
    };
}

#[doc(hidden)]
#[macro_export]
/// The table of [`RULES`](crate::testing::conformance::RULES).
macro_rules! __conformance_table {
    ($($rule:ident),*) => {
        &[$((stringify!($rule), $crate::testing::conformance::$rule as $crate::testing::conformance::Rule)),*]
    };
}

#[doc(hidden)]
#[macro_export]
/// One `#[test]` per rule over a fresh fixture from `$make`.
macro_rules! __conformance_test_fns {
    ($make:expr; $($rule:ident),*) => {
        $(
            #[test]
            fn $rule() {
                let fixture = ($make)();
                $crate::testing::conformance::$rule($crate::testing::conformance::Fixture::store(&fixture));
            }
        )*
    };
}

/// Generates one `#[test]` per conformance rule, named after the rule, each
/// over a fresh fixture made by calling `$make` (a store, or a
/// [`Fixture`](crate::testing::conformance::Fixture) that owns one).
///
/// ```ignore
/// runjournal_core::conformance_tests!(runjournal_core::MemoryStore::new);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_rules!(__conformance_test_fns!($make;));
    };
}

/// One rule of the contract: it panics when the store breaks the rule.
pub type Rule = fn(&dyn Store);

/// Every rule, by name, in the order [`run_all`] runs them.
pub const RULES: &[(&str, Rule)] = crate::__conformance_rules!(__conformance_table!());

/// Runs every rule on one store (each in its own goals).
pub fn run_all(store: &dyn Store) {
    for (_, rule) in RULES {
        rule(store);
    }
}
