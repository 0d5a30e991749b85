//! Bedrock's exceptions as Anthropic errors: the status each one stands for, and the error
//! body the client gets.
//!
//! | from Bedrock | status |
//! |---|---|
//! | `throttlingException`, `serviceQuotaExceededException` | 429 |
//! | `serviceUnavailableException`, `modelNotReadyException` | 503 |
//! | `internalServerException`, `modelStreamErrorException`, `modelErrorException` | 500 |
//! | `modelTimeoutException` | 504 |
//! | `validationException` | 400 |
//! | `accessDeniedException`, `unrecognizedClientException`, `expiredTokenException`, … | 403 |
//! | `resourceNotFoundException` | 404 |

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use relayrace_actors::AttemptError;
use serde::Deserialize;

use crate::anthropic::{error_body, error_type_for_status};
use crate::upstream::UpstreamFailure;
use crate::upstream::http::ErrorAnswer;

/// The status an exception type stands for (its name in any case, with or without the
/// `Exception` suffix's namespace: `ThrottlingException:http://…`, `…#ThrottlingException`).
pub(super) fn status_for(exception: &str) -> Option<StatusCode> {
    let name = exception.split(':').next().unwrap_or(exception);
    let name = name.rsplit('#').next().unwrap_or(name).to_ascii_lowercase();
    let status = match name.as_str() {
        "throttlingexception" | "servicequotaexceededexception" => 429,
        "serviceunavailableexception" | "modelnotreadyexception" => 503,
        "internalserverexception" | "modelstreamerrorexception" | "modelerrorexception" => 500,
        "modeltimeoutexception" => 504,
        "validationexception" => 400,
        "accessdeniedexception"
        | "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "expiredtokenexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception" => 403,
        "resourcenotfoundexception" => 404,
        _ => return None,
    };
    StatusCode::from_u16(status).ok()
}

/// An exception event of a stream, or an error answer: its status and Anthropic error body.
#[derive(Clone, Debug)]
pub(super) struct Exception {
    pub status: StatusCode,
    /// `{"type":"error","error":{…}}`.
    pub body: String,
}

impl Exception {
    /// The exception `kind` with Bedrock's `payload` (`{"message": …}`); an unknown kind is a
    /// 502.
    pub(super) fn new(kind: &str, payload: &[u8]) -> Self {
        let status = status_for(kind).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = message(payload).unwrap_or_else(|| format!("bedrock: {kind}"));
        Exception {
            status,
            body: error_body(error_type_for_status(status.as_u16()), &message),
        }
    }

    /// The failed attempt it makes before the commit point: a refused credential is a
    /// rejection, anything else a status (a 429 or 5xx fails over).
    pub(super) fn into_attempt_error(self) -> AttemptError {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            super::super::failure::json_content_type(),
        );
        UpstreamFailure::from_upstream(self.status, headers, Bytes::from(self.body))
            .into_attempt_error(None)
    }
}

/// An error answer of Bedrock's as an attempt error: its exception type (the
/// `x-amzn-errortype` header or the body's `__type`) decides the status, else the status it
/// came with.
pub(super) fn error_answer(answer: ErrorAnswer) -> AttemptError {
    let kind = answer
        .upstream_headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body_type(&answer.body));
    let status = kind
        .as_deref()
        .and_then(status_for)
        .unwrap_or(answer.status);
    let message = message(&answer.body)
        .unwrap_or_else(|| format!("bedrock answered with status {}", answer.status.as_u16()));
    let mut headers = answer.headers;
    headers.insert(
        header::CONTENT_TYPE,
        super::super::failure::json_content_type(),
    );
    let body = Bytes::from(error_body(error_type_for_status(status.as_u16()), &message));
    UpstreamFailure::from_upstream(status, headers, body).into_attempt_error(answer.retry_after)
}

#[derive(Deserialize)]
struct Payload {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type")]
    kind: Option<String>,
}

fn message(payload: &[u8]) -> Option<String> {
    let payload: Payload = serde_json::from_slice(payload).ok()?;
    payload.message.map(|m| m.chars().take(500).collect())
}

fn body_type(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<Payload>(payload).ok()?.kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_map_to_the_statuses_of_the_table() {
        for (kind, status) in [
            ("throttlingException", 429),
            ("serviceUnavailableException", 503),
            ("internalServerException", 500),
            ("modelStreamErrorException", 500),
            ("modelTimeoutException", 504),
            ("validationException", 400),
            ("AccessDeniedException", 403),
            (
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                429,
            ),
            ("com.amazon.coral.service#ValidationException", 400),
        ] {
            assert_eq!(status_for(kind).map(|s| s.as_u16()), Some(status), "{kind}");
        }
        assert_eq!(status_for("somethingNewException"), None);
    }

    #[test]
    fn an_exception_is_an_anthropic_error_with_bedrocks_message() {
        let exception =
            Exception::new("throttlingException", br#"{"message":"Too many requests"}"#);
        assert_eq!(exception.status, 429);
        let body: serde_json::Value = serde_json::from_str(&exception.body).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], "Too many requests");
        assert!(matches!(
            exception.into_attempt_error(),
            AttemptError::Status { status: 429, .. }
        ));
        let denied = Exception::new("accessDeniedException", b"{}").into_attempt_error();
        assert!(matches!(denied, AttemptError::Rejected { status: 403, .. }));
        let unknown = Exception::new("weirdException", b"not json");
        assert_eq!(unknown.status, 502);
    }
}
