//! An upstream's error answer: its status, the headers relayed with it, an Anthropic-shaped
//! body, and the `retry-after` it asked for.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relayrace_actors::{AttemptError, Detail};

use crate::anthropic::{error_body, error_type_for_status};

/// Longest upstream message copied into a synthesised error body.
const MAX_MESSAGE_CHARS: usize = 500;

/// Payload of [`AttemptError::Status`]'s detail: the upstream's error answer, replayed to the
/// client when it is the last error of a route.
#[derive(Clone, Debug)]
pub struct UpstreamFailure {
    /// The status to answer with.
    pub status: StatusCode,
    /// The relayed subset of the upstream's headers (see [`relayed_headers`](super::relayed_headers)).
    pub headers: HeaderMap,
    /// An Anthropic-shaped JSON error body.
    pub body: Bytes,
}

impl UpstreamFailure {
    /// The upstream's answer, keeping its body when it is an Anthropic error object and
    /// otherwise wrapping what it said in one (the `content-type` then becomes JSON).
    pub fn from_upstream(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Self {
        let body = if is_anthropic_error(&body) {
            body
        } else {
            let message = upstream_message(&body)
                .unwrap_or_else(|| format!("upstream answered with status {}", status.as_u16()));
            headers.insert(header::CONTENT_TYPE, json_content_type());
            Bytes::from(error_body(error_type_for_status(status.as_u16()), &message))
        };
        UpstreamFailure {
            status,
            headers,
            body,
        }
    }

    /// A 502 `api_error` saying `message`: the provider's answer was unusable (a redirect, a
    /// 2xx body that is not what the API answers).
    pub fn bad_gateway(message: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, json_content_type());
        UpstreamFailure {
            status: StatusCode::BAD_GATEWAY,
            headers,
            body: Bytes::from(error_body("api_error", message)),
        }
    }

    /// This failure as an attempt error.
    pub fn into_attempt_error(self, retry_after: Option<Duration>) -> AttemptError {
        AttemptError::Status {
            status: self.status.as_u16(),
            retry_after,
            detail: Detail::new(self),
        }
    }
}

/// The `error.type` of an error event's data (`"unknown"` when it has none).
pub fn error_event_kind(data: Option<&str>) -> String {
    data.and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .and_then(|value| value.pointer("/error/type")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The wait a `retry-after` header asks for: delta-seconds or an HTTP-date (a past date is
/// zero). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

pub(super) fn json_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn is_anthropic_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|value| {
        value.get("type").and_then(|kind| kind.as_str()) == Some("error")
            && value
                .pointer("/error/type")
                .is_some_and(|kind| kind.is_string())
    })
}

/// What a non-Anthropic error body says: `error.message`, `message`, or `error` as a string.
fn upstream_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = ["/error/message", "/message", "/error"]
        .iter()
        .find_map(|pointer| value.pointer(pointer)?.as_str())?;
    Some(message.chars().take(MAX_MESSAGE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_event_kind_reads_the_nested_type() {
        let data = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_event_kind(Some(data)), "overloaded_error");
        assert_eq!(error_event_kind(Some("not json")), "unknown");
        assert_eq!(error_event_kind(None), "unknown");
    }

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            retry_after(&with_retry_after("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&with_retry_after(" 0 "), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn retry_after_reads_http_dates_relative_to_now() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let later = with_retry_after("Sun, 06 Nov 1994 08:50:07 GMT");
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = with_retry_after("Sun, 06 Nov 1994 08:00:00 GMT");
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
    }

    #[test]
    fn anthropic_error_bodies_are_kept_as_they_are() {
        let body =
            Bytes::from_static(br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#);
        let failure =
            UpstreamFailure::from_upstream(StatusCode::BAD_GATEWAY, HeaderMap::new(), body.clone());
        assert_eq!(failure.body, body);
        assert!(failure.headers.is_empty());
    }

    #[test]
    fn other_bodies_are_wrapped_in_an_anthropic_error() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let html = Bytes::from_static(b"<html>bad gateway</html>");
        let failure =
            UpstreamFailure::from_upstream(StatusCode::SERVICE_UNAVAILABLE, headers, html);
        let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(
            body["error"]["message"],
            "upstream answered with status 503"
        );
        assert_eq!(failure.headers[header::CONTENT_TYPE], "application/json");

        let openai = Bytes::from_static(br#"{"error":{"message":"model not found"}}"#);
        let failure =
            UpstreamFailure::from_upstream(StatusCode::NOT_FOUND, HeaderMap::new(), openai);
        let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
        assert_eq!(body["error"]["type"], "not_found_error");
        assert_eq!(body["error"]["message"], "model not found");
    }
}
