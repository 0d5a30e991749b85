//! What the relay reads of an event's `data:` JSON, in one pass that checks all of it.
//!
//! The relay needs two things of an event's data: its `type`, and whether `delta.stop_reason`
//! is set (the final `message_delta`). Everything else is skipped without being built
//! (`IgnoredAny`), but still checked: the read fails unless the whole text is one JSON value.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What the relay reads of an event's data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Payload<'a> {
    /// Its `type`, when that is a string.
    pub(super) kind: Option<Cow<'a, str>>,
    /// Its `delta.stop_reason` is there and not null.
    pub(super) stop_reason: bool,
}

impl<'a> Payload<'a> {
    /// Reads `data`; `None` when it is not valid JSON. Any JSON value reads: one that is not
    /// an object has no `type`.
    pub(super) fn read(data: &'a str) -> Option<Self> {
        serde_json::from_str::<Any<Payload<'a>>>(data)
            .ok()
            .map(|any| any.0)
    }
}

/// A value read out of any JSON value: an object through [`Reader::object`], a string through
/// [`Reader::string`]; anything else is skipped (and checked) and reads as the default.
trait Reader<'de>: Default {
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }

    fn string(_text: Cow<'de, str>) -> Self {
        Self::default()
    }
}

impl<'de> Reader<'de> for Payload<'de> {
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut payload = Payload::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => payload.kind = map.next_value::<Any<Kind<'de>>>()?.0.0,
                Key::Delta => payload.stop_reason = map.next_value::<Any<Delta>>()?.0.stop_reason,
                Key::StopReason | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(payload)
    }
}

/// A `type`: its text when it is a string.
#[derive(Default)]
struct Kind<'a>(Option<Cow<'a, str>>);

impl<'de> Reader<'de> for Kind<'de> {
    fn string(text: Cow<'de, str>) -> Self {
        Kind(Some(text))
    }
}

/// A `delta`: whether its `stop_reason` is set.
#[derive(Default)]
struct Delta {
    stop_reason: bool,
}

impl<'de> Reader<'de> for Delta {
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut delta = Delta::default();
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::StopReason {
                delta.stop_reason = map.next_value::<Option<IgnoredAny>>()?.is_some();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(delta)
    }
}

/// The object keys the relay reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Type,
    Delta,
    StopReason,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "type" => Key::Type,
                    "delta" => Key::Delta,
                    "stop_reason" => Key::StopReason,
                    _ => Key::Other,
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads a `T` out of any JSON value.
struct Any<T>(T);

impl<'de, T: Reader<'de>> Deserialize<'de> for Any<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(AnyVisitor(PhantomData))
            .map(Any)
    }
}

struct AnyVisitor<T>(PhantomData<T>);

impl<'de, T: Reader<'de>> Visitor<'de> for AnyVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<T, E> {
        Ok(T::string(Cow::Borrowed(text)))
    }

    /// A string with escapes: unescaped into a buffer that does not outlive the call.
    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        Ok(T::string(Cow::Owned(text.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(data: &str) -> Option<String> {
        Payload::read(data)
            .expect("valid JSON")
            .kind
            .map(Cow::into_owned)
    }

    #[test]
    fn reads_the_type_borrowed_and_skips_the_rest() {
        let data = r#"{"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"a \"b\"\n"}}"#;
        let payload = Payload::read(data).unwrap();
        assert!(matches!(
            payload.kind,
            Some(Cow::Borrowed("content_block_delta"))
        ));
        assert!(!payload.stop_reason);
        assert_eq!(
            kind(r#"{"type":"message\u005fstop"}"#).as_deref(),
            Some("message_stop")
        );
    }

    #[test]
    fn any_json_value_reads_and_only_strings_are_types() {
        for data in [
            "1",
            "-2.5",
            "true",
            "null",
            "\"text\"",
            "[1,{\"type\":\"x\"}]",
            "{}",
            " {} ",
        ] {
            assert_eq!(kind(data), None, "{data}");
        }
        for data in [r#"{"type":7}"#, r#"{"type":null}"#, r#"{"type":{"a":1}}"#] {
            assert_eq!(kind(data), None, "{data}");
        }
    }

    #[test]
    fn text_that_is_not_exactly_one_json_value_does_not_read() {
        for data in [
            "",
            "{not json",
            r#"{"type":"ping""#,
            r#"{"type":"ping"} {}"#,
            r#"{"type":"ping","x":[1,}"#,
            r#"{"delta":{"stop_reason":tru}}"#,
            "undefined",
        ] {
            assert_eq!(Payload::read(data), None, "{data}");
        }
    }

    #[test]
    fn a_stop_reason_counts_when_set_and_not_null() {
        let stops = |data: &str| Payload::read(data).unwrap().stop_reason;
        assert!(stops(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#
        ));
        assert!(stops(r#"{"delta":{"stop_reason":{"odd":true}}}"#));
        assert!(!stops(
            r#"{"type":"message_delta","delta":{"stop_reason":null}}"#
        ));
        assert!(!stops(r#"{"type":"message_delta","delta":{}}"#));
        assert!(!stops(r#"{"type":"message_delta","delta":"end_turn"}"#));
        assert!(!stops(
            r#"{"type":"message_delta","stop_reason":"end_turn"}"#
        ));
    }
}
