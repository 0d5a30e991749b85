use proptest::prelude::*;
use serde::Deserialize;

use super::*;

/// What `serde_json` reads of the two fields (`null` as absent), when the body is valid.
fn serde_reads(body: &[u8]) -> Option<(Option<serde_json::Value>, Option<serde_json::Value>)> {
    #[derive(Deserialize)]
    struct Fields {
        model: Option<serde_json::Value>,
        stream: Option<serde_json::Value>,
    }
    let fields: Fields = serde_json::from_slice(body).ok()?;
    Some((fields.model, fields.stream))
}

fn ends_read(body: &[u8]) -> Option<(Option<serde_json::Value>, Option<serde_json::Value>)> {
    let ends = ends(body)?;
    let parse = |token: &[u8]| serde_json::from_slice::<Option<serde_json::Value>>(token).unwrap();
    Some((parse(ends.model), parse(ends.stream)))
}

#[test]
fn the_ends_are_read_when_model_comes_first_and_stream_last() {
    let body = br#" { "model" : "claude-\"opus\\", "messages": [{"content": "a \"stream\": true"}],
        "stream" : true }
    "#;
    assert_eq!(
        ends(body),
        Some(Ends {
            model: br#""claude-\"opus\\""#,
            stream: b"true",
        })
    );
    assert_eq!(ends_read(body), serde_reads(body));
}

#[test]
fn any_other_layout_is_left_to_the_whole_read() {
    for other in [
        &br#"{"messages":[],"model":"m","stream":true}"#[..],
        br#"{"model":"m","stream":true,"max_tokens":1}"#,
        br#"{"model":"m","a":{"stream":true}}"#,
        br#"{"model":"m","a":["stream",true]}"#,
        br#"{"model":7,"stream":true}"#,
        br#"{"model":"m"}"#,
        br#"{"model":"m","stream":true"#,
        br#"{"model":"m","stream":"yes"}"#,
        br#"{"model":"m","a":"x\"stream":true}"#,
        br#"{"model":"m","a":"x\\\"stream":true}"#,
        br#"{"model":"m\"}"#,
        br#""model":"m","stream":true}"#,
        b"",
        b"}",
    ] {
        assert_eq!(ends(other), None, "{}", String::from_utf8_lossy(other));
    }
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<String>().prop_map(Into::into),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Into::into),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    /// A valid body laid out model first and stream last reads from its ends as whole; laid
    /// out otherwise, it is not read from its ends.
    #[test]
    fn the_ends_of_a_valid_body_are_its_fields(
        members in proptest::collection::btree_map("[a-z]{1,6}", json(), 0..5),
        model in json(),
        stream in prop_oneof![Just(serde_json::Value::Null), any::<bool>().prop_map(Into::into)],
        spaces in "[ \n\t\r]{0,3}",
    ) {
        let mut parts = vec![format!("\"model\"{spaces}:{spaces}{model}")];
        for (key, value) in &members {
            parts.push(format!("{}:{value}", serde_json::to_string(key).unwrap()));
        }
        parts.push(format!("\"stream\"{spaces}:{spaces}{stream}"));
        let body = format!("{spaces}{{{spaces}{}{spaces}}}{spaces}", parts.join(&format!("{spaces},")));
        let duplicate = members.contains_key("model") || members.contains_key("stream");
        match ends_read(body.as_bytes()) {
            Some(read) if !duplicate => prop_assert_eq!(Some(read), serde_reads(body.as_bytes())),
            Some(_) => {}
            None => prop_assert!(!model.is_string(), "{}", body),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ends(&body);
    }

    /// Whatever is read from the ends of any JSON object is what serde reads.
    #[test]
    fn any_valid_object_read_from_its_ends_reads_as_serde_reads_it(
        object in proptest::collection::btree_map("[a-z]{1,6}", json(), 0..6),
    ) {
        let body = serde_json::to_vec(&serde_json::Value::Object(object.into_iter().collect()))
            .unwrap();
        if let Some(read) = ends_read(&body) {
            prop_assert_eq!(Some(read), serde_reads(&body));
        }
    }
}
