//! An upstream's error answer: its status, the headers relayed with it, an Anthropic-shaped
//! body, and the `retry-after` it asked for.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relayrace_actors::{AttemptError, Detail};

use crate::anthropic::{error_body, error_type_for_status};

/// What an error message says when the account behind a key cannot be served until someone
/// acts (lower case).
const ACCOUNT_EXHAUSTED: [&str; 4] = [
    "spend limit",
    "api usage limits",
    "credit balance",
    "insufficient balance",
];

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

    /// This failure as an attempt error, from a provider that uses the relay's own credential:
    /// a refusal of it ([`refuses_account`](Self::refuses_account)) is
    /// [`AttemptError::Rejected`] (fail over, the provider leaves rotation), anything else
    /// [`AttemptError::Status`].
    pub fn into_attempt_error(self, retry_after: Option<Duration>) -> AttemptError {
        if self.refuses_account() {
            return AttemptError::Rejected {
                status: self.status.as_u16(),
                detail: Detail::new(self),
            };
        }
        self.into_client_error(retry_after)
    }

    /// This failure as an attempt error, from a provider that was sent the client's own
    /// credential (`auth: passthrough`): a refusal is about the client's credential, so it is
    /// an [`AttemptError::Status`] that reaches the client unchanged. (A 404 about the model is
    /// [`AttemptError::NotServed`] either way.)
    pub fn into_client_error(self, retry_after: Option<Duration>) -> AttemptError {
        if self.is_model_not_found() {
            return AttemptError::NotServed {
                status: self.status.as_u16(),
                detail: Detail::new(self),
            };
        }
        AttemptError::Status {
            status: self.status.as_u16(),
            retry_after,
            detail: Detail::new(self),
        }
    }

    /// Whether the answer is a 404 `not_found_error`: on the Messages API (whose endpoints
    /// exist) that is the model (Anthropic: `"model: claude-…"`), so the provider's model list
    /// was wrong and another provider that serves the model should be tried.
    pub fn is_model_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            && error_field(&self.body, "/error/type").as_deref() == Some("not_found_error")
    }

    /// Whether the answer refuses the credential or the account behind it: 401, 402, 403, or
    /// a 400 or 429 whose message says a spend limit, the usage limits or the balance ran out
    /// (Anthropic: "would exceed your account's monthly spend limit", "reached your specified
    /// workspace API usage limits", "credit balance is too low"). Such a 429 is no transient
    /// rate limit: retrying it soon cannot succeed.
    pub fn refuses_account(&self) -> bool {
        match self.status.as_u16() {
            401..=403 => true,
            400 | 429 => error_field(&self.body, "/error/message").is_some_and(|message| {
                let message = message.to_ascii_lowercase();
                ACCOUNT_EXHAUSTED
                    .iter()
                    .any(|phrase| message.contains(phrase))
            }),
            _ => false,
        }
    }
}

/// The `error.type` of an error event's data (`"unknown"` when it has none).
pub fn error_event_kind(data: Option<&str>) -> String {
    data.and_then(|data| error_field(data.as_bytes(), "/error/type"))
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

/// The string at `pointer` (`/error/type`, `/error/message`) of a JSON error body.
fn error_field(body: &[u8], pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.pointer(pointer)?.as_str()?.to_owned())
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

    fn answer(status: u16, error_type: &str, message: &str) -> UpstreamFailure {
        let body = Bytes::from(error_body(error_type, message));
        UpstreamFailure::from_upstream(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            body,
        )
    }

    #[test]
    fn a_refused_key_or_an_exhausted_account_is_a_rejection() {
        for status in [401, 402, 403] {
            let error = answer(status, "authentication_error", "invalid x-api-key")
                .into_attempt_error(None);
            assert!(matches!(error, AttemptError::Rejected { .. }), "{status}");
        }
        for (status, message) in [
            (
                429,
                "This request would exceed your account's monthly spend limit. Please try again later.",
            ),
            (
                400,
                "You have reached your specified workspace API usage limits. You will regain access on 2026-09-01 at 00:00 UTC.",
            ),
            (
                400,
                "Your credit balance is too low to access the Anthropic API.",
            ),
        ] {
            let error = answer(status, "rate_limit_error", message).into_attempt_error(None);
            assert!(matches!(error, AttemptError::Rejected { .. }), "{message}");
        }
    }

    #[test]
    fn a_plain_rate_limit_or_bad_request_is_no_rejection() {
        let limited = answer(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        )
        .into_attempt_error(Some(Duration::from_secs(3)));
        assert!(matches!(limited, AttemptError::Status { status: 429, .. }));
        let bad =
            answer(400, "invalid_request_error", "prompt is too long").into_attempt_error(None);
        assert!(matches!(bad, AttemptError::Status { status: 400, .. }));
    }

    #[test]
    fn a_404_not_found_error_is_a_model_the_provider_does_not_serve() {
        let error = answer(404, "not_found_error", "model: claude-opus-9").into_attempt_error(None);
        assert!(matches!(error, AttemptError::NotServed { status: 404, .. }));
        let other = answer(404, "api_error", "no route").into_attempt_error(None);
        assert!(matches!(other, AttemptError::Status { status: 404, .. }));
    }

    #[test]
    fn a_refusal_of_the_clients_own_credential_is_the_clients() {
        let error =
            answer(401, "authentication_error", "invalid x-api-key").into_client_error(None);
        assert!(matches!(error, AttemptError::Status { status: 401, .. }));
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
