//! Import streams: records are staged invisibly while the file is read and
//! published in one atomic step, so a refusal at the very last line of a
//! large file stores nothing and leaves no staged record behind.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{run_lines, runs_lines, temp_db};
use runjournal::*;

#[test]
fn a_refusal_at_the_last_line_of_a_large_file_stores_nothing() {
    let (_dir, path) = temp_db();
    let mut text = runs_lines(40, 2_499);
    text.push_str("{not json\n");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let error = journal.import(text.as_bytes()).unwrap_err();
        assert_eq!(error.line(), Some(100_001), "{error}");
        assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
    }
    // Records were staged along the way (the file is over 20 MiB); none is left.
    let store = runjournal_sled::SledStore::open(&path, runjournal_sled::OpenMode::MustExist).unwrap();
    assert_eq!(
        store.sled().scan_prefix([1u8]).count(),
        0,
        "no staged event is left behind"
    );
}

#[test]
fn a_large_import_into_an_existing_database_is_published_whole() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    journal
        .begin(RunKey::new("before", 0, "a").unwrap(), RunMeta::default())
        .unwrap();
    let text = run_lines("big", 60_000, None);
    let report = journal.import(text.as_bytes()).unwrap();
    assert_eq!(report.events, 60_000);
    let key = RunKey::new("big", 0, "a").unwrap();
    assert_eq!(journal.verify(&key).unwrap().events, 60_000);
    assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 2);
}

#[test]
fn a_fork_of_a_parent_staged_earlier_in_the_file_chains_from_the_staged_hash() {
    let dir = tempfile::tempdir().unwrap();
    // Over 8 MiB of parent records: its seq 100 is staged before the fork's first line.
    let parent = run_lines("parent", 40_000, None);
    let child = run_lines("child", 3, Some(("parent", 100)));
    let together = Journal::open(dir.path().join("one.db"), Options::default()).unwrap();
    let report = together.import(format!("{parent}{child}").as_bytes()).unwrap();
    // The same fork imported after its parent was published reads the base from the database.
    let apart = Journal::open(dir.path().join("two.db"), Options::default()).unwrap();
    apart.import(parent.as_bytes()).unwrap();
    let later = apart.import(child.as_bytes()).unwrap();
    assert_eq!(report.runs[1].key, RunKey::new("child", 0, "a").unwrap());
    assert_eq!(report.runs[1].head, later.runs[0].head, "the same base hash either way");
    assert_eq!(together.verify(&report.runs[1].key).unwrap().events, 3);
}

#[test]
fn a_store_failure_while_staging_refuses_the_import_and_stores_nothing() {
    use runjournal::core::testing::faulty::{Fault, FaultyStore, OpClass};
    use runjournal::core::MemoryStore;
    let store = std::sync::Arc::new(FaultyStore::new(MemoryStore::new()));
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    // The run's id is reserved (write 1); its first 8 MiB of records are
    // staged by the stager (write 2), which fails, and so does every later write.
    store.arm(OpClass::Write, Fault::nth(2).sticky());
    let error = journal
        .import(run_lines("failing", 40_000, None).as_bytes())
        .unwrap_err();
    assert!(matches!(error, ImportError::Staging(_)), "{error}");
    assert_eq!(error.code(), "io", "{error}");
    assert!(
        error.to_string().contains("injected"),
        "the store's own failure is reported: {error}"
    );
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}
