//! Import reads strictly: an unknown field anywhere, an epoch a resume could
//! never raise, an overlong line or a byte order mark is refused, naming the
//! line, and nothing is stored; the handle never wraps an epoch or an episode.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{BufReader, Read};
use std::sync::Arc;

use common::memory_journal;
use runjournal::core::MemoryStore;
use runjournal::*;

const RUN: &str = r#""run":{"goal":"g","episode":0,"agent":"a"}"#;

fn line(seq: u64, extra: &str, event: &str) -> String {
    format!(r#"{{{RUN},"seq":{seq}{extra},"event":{event}}}"#)
}

fn started() -> String {
    line(0, "", r#"{"type":"run_started","meta":{}}"#)
}

/// Imports `lines`, expects a refusal at `expected_line` whose message holds
/// `needle`, and that nothing was stored.
fn refused(lines: &[String], expected_line: u64, needle: &str) {
    let journal = memory_journal();
    let error = journal.import(lines.join("\n").as_bytes()).unwrap_err();
    assert_eq!(error.line(), Some(expected_line), "{error}");
    let message = error.to_string();
    assert!(message.contains(needle), "{needle:?} not in {message}");
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn an_unknown_field_of_turn_completed_is_refused_naming_it() {
    refused(
        &[started(), line(1, "", r#"{"type":"turn_completed","bogus":1}"#)],
        2,
        "unknown field `bogus`",
    );
}

#[test]
fn an_unknown_field_in_the_run_key_is_refused() {
    let lines = [started().replace(r#""agent":"a""#, r#""agent":"a","colour":"red""#)];
    refused(&lines, 1, "unknown field `colour`");
}

#[test]
fn unknown_fields_in_the_envelope_the_event_and_its_parts_are_refused() {
    refused(
        &[started().replace(r#""seq":0"#, r#""seq":0,"x":1"#)],
        1,
        "unknown field `x`",
    );
    refused(
        &[started(), line(1, "", r#"{"type":"step","messages":[],"zz":2}"#)],
        2,
        "unknown field `zz`",
    );
    refused(
        &[
            started(),
            line(
                1,
                "",
                r#"{"type":"step","messages":[{"role":"user","content":"x","extra":1}]}"#,
            ),
        ],
        2,
        "unknown field `extra`",
    );
    refused(
        &[line(0, "", r#"{"type":"run_started","meta":{"mood":"ok"}}"#)],
        1,
        "unknown field `mood`",
    );
}

#[test]
fn an_attached_that_does_not_raise_the_epoch_is_refused() {
    // The run reaches the last epoch; an attached with no stated epoch would
    // not raise it.
    let lines = [
        started(),
        line(
            1,
            r#","epoch":18446744073709551614"#,
            r#"{"type":"attached","owner":"x"}"#,
        ),
        line(2, "", r#"{"type":"attached","owner":"y"}"#),
    ];
    refused(&lines, 3, "could never be resumed again");
}

#[test]
fn an_attached_at_the_last_epoch_is_refused() {
    let lines = [
        started(),
        line(
            1,
            r#","epoch":18446744073709551615"#,
            r#"{"type":"attached","owner":"x"}"#,
        ),
    ];
    refused(&lines, 2, "epoch 18446744073709551615, the last there is");
}

#[test]
fn resume_at_the_last_epoch_is_a_typed_error() {
    let journal = memory_journal();
    let lines = [
        started(),
        line(
            1,
            r#","epoch":18446744073709551614"#,
            r#"{"type":"attached","owner":"x"}"#,
        ),
    ];
    journal.import(lines.join("\n").as_bytes()).unwrap();
    let key = RunKey::new("g", 0, "a").unwrap();
    let error = journal.resume(&key).err().unwrap();
    assert!(
        matches!(
            error,
            ResumeError::EpochExhausted {
                epoch: 18_446_744_073_709_551_614,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(journal.verify(&key).unwrap().events, 2, "nothing was appended");
}

#[test]
fn next_episode_after_the_last_one_is_a_typed_error() {
    let journal = memory_journal();
    let key = RunKey::new("g", u32::MAX, "a").unwrap();
    journal.begin(key, RunMeta::default()).unwrap();
    let error = journal.next_episode("g").unwrap_err();
    assert!(matches!(error, ReadError::EpisodesExhausted { .. }), "{error}");
}

/// A reader of `length` bytes of `{` with no newline, counting what it served.
struct Endless {
    left: u64,
    served: Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = usize::try_from(self.left.min(buf.len() as u64)).unwrap();
        buf[..n].fill(b'{');
        self.left -= n as u64;
        self.served.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_line_longer_than_the_limit_is_refused_before_it_is_read_whole() {
    let options = Options {
        max_event_size: 64 * 1024,
        ..Options::default()
    };
    let journal = Journal::with_store(Arc::new(MemoryStore::new()), options).unwrap();
    let limit = runjournal::import_line_limit(64 * 1024);
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = BufReader::new(Endless {
        left: 1 << 34,
        served: served.clone(),
    });
    let error = journal.import(input).unwrap_err();
    assert!(matches!(error, ImportError::LineTooLong { line: 1, .. }), "{error}");
    let read = served.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read <= (limit as u64) + 64 * 1024, "read {read} bytes of a 16 GiB line");
}

#[test]
fn a_byte_order_mark_gets_a_clear_message() {
    let lines = [format!("\u{feff}{}", started())];
    refused(&lines, 1, "byte order mark");
}
