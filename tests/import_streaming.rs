//! Import streams: records are staged invisibly while the file is read and
//! published in one atomic step, so a refusal at the very last line of a
//! large file stores nothing and leaves no staged record behind.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal::*;
use std::fmt::Write as _;

#[test]
fn a_refusal_at_the_last_line_of_a_large_file_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let content = "x".repeat(200);
    let mut text = String::new();
    for run in 0..40 {
        let run_key = format!(r#""run":{{"goal":"g{run}","episode":0,"agent":"a"}}"#);
        let _ = write!(
            text,
            r#"{{{run_key},"seq":0,"event":{{"type":"run_started","meta":{{}}}}}}"#
        );
        text.push('\n');
        for seq in 1..2_500 {
            let _ = write!(
                text,
                r#"{{{run_key},"seq":{seq},"event":{{"type":"step","messages":[{{"role":"user","content":"{content}"}}]}}}}"#
            );
            text.push('\n');
        }
    }
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let journal = Journal::open(&path, Options::default()).unwrap();
    journal
        .begin(RunKey::new("before", 0, "a").unwrap(), RunMeta::default())
        .unwrap();
    let mut text = String::new();
    for seq in 0..60_000u64 {
        let event = if seq == 0 {
            r#"{"type":"run_started","meta":{}}"#.to_string()
        } else {
            format!(
                r#"{{"type":"step","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "y".repeat(200)
            )
        };
        let _ = write!(
            text,
            r#"{{"run":{{"goal":"big","episode":0,"agent":"a"}},"seq":{seq},"event":{event}}}"#
        );
        text.push('\n');
    }
    let report = journal.import(text.as_bytes()).unwrap();
    assert_eq!(report.events, 60_000);
    let key = RunKey::new("big", 0, "a").unwrap();
    assert_eq!(journal.verify(&key).unwrap().events, 60_000);
    assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 2);
}
