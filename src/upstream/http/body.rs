//! Rewrites a request body's `model`, leaving every other field as it came, in order.

use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// `body` with its top-level `model` set to `model`; every other field keeps its bytes and its
/// position. A body that is not a JSON object is returned unchanged (the upstream will say why).
pub(super) fn with_model(body: &Bytes, model: &str) -> Bytes {
    let Ok(Fields(fields)) = serde_json::from_slice::<Fields<'_>>(body) else {
        return body.clone();
    };
    let mut out = Vec::with_capacity(body.len() + model.len());
    out.push(b'{');
    for (index, (key, value)) in fields.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(&mut out, key);
        out.push(b':');
        if key == "model" {
            write_string(&mut out, model);
        } else {
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    out.push(b'}');
    Bytes::from(out)
}

fn write_string(out: &mut Vec<u8>, value: &str) {
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// The fields of a JSON object, in order, values unparsed.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(field) = map.next_entry::<String, &'de RawValue>()? {
            fields.push(field);
        }
        Ok(Fields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_model_and_keeps_field_order_and_bytes() {
        let body = Bytes::from_static(
            br#"{"stream": true, "model":"claude-x","max_tokens":1.50,"messages":[{"role":"user","content":"h\u00e9"}]}"#,
        );
        let rewritten = with_model(&body, "glm-4.6");
        assert_eq!(
            std::str::from_utf8(&rewritten).unwrap(),
            r#"{"stream":true,"model":"glm-4.6","max_tokens":1.50,"messages":[{"role":"user","content":"h\u00e9"}]}"#
        );
    }

    #[test]
    fn leaves_a_body_that_is_not_an_object_unchanged() {
        for body in [&b"[1,2]"[..], b"not json", b"{\"model\":"] {
            let body = Bytes::copy_from_slice(body);
            assert_eq!(with_model(&body, "m"), body);
        }
    }
}
