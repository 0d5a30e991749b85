//! What the relay reads of an event's `data:` JSON, checking all of it.
//!
//! The relay needs two things of an event's data: its `type`, and whether `delta.stop_reason`
//! is set (the final `message_delta`). Everything else is skipped without being built (serde
//! ignores unknown fields), but still checked: the read fails unless the whole text is one JSON
//! value. An event's data is nearly always an object with a string `type`: one parse. Any
//! other JSON (an array, a number `type`) takes a second, validating-only parse.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// What the relay reads of an event's data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(super) struct Payload<'a> {
    /// Its `type`, when that is a string (borrowed unless it holds an escape).
    #[serde(rename = "type", borrow, default, deserialize_with = "text")]
    pub(super) kind: Option<Cow<'a, str>>,
    /// Its `delta.stop_reason` is there and not null.
    #[serde(rename = "delta", default, deserialize_with = "stop_reason_set")]
    pub(super) stop_reason: bool,
}

/// A `delta` object: only its `stop_reason` matters.
#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    stop_reason: Option<IgnoredAny>,
}

/// A string, borrowed from the data when it can be (serde does not borrow inside `Option`).
fn text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Some(Text::deserialize(deserializer)?.0))
}

fn stop_reason_set<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Delta::deserialize(deserializer)?.stop_reason.is_some())
}

impl<'a> Payload<'a> {
    /// Reads `data`; `None` when it is not valid JSON. Any JSON value reads: one that is not
    /// an object with a string `type` (and an object `delta`, if any) has neither.
    pub(super) fn read(data: &'a str) -> Option<Self> {
        match serde_json::from_str::<Payload<'a>>(data) {
            Ok(payload) => Some(payload),
            Err(_) => serde_json::from_str::<IgnoredAny>(data)
                .ok()
                .map(|_| Payload::default()),
        }
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
