//! A decoder of an event's JSON object that reads its `type` first.
//!
//! serde's derived decoder of the `type`-tagged [`Event`] buffers the whole
//! object before it looks at the tag, because the tag may come anywhere in it.
//! The journal writes `type` first (its serializer puts the tag first), so this
//! decoder reads the tag and then decodes a `step`, by far the most common
//! event, straight from the input. Any other type is handed on to the derived
//! decoder, preceded by the tag already read, so it is decoded exactly as
//! before. An object whose first key is not `type` is refused: callers then
//! decode the input again with the derived decoder
//! ([`crate::PartialEnvelope::from_json`]), which accepts any key order.
//!
//! Where this decoder succeeds it gives the event the derived decoder gives;
//! its errors may differ (a `step`'s point at the bad value, not at the end of
//! the object), which is why callers that report errors take the derived
//! decoder's.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::event::{Event, Message};

/// The JSON key of an event's tag.
const TAG: &str = "type";

/// Decodes an event whose first key is `type` (for `#[serde(deserialize_with)]`).
pub(crate) fn deserialize_type_first<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
    deserializer.deserialize_map(TypeFirstVisitor)
}

/// A `step`'s fields, as the derived decoder of [`Event::Step`] takes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFields {
    messages: Vec<Message>,
}

struct TypeFirstVisitor;

impl<'de> Visitor<'de> for TypeFirstVisitor {
    type Value = Event;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event object whose first key is `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        if map.next_key::<TagKey>()?.is_none() {
            return Err(A::Error::missing_field(TAG));
        }
        match map.next_value::<Tag<'de>>()? {
            Tag::Step => {
                let fields = StepFields::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Event::Step {
                    messages: fields.messages,
                })
            }
            Tag::Other(tag) => Event::deserialize(MapAccessDeserializer::new(TagThen {
                tag: TagState::Key(tag),
                map,
            })),
        }
    }
}

/// The first key of an event object, which must be `type`.
struct TagKey;

impl<'de> Deserialize<'de> for TagKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TagKeyVisitor)
    }
}

struct TagKeyVisitor;

impl Visitor<'_> for TagKeyVisitor {
    type Value = TagKey;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the key `type` first")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<TagKey, E> {
        if key == TAG {
            Ok(TagKey)
        } else {
            Err(E::custom(format_args!("the event's first key is `{key}`, not `type`")))
        }
    }
}

/// An event's tag: `step`, or another (borrowed from the input when it can be).
enum Tag<'de> {
    Step,
    Other(Cow<'de, str>),
}

impl<'de> Deserialize<'de> for Tag<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TagVisitor)
    }
}

struct TagVisitor;

impl<'de> Visitor<'de> for TagVisitor {
    type Value = Tag<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event type")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, tag: &'de str) -> Result<Tag<'de>, E> {
        Ok(if tag == "step" {
            Tag::Step
        } else {
            Tag::Other(Cow::Borrowed(tag))
        })
    }

    fn visit_str<E: serde::de::Error>(self, tag: &str) -> Result<Tag<'de>, E> {
        Ok(if tag == "step" {
            Tag::Step
        } else {
            Tag::Other(Cow::Owned(tag.to_owned()))
        })
    }
}

/// The rest of an event object after its tag, preceded by the tag again: the
/// object as the derived decoder would have read it from the start.
struct TagThen<'de, A> {
    tag: TagState<'de>,
    map: A,
}

/// How much of the tag entry [`TagThen`] has given.
enum TagState<'de> {
    /// Neither its key nor its value.
    Key(Cow<'de, str>),
    /// Its key.
    Value(Cow<'de, str>),
    /// Both: the entries now come from the input.
    Given,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TagThen<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        match std::mem::replace(&mut self.tag, TagState::Given) {
            TagState::Key(tag) => {
                self.tag = TagState::Value(tag);
                seed.deserialize(BorrowedStrDeserializer::new(TAG)).map(Some)
            }
            state => {
                self.tag = state;
                self.map.next_key_seed(seed)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match std::mem::replace(&mut self.tag, TagState::Given) {
            TagState::Value(Cow::Borrowed(tag)) => seed.deserialize(BorrowedStrDeserializer::new(tag)),
            TagState::Value(Cow::Owned(tag)) => seed.deserialize(StringDeserializer::new(tag)),
            state => {
                self.tag = state;
                self.map.next_value_seed(seed)
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint().map(|rest| rest + 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::*;

    /// An event decoded by [`deserialize_type_first`].
    fn type_first(json: &str) -> Result<Event, serde_json::Error> {
        deserialize_type_first(&mut serde_json::Deserializer::from_str(json))
    }

    #[test]
    fn a_step_decodes_as_the_derived_decoder_decodes_it() {
        let json = r#"{"type":"step","messages":[{"role":"user","content":"hi \"there\""},{"role":"tool","content":"x","name":"grep","tool_call_id":"c1"}]}"#;
        let derived: Event = serde_json::from_str(json).unwrap();
        assert_eq!(type_first(json).unwrap(), derived);
    }

    #[test]
    fn every_other_type_is_handed_to_the_derived_decoder_after_its_tag() {
        for json in [
            r#"{"type":"turn_completed"}"#,
            r#"{"type":"phase_started","index":2,"name":"plan"}"#,
            r#"{"type":"usage","input_tokens":5,"counters":{"tools":1.0}}"#,
            r#"{"type":"run_failed","error":{"kind":"k","message":"m"},"cleanup_errors":[]}"#,
            r#"{"type":"custom","kind":"a\u0062","data":"{}"}"#,
        ] {
            let derived: Event = serde_json::from_str(json).unwrap();
            assert_eq!(type_first(json).unwrap(), derived, "{json}");
        }
    }

    #[test]
    fn an_escaped_tag_is_still_recognised() {
        let json = r#"{"type":"st\u0065p","messages":[]}"#;
        assert_eq!(type_first(json).unwrap(), Event::Step { messages: Vec::new() });
        let json = r#"{"type":"turn_c\u006fmpleted"}"#;
        assert_eq!(type_first(json).unwrap(), Event::TurnCompleted);
    }

    #[test]
    fn what_the_derived_decoder_refuses_is_refused() {
        for json in [
            r#"{"type":"step","messages":[],"extra":1}"#,
            r#"{"type":"step","type":"step","messages":[]}"#,
            r#"{"type":"step","messages":[],"messages":[]}"#,
            r#"{"type":"step"}"#,
            r#"{"type":"teleported"}"#,
            r#"{"type":"phase_started","index":2,"name":"plan","type":"usage"}"#,
            r#"{"type":"step","messages":[{"role":"robot","content":"x"}]}"#,
            r#"{"type":7}"#,
            "{}",
        ] {
            assert!(
                serde_json::from_str::<Event>(json).is_err(),
                "the derived decoder takes {json}"
            );
            assert!(type_first(json).is_err(), "{json} decoded");
        }
    }

    #[test]
    fn an_object_whose_first_key_is_not_the_tag_is_refused() {
        let json = r#"{"messages":[],"type":"step"}"#;
        assert!(serde_json::from_str::<Event>(json).is_ok());
        let error = type_first(json).unwrap_err().to_string();
        assert!(error.contains("first key is `messages`"), "{error}");
    }
}
