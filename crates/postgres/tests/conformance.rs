//! The PostgreSQL store keeps the storage contract: every rule of
//! `runjournal_core::testing::conformance`, one test each, on a fresh
//! database of the server named by `RUNJOURNAL_TEST_POSTGRES` (or of a
//! throwaway server the tests start themselves).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal_core::testing::conformance::{self, key, seqs, Fixture};
use runjournal_core::Store;
use runjournal_postgres::testing::{test_server_url, TestDatabase};
use runjournal_postgres::PostgresStore;

/// A store on a scratch database, dropped after the store closes.
struct PostgresFixture {
    store: PostgresStore,
    _database: TestDatabase,
}

impl Fixture for PostgresFixture {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

fn fresh_postgres() -> PostgresFixture {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(&server).unwrap();
    let store = PostgresStore::open(database.url()).unwrap();
    PostgresFixture {
        store,
        _database: database,
    }
}

runjournal_core::conformance_tests!(fresh_postgres);

#[test]
#[expect(
    clippy::used_underscore_binding,
    reason = "`_database` keeps the throwaway database alive; here its URL is read too"
)]
fn the_postgres_store_keeps_the_storage_contract_and_after_reopen() {
    let fixture = fresh_postgres();
    conformance::run_all(&fixture.store);
    let reopened = PostgresStore::open(fixture._database.url()).unwrap();
    let record = reopened.find(&key("order", 0)).unwrap().unwrap();
    assert_eq!(record.head.next_seq, 5);
    assert_eq!(seqs(&reopened, &record), vec![0, 1, 2, 3, 4]);
    let created = reopened
        .create_runs(&[conformance::new_run(&key("after-reopen", 0))])
        .unwrap()
        .unwrap();
    assert!(created[0].id > record.id, "run ids are never reused");
}
