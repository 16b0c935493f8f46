//! What only a shared database server shows: the versioned schema, two
//! store instances (two processes, or two machines) on one database, lost
//! connections, connection strings, and calls from async code.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use runjournal_core::testing::conformance::{after, batch, create, key, new_run, records, seqs};
use runjournal_core::{AppendRejection, KeyExists, MemoryStore, RunRecord, Store, StoreError};
use runjournal_postgres::schema::LATEST_VERSION;
use runjournal_postgres::testing::{test_server_url, with_dbname, TempServer, TestDatabase};
use runjournal_postgres::PostgresStore;

fn database() -> TestDatabase {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    TestDatabase::create(&server).unwrap()
}

fn admin(database: &TestDatabase) -> postgres::Client {
    postgres::Client::connect(database.url(), postgres::NoTls).unwrap()
}

/// Waits (bounded, without sleeping) until a session of `database` waits for a lock.
fn wait_for_a_blocked_session(admin: &mut postgres::Client, database: &TestDatabase) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&database.name()],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no session started waiting for the lock");
        std::thread::yield_now();
    }
}

#[test]
fn an_unknown_newer_schema_version_refuses_to_open_and_changes_nothing() {
    let database = database();
    drop(PostgresStore::open(database.url()).unwrap());
    let mut admin = admin(&database);
    admin
        .execute(
            "INSERT INTO runjournal_migrations (version, description) VALUES (999, 'from the future')",
            &[],
        )
        .unwrap();
    let error = PostgresStore::open(database.url()).err().unwrap();
    assert!(
        matches!(
            &error,
            StoreError::UnsupportedSchema { found: 999, supported, .. } if *supported == LATEST_VERSION
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("schema version 999"), "{message}");
    assert!(message.contains(database.name()), "the database is named: {message}");
    let versions: Vec<i64> = admin
        .query("SELECT version FROM runjournal_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = (1..=LATEST_VERSION).chain([999]).collect();
    assert_eq!(versions, expected, "a refused open applies nothing");
}

#[test]
fn opening_applies_each_migration_once_also_when_stores_open_at_once() {
    let database = database();
    let opened = Barrier::new(3);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                opened.wait();
                PostgresStore::open(database.url()).unwrap();
            });
        }
    });
    drop(PostgresStore::open(database.url()).unwrap());
    let versions: Vec<i64> = admin(&database)
        .query("SELECT version FROM runjournal_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=LATEST_VERSION).collect::<Vec<i64>>());
}

#[test]
fn a_resume_through_one_store_fences_the_other_stores_next_append() {
    let database = database();
    let first = PostgresStore::open(database.url()).unwrap();
    let second = PostgresStore::open(database.url()).unwrap();
    let record = create(&first, &new_run(&key("fenced", 0)));
    assert_eq!(first.append(&[batch(&record, 1, 0, 1)]).unwrap(), vec![Ok(())]);
    let seen_by_second = second.find(&record.key).unwrap().unwrap();
    assert_eq!(seen_by_second.head.next_seq, 2);
    let resume = batch(&seen_by_second, 2, 1, 1);
    assert_eq!(second.append(std::slice::from_ref(&resume)).unwrap(), vec![Ok(())]);
    let stale = after(&record, &batch(&record, 1, 0, 1));
    assert_eq!(
        first.append(&[batch(&stale, 2, 0, 1)]).unwrap(),
        vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })],
        "the old writer is fenced by the database, not by a lock in its process"
    );
    assert_eq!(first.run(record.id).unwrap().unwrap().head, resume.head_after);
    assert_eq!(seqs(&first, &record), vec![0, 1, 2]);
}

/// Inserts a run row for `goal` in an open transaction of `admin`, as a
/// create of another store would, and returns the transaction.
fn uncommitted_create<'a>(admin: &'a mut postgres::Client, goal: &str) -> postgres::Transaction<'a> {
    let mut transaction = admin.transaction().unwrap();
    let run_key = key(goal, 0);
    transaction
        .execute(
            "INSERT INTO runjournal_runs (key_bytes, goal, episode, agent, created_ts, next_seq, head_hash, epoch, \
                 last_ts, status) VALUES ($1, $2, 0, $3, 1, 0, $4, 0, 1, 'running')",
            &[
                &run_key.canonical_bytes(),
                &run_key.goal,
                &run_key.agent,
                &vec![0u8; 32],
            ],
        )
        .unwrap();
    transaction
}

#[test]
fn a_create_racing_a_committing_create_of_the_same_key_gets_key_exists() {
    let database = database();
    let store = PostgresStore::open(database.url()).unwrap();
    let mut other = admin(&database);
    let mut watcher = admin(&database);
    let transaction = uncommitted_create(&mut other, "raced");
    std::thread::scope(|scope| {
        let racing = scope.spawn(|| store.create_runs(&[new_run(&key("raced", 0))]).unwrap());
        wait_for_a_blocked_session(&mut watcher, &database);
        transaction.commit().unwrap();
        assert_eq!(racing.join().unwrap(), Err(KeyExists(key("raced", 0))));
    });
    assert_eq!(store.list(&runjournal_core::RunFilter::default()).unwrap().len(), 1);
}

