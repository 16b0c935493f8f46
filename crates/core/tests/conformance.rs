//! The in-memory reference store keeps the storage contract: every rule of
//! `runjournal_core::testing::conformance`, one test each.

runjournal_core::conformance_tests!(runjournal_core::MemoryStore::new);

#[test]
fn every_rule_also_runs_on_one_shared_store() {
    runjournal_core::testing::conformance::run_all(&runjournal_core::MemoryStore::new());
}
