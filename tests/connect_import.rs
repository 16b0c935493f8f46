//! A connected `import` streams its input to the owner in bounded chunks:
//! a multi-MB file imports whole; a refusal at its last line, or an input
//! that fails to read part-way, stores nothing; a refusal at the first line
//! stops the client reading long before the end of the input.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{owner_and_client, runs_lines as jsonl};
use runjournal::{ImportError, Journal, Options, RunFilter};

/// An owner serving a fresh database, and a client connected to it.
fn served() -> (tempfile::TempDir, Journal, Journal) {
    owner_and_client(Options::default())
}

/// A reader that counts the bytes taken from it, and fails after `fail_at`.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
    fail_at: Option<u64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.read.load(Ordering::SeqCst);
        if self.fail_at.is_some_and(|at| read >= at) {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = self.inner.read(buffer)?;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

#[test]
fn a_connected_import_of_a_multi_megabyte_file_is_stored_whole() {
    let (_dir, owner, client) = served();
    let text = jsonl(8, 2_500);
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    let report = client.import(text.as_bytes()).unwrap();
    assert_eq!(report.events, 8 * 2_501);
    let runs = owner.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 8);
    assert!(runs.iter().all(|run| run.head.next_seq == 2_501));
    for run in &runs {
        assert_eq!(owner.verify(&run.key).unwrap().events, 2_501);
    }
}

#[test]
fn a_connected_import_refused_at_its_last_line_stores_nothing() {
    let (_dir, owner, client) = served();
    let mut text = jsonl(8, 2_500);
    text.push_str("{not json\n");
    let error = client.import(text.as_bytes()).unwrap_err();
    assert_eq!(error.code(), "parse", "{error}");
    assert!(owner.runs(&RunFilter::default()).unwrap().is_empty());
    assert!(client.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn a_connected_import_whose_input_fails_part_way_stores_nothing() {
    let (_dir, owner, client) = served();
    let text = jsonl(8, 2_500);
    let read = Arc::new(AtomicU64::new(0));
    let input = BufReader::new(Counting {
        inner: text.as_bytes(),
        read: read.clone(),
        fail_at: Some(text.len() as u64 - 1_000),
    });
    let error = client.import(input).unwrap_err();
    assert!(matches!(error, ImportError::Read { .. }), "{error}");
    assert!(owner.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn a_connected_import_refused_at_its_first_line_stops_reading_the_input() {
    let (_dir, owner, client) = served();
    let mut text = String::from("{not json\n");
    text.push_str(&jsonl(64, 2_500));
    let total = text.len() as u64;
    assert!(total > 32 << 20, "{total} bytes");
    let read = Arc::new(AtomicU64::new(0));
    let mut input = BufReader::new(Counting {
        inner: text.as_bytes(),
        read: read.clone(),
        fail_at: None,
    });
    let error = client.import(&mut input).unwrap_err();
    assert_eq!(error.code(), "parse", "{error}");
    let taken = read.load(Ordering::SeqCst);
    assert!(
        taken < total / 4,
        "the client read {taken} of {total} bytes after the owner refused the first line"
    );
    assert!(owner.runs(&RunFilter::default()).unwrap().is_empty());
}
