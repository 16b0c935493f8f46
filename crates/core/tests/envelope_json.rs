//! `PartialEnvelope::from_json`, which decodes an event whose `type` comes
//! first without buffering it, gives exactly what serde's derived decoder
//! gives: the same envelope, or the same error, for every event type, for the
//! tag in any position, and for lines damaged anywhere.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod event_strategy;

use event_strategy::event;
use proptest::prelude::*;
use runjournal_core::{ChainHash, Envelope, Event, PartialEnvelope, RunKey};

/// The line the journal exports for `event` at seq 3.
fn exported_line(event: Event) -> String {
    Envelope {
        run: RunKey::new("g", 1, "a").unwrap(),
        seq: 3,
        epoch: 2,
        ts: 1_700_000_000_000,
        hash: ChainHash::next(&ChainHash::GENESIS, b"k", 3, b"body"),
        event,
    }
    .to_json_line()
}

/// Both decoders' outcomes, errors as their messages.
fn both(line: &str) -> (Result<PartialEnvelope, String>, Result<PartialEnvelope, String>) {
    let fast = PartialEnvelope::from_json(line).map_err(|error| error.to_string());
    let derived = serde_json::from_str::<PartialEnvelope>(line).map_err(|error| error.to_string());
    (fast, derived)
}

/// `line` with the event's `"type":"…"` entry moved to the end of its object.
fn tag_last(line: &str) -> String {
    let start = line.find(r#""event":{"type":""#).unwrap() + r#""event":{"#.len();
    let tail = &line[start..];
    let end = start + tail.find("\",").or_else(|| tail.find("\"}")).unwrap() + 1;
    let entry = &line[start..end];
    let rest = line[end..].trim_start_matches(',');
    if rest.starts_with('}') {
        return line.to_owned();
    }
    let close = line.len() - 2;
    format!(
        "{}{},{}{}",
        &line[..start],
        &rest[..rest.len() - 2],
        entry,
        &line[close..]
    )
}

#[test]
fn a_line_whose_tag_is_not_first_parses_as_the_derived_decoder_parses_it() {
    let line = exported_line(Event::PhaseStarted {
        index: 1,
        name: "plan".into(),
    });
    let moved = tag_last(&line);
    assert!(moved.ends_with(r#""type":"phase_started"}}"#), "{moved}");
    let (fast, derived) = both(&moved);
    assert_eq!(fast, derived);
    assert!(fast.is_ok(), "{fast:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn an_exported_line_parses_as_the_derived_decoder_parses_it(event in event()) {
        let line = exported_line(event.clone());
        let (fast, derived) = both(&line);
        prop_assert_eq!(&fast, &derived);
        prop_assert_eq!(fast.map(|partial| partial.event), Ok(event));
        let (fast, derived) = both(&tag_last(&line));
        prop_assert_eq!(fast, derived);
    }

    #[test]
    fn a_damaged_line_gives_what_the_derived_decoder_gives(
        event in event(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..3,
        insert in prop::sample::select(vec!["", "\"", ",", "}", "]", ":", "1", "\"x\":1,", "\\u0041", "null", "\"type\":\"step\","]),
    ) {
        let line = exported_line(event);
        let chars: Vec<char> = line.chars().collect();
        let position = at.index(chars.len());
        let mut damaged: String = chars[..position].iter().collect();
        damaged.push_str(insert);
        damaged.extend(chars[(position + cut).min(chars.len())..].iter());
        let (fast, derived) = both(&damaged);
        prop_assert_eq!(fast, derived, "{}", damaged);
    }
}