#[test]
fn a_create_racing_a_create_that_rolls_back_creates_the_run() {
    let database = database();
    let store = PostgresStore::open(database.url()).unwrap();
    let mut other = admin(&database);
    let mut watcher = admin(&database);
    let transaction = uncommitted_create(&mut other, "abandoned");
    std::thread::scope(|scope| {
        let racing = scope.spawn(|| store.create_runs(&[new_run(&key("abandoned", 0))]).unwrap());
        wait_for_a_blocked_session(&mut watcher, &database);
        transaction.rollback().unwrap();
        let created = racing.join().unwrap().unwrap();
        assert_eq!(created[0].key, key("abandoned", 0));
    });
}

#[test]
fn two_stores_creating_the_same_key_at_once_make_one_run() {
    let database = database();
    let stores = [
        PostgresStore::open(database.url()).unwrap(),
        PostgresStore::open(database.url()).unwrap(),
    ];
    let start = Barrier::new(2);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    store.create_runs(&[new_run(&key("same", 0))]).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&Err(KeyExists(key("same", 0)))), "{outcomes:?}");
}

/// Appends `count` one-event batches to `record`'s run through `store`,
/// re-reading the head after each conflict; returns the conflicts seen.
fn append_with_retries(store: &PostgresStore, record: &RunRecord, count: usize) -> usize {
    let mut conflicts = 0;
    let mut appended = 0;
    while appended < count {
        let current = store.run(record.id).unwrap().unwrap();
        match store.append(&[batch(&current, current.head.next_seq, 0, 1)]).unwrap()[0] {
            Ok(()) => appended += 1,
            Err(AppendRejection::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("unexpected rejection {other:?}"),
        }
    }
    conflicts
}

#[test]
fn two_stores_appending_to_one_run_never_lose_or_duplicate_a_seq() {
    let database = database();
    let first = PostgresStore::open(database.url()).unwrap();
    let second = PostgresStore::open(database.url()).unwrap();
    let record = create(&first, &new_run(&key("contended", 0)));
    std::thread::scope(|scope| {
        scope.spawn(|| append_with_retries(&first, &record, 25));
        scope.spawn(|| append_with_retries(&second, &record, 25));
    });
    assert_eq!(seqs(&first, &record), (0..51).collect::<Vec<u64>>());
    assert_eq!(first.run(record.id).unwrap().unwrap().head.next_seq, 51);
}

#[test]
fn groups_naming_runs_in_opposite_orders_do_not_deadlock() {
    let database = database();
    let first = PostgresStore::open(database.url()).unwrap();
    let second = PostgresStore::open(database.url()).unwrap();
    let a = create(&first, &new_run(&key("order-a", 0)));
    let b = create(&first, &new_run(&key("order-b", 0)));
    let lane = |store: &PostgresStore, runs: [&RunRecord; 2]| {
        for _ in 0..20 {
            let heads: Vec<RunRecord> = runs.iter().map(|run| store.run(run.id).unwrap().unwrap()).collect();
            let group: Vec<_> = heads.iter().map(|head| batch(head, head.head.next_seq, 0, 1)).collect();
            for outcome in store.append(&group).unwrap() {
                assert!(
                    matches!(outcome, Ok(()) | Err(AppendRejection::Conflict { .. })),
                    "{outcome:?}"
                );
            }
        }
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| lane(&first, [&a, &b]));
        scope.spawn(|| lane(&second, [&b, &a]));
    });
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no group waited for deadlock detection"
    );
    for run in [&a, &b] {
        let head = first.run(run.id).unwrap().unwrap().head.next_seq;
        assert_eq!(seqs(&first, run), (0..head).collect::<Vec<u64>>());
    }
}

#[test]
fn a_lost_connection_is_a_typed_error_and_the_next_call_reconnects() {
    let database = database();
    let store = PostgresStore::open(database.url()).unwrap();
    let record = create(&store, &new_run(&key("lost", 0)));
    let terminated: i64 = admin(&database)
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'runjournal'",
            &[&database.name()],
        )
        .unwrap()
        .get(0);
    assert!(terminated >= 1, "the store's session was terminated");
    let error = store.run(record.id).err().unwrap();
    assert!(matches!(error, StoreError::Disconnected { .. }), "{error:?}");
    assert!(error.to_string().contains("nothing of it was applied"), "{error}");
    assert_eq!(
        store.run(record.id).unwrap().unwrap(),
        record,
        "the next call reconnects"
    );
}

