//! Folds the example session of `tests/fixtures/example_session` and compares
//! it with its expected state, key by key, as the expected file lists them.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::path::PathBuf;

use runjournal_core::fold::ResumeState;
use runjournal_core::{ChainHash, Envelope, PartialEnvelope};
use serde_json::Value;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/example_session")
}

fn read_session() -> Vec<Envelope> {
    let path = examples_dir().join("session.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            let partial: PartialEnvelope =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("line {}: {error}", number + 1));
            Envelope {
                run: partial.run,
                seq: partial.seq,
                epoch: partial.epoch.unwrap_or(0),
                ts: 0,
                hash: ChainHash::GENESIS,
                event: partial.event,
            }
        })
        .collect()
}

/// The value at a dotted `path` of `state`; a final `len` segment is the
/// length of the array before it.
fn lookup<'a>(state: &'a Value, path: &str) -> Option<Value> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut value: &'a Value = state;
    for (position, part) in parts.iter().enumerate() {
        let is_last = position + 1 == parts.len();
        if is_last && *part == "len" {
            if let Some(items) = value.as_array() {
                return Some(Value::from(items.len()));
            }
        }
        value = value.get(part)?;
    }
    Some(value.clone())
}

#[test]
fn example_session_folds_to_the_expected_state() {
    let envelopes = read_session();
    assert!(!envelopes.is_empty());
    let run = envelopes[0].run.clone();
    let state = ResumeState::fold(run.clone(), &envelopes);
    assert_eq!(state.run, run);
    assert_eq!(state.last_seq, envelopes.last().map(|envelope| envelope.seq));

    let path = examples_dir().join("session.expected.json");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|error| panic!("{error}"));
    let expected = expected.as_object().unwrap();
    assert!(!expected.is_empty());

    let actual = state.to_json();
    for (key, want) in expected {
        let got = lookup(&actual, key).unwrap_or_else(|| panic!("state has no {key:?}: {actual:#}"));
        assert_eq!(&got, want, "key {key:?}");
    }
}
