//! The request body as a cloud provider takes it: the Messages API body with `model` moved into
//! the URL, `anthropic_version` in the body instead of a header, and (Bedrock) `stream` and the
//! `anthropic-beta` header folded into the body too. Every other field keeps its bytes.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// How a provider's body differs from the Messages API's.
pub(super) struct Envelope {
    /// The body's `anthropic_version` (`bedrock-2023-05-31`, `vertex-2023-10-16`).
    pub anthropic_version: &'static str,
    /// Whether `stream` leaves the body (Bedrock: the endpoint says it).
    pub drop_stream: bool,
    /// Whether the `anthropic-beta` header becomes the `anthropic_beta` body field.
    pub beta_in_body: bool,
}

/// Why a body cannot be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("the request body is not a JSON object")]
pub(super) struct NotAnObject;

impl Envelope {
    /// `body` rewritten: `model` (and `stream`, `anthropic_version`, `anthropic_beta` when they
    /// are replaced) removed, the provider's fields first, the rest as they came.
    pub(super) fn wrap(&self, body: &[u8], headers: &HeaderMap) -> Result<Bytes, NotAnObject> {
        let Fields(fields) = serde_json::from_slice::<Fields<'_>>(body).map_err(|_| NotAnObject)?;
        let betas = if self.beta_in_body {
            betas(headers, &fields)
        } else {
            None
        };
        let mut out = Vec::with_capacity(body.len() + 64);
        out.extend_from_slice(b"{\"anthropic_version\":");
        write_json(&mut out, &self.anthropic_version);
        if let Some(betas) = &betas {
            out.extend_from_slice(b",\"anthropic_beta\":");
            write_json(&mut out, betas);
        }
        for (key, value) in &fields {
            let replaced = match key.as_str() {
                "model" | "anthropic_version" => true,
                "stream" => self.drop_stream,
                "anthropic_beta" => betas.is_some(),
                _ => false,
            };
            if replaced {
                continue;
            }
            out.push(b',');
            write_json(&mut out, key);
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        Ok(Bytes::from(out))
    }
}

/// The betas of the `anthropic-beta` headers (comma-separated, each once), after those the
/// body already names; `None` when the headers name none.
fn betas(headers: &HeaderMap, fields: &[(String, &RawValue)]) -> Option<Vec<String>> {
    let mut from_headers = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|beta| !beta.is_empty())
        .peekable();
    from_headers.peek()?;
    let mut betas: Vec<String> = fields
        .iter()
        .find(|(key, _)| key == "anthropic_beta")
        .and_then(|(_, value)| serde_json::from_str(value.get()).ok())
        .unwrap_or_default();
    for beta in from_headers {
        if !betas.iter().any(|known| known == beta) {
            betas.push(beta.to_owned());
        }
    }
    Some(betas)
}

fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Serialising a string or a list of strings into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// The fields of a JSON object, in order, values unparsed.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::{Value, json};

    use super::*;

    const BEDROCK: Envelope = Envelope {
        anthropic_version: "bedrock-2023-05-31",
        drop_stream: true,
        beta_in_body: true,
    };
    const VERTEX: Envelope = Envelope {
        anthropic_version: "vertex-2023-10-16",
        drop_stream: false,
        beta_in_body: false,
    };

    fn wrap(envelope: &Envelope, body: Value, betas: &[&str]) -> Value {
        let mut headers = HeaderMap::new();
        for beta in betas {
            headers.append("anthropic-beta", HeaderValue::from_str(beta).unwrap());
        }
        let body = serde_json::to_vec(&body).unwrap();
        serde_json::from_slice(&envelope.wrap(&body, &headers).unwrap()).unwrap()
    }

    #[test]
    fn bedrock_moves_model_and_stream_out_and_the_version_and_betas_in() {
        let body = json!({"model": "claude-sonnet-4-5", "stream": true, "max_tokens": 5,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let wrapped = wrap(
            &BEDROCK,
            body,
            &[
                "context-1m-2025-08-07, interleaved-thinking-2025-05-14",
                "context-1m-2025-08-07",
            ],
        );
        assert_eq!(
            wrapped,
            json!({"anthropic_version": "bedrock-2023-05-31",
                   "anthropic_beta": ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"],
                   "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]})
        );
    }

    #[test]
    fn bedrock_without_beta_headers_keeps_the_bodys_own_betas() {
        let body = json!({"model": "m", "anthropic_beta": ["a"], "anthropic_version": "x"});
        assert_eq!(
            wrap(&BEDROCK, body.clone(), &[]),
            json!({"anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["a"]})
        );
        assert_eq!(
            wrap(&BEDROCK, body, &["b,a"]),
            json!({"anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["a", "b"]})
        );
    }

    #[test]
    fn vertex_moves_model_out_and_keeps_stream_and_headers_alone() {
        let body = json!({"model": "claude-haiku-4-5", "stream": true, "max_tokens": 5});
        assert_eq!(
            wrap(&VERTEX, body, &["some-beta"]),
            json!({"anthropic_version": "vertex-2023-10-16", "stream": true, "max_tokens": 5})
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let headers = HeaderMap::new();
        assert!(BEDROCK.wrap(b"[1]", &headers).is_err());
        assert!(VERTEX.wrap(b"{", &headers).is_err());
    }
}