#[test]
fn unix_socket_urls_and_key_value_strings_open_the_same_database() {
    let server = TempServer::shared().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(server.url()).unwrap();
    let socket = server.socket_dir().display().to_string();
    let encoded = socket.replace('/', "%2F");
    let forms = [
        database.url().to_owned(),
        format!("host={socket} user=postgres dbname={}", database.name()),
        format!("postgresql:///{}?host={socket}&user=postgres", database.name()),
        format!("postgres://postgres@{encoded}/{}", database.name()),
        with_dbname(&format!("postgres://postgres@{encoded}/postgres"), database.name()),
    ];
    let first = PostgresStore::open(&forms[0]).unwrap();
    let record = create(&first, &new_run(&key("socket", 0)));
    for form in &forms {
        let store = PostgresStore::open(form).unwrap_or_else(|error| panic!("{form}: {error}"));
        assert_eq!(store.find(&record.key).unwrap().as_ref(), Some(&record), "{form}");
        assert!(!store.database().contains("password"), "{}", store.database());
    }
}

#[test]
fn calls_from_inside_a_tokio_runtime_do_not_panic() {
    let database = database();
    let store = PostgresStore::open(database.url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let found = runtime.block_on(async {
        let record = create(&store, &new_run(&key("async", 0)));
        store.append(&[batch(&record, 1, 0, 1)]).unwrap();
        store.find(&record.key).unwrap()
    });
    assert_eq!(found.unwrap().head.next_seq, 2);
}

#[test]
fn stored_records_are_byte_identical_to_the_memory_store() {
    let database = database();
    let postgres = PostgresStore::open(database.url()).unwrap();
    let memory = MemoryStore::new();
    let mut stored = Vec::new();
    for store in [&postgres as &dyn Store, &memory] {
        let record = create(store, &new_run(&key("identical", 0)));
        let first = batch(&record, 1, 0, 3);
        let second = batch(&after(&record, &first), 4, 1, 2);
        store.append(&[first, second]).unwrap();
        stored.push((
            records(store, record.id),
            store.find(&record.key).unwrap().unwrap().head,
        ));
    }
    assert_eq!(stored[0], stored[1]);
}

#[test]
fn claiming_an_epoch_fences_a_writer_of_another_store_and_changes_nothing_else() {
    let database = database();
    let writer = PostgresStore::open(database.url()).unwrap();
    let resumer = PostgresStore::open(database.url()).unwrap();
    let record = create(&writer, &new_run(&key("claim", 0)));
    assert!(
        resumer.claim_epoch(record.id, 1).unwrap(),
        "the first claim of epoch 1 raises it"
    );
    assert!(
        !resumer.claim_epoch(record.id, 1).unwrap(),
        "a second claim of the same epoch is refused"
    );
    assert!(
        !resumer.claim_epoch(record.id, 0).unwrap(),
        "an older epoch is never claimed"
    );
    let claimed = resumer.run(record.id).unwrap().unwrap();
    assert_eq!(claimed.head.epoch, 1);
    assert_eq!(
        RunRecord {
            head: record.head,
            ..claimed.clone()
        },
        record,
        "only the epoch changed"
    );
    assert_eq!(claimed.head.next_seq, record.head.next_seq);
    let stale = batch(&record, 1, 0, 2);
    assert_eq!(
        writer.append(&[stale]).unwrap(),
        vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })],
        "the older writer is fenced at its next append"
    );
    assert_eq!(seqs(&resumer, &claimed), vec![0], "and wrote nothing");
    let attach = batch(&claimed, 1, 1, 1);
    assert_eq!(
        resumer.append(&[attach]).unwrap(),
        vec![Ok(())],
        "the claimer appends in its epoch"
    );
    assert!(
        !resumer.claim_epoch(u64::MAX, 5).unwrap(),
        "no such run: nothing to claim"
    );
}

#[test]
fn a_group_over_distinct_runs_applies_the_matching_batches_and_rejects_the_rest() {
    let database = database();
    let store = PostgresStore::open(database.url()).unwrap();
    let runs: Vec<RunRecord> = (0..4)
        .map(|episode| create(&store, &new_run(&key("group", episode))))
        .collect();
    let fenced = store.claim_epoch(runs[3].id, 2).unwrap();
    assert!(fenced);
    let group = [
        batch(&runs[0], 1, 0, 3),
        batch(&runs[1], 5, 0, 2),
        batch(&runs[2], 1, 0, 1),
        batch(&runs[3], 1, 0, 2),
    ];
    let outcomes = store.append(&group).unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Err(AppendRejection::Conflict { expected: 5, actual: 1 }),
            Ok(()),
            Err(AppendRejection::Fenced { epoch: 0, current: 2 }),
        ]
    );
    assert_eq!(seqs(&store, &runs[0]), vec![0, 1, 2, 3]);
    assert_eq!(seqs(&store, &runs[1]), vec![0], "a rejected batch writes nothing");
    assert_eq!(seqs(&store, &runs[2]), vec![0, 1]);
    assert_eq!(seqs(&store, &runs[3]), vec![0]);
    assert_eq!(store.run(runs[0].id).unwrap().unwrap(), after(&runs[0], &group[0]));
    assert_eq!(store.run(runs[2].id).unwrap().unwrap(), after(&runs[2], &group[2]));
    assert_eq!(
        store.run(runs[1].id).unwrap().unwrap(),
        runs[1],
        "its head is untouched"
    );
    let stored = records(&store, runs[0].id);
    assert_eq!(stored[1..], group[0].records[..], "the records as given");
}
