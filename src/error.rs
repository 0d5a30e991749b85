//! The relay's one error type: every error a client sees is Anthropic-shaped JSON
//! (`{"type":"error","error":{"type":…,"message":…}}`) and carries no internal detail.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relayrace_actors::{AttemptError, RouteError};

use crate::anthropic::error_body;
use crate::upstream::UpstreamFailure;

/// Anthropic's "overloaded" status.
const OVERLOADED: StatusCode = match StatusCode::from_u16(529) {
    Ok(status) => status,
    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
};

/// The `retry-after` (seconds) of a relay-made 529: short, the bound frees as answers end.
pub const OVERLOADED_RETRY_AFTER: &str = "1";

/// An error answered to a client.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// Relay-made error: status, Anthropic error type, message.
    Relay {
        /// HTTP status.
        status: StatusCode,
        /// Anthropic error type, e.g. `invalid_request_error`.
        kind: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// An upstream's own error answer, replayed as it came (status, relayed headers, body).
    Upstream(Box<UpstreamFailure>),
}

impl ApiError {
    /// A relay-made error.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError::Relay {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 401 `authentication_error`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or missing relay API key",
        )
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// 413 `request_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("request body exceeds the relay's limit of {limit} bytes"),
        )
    }

    /// 529 `overloaded_error`: the relay is at one of its bounds (answered with
    /// `retry-after: 1`, see [`OVERLOADED_RETRY_AFTER`]).
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(OVERLOADED, "overloaded_error", message)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Relay { status, .. } => *status,
            ApiError::Upstream(failure) => failure.status,
        }
    }

    /// The error for a route that produced no response.
    ///
    /// No healthy provider → 503; every attempt failed → the last upstream HTTP error among the
    /// attempts, replayed (so a client still sees a 429 and its `retry-after`), else 502; a
    /// non-failover error → that error; race timeout → 504. A provider's refusal of the relay's
    /// own credential is never replayed: the client's credential is fine, and a 401 would tell
    /// it otherwise; it is a 502 that says so.
    pub fn from_route(error: &RouteError) -> Self {
        match error {
            RouteError::NoProviders | RouteError::AllUnhealthy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "no healthy provider is available",
            ),
            RouteError::Failed { error, .. } => Self::from_attempt(error),
            RouteError::Exhausted { attempts, .. } => attempts
                .iter()
                .rev()
                .filter_map(|a| a.outcome.error())
                .find_map(replayable)
                .map(|failure| ApiError::Upstream(Box::new(failure)))
                .unwrap_or_else(|| {
                    let last = error
                        .last_error()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    Self::new(
                        StatusCode::BAD_GATEWAY,
                        "api_error",
                        format!(
                            "all {} upstream attempts failed; last: {last}",
                            attempts.len()
                        ),
                    )
                }),
            RouteError::Timeout { timeout, .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                format!(
                    "no provider answered within the race timeout of {}",
                    humantime_serde::re::humantime::format_duration(*timeout)
                ),
            ),
            RouteError::ModelNotServed { model, served } => Self::not_found(format!(
                "no provider of this relay serves the model `{model}`; served: {}",
                if served.is_empty() {
                    "none".to_owned()
                } else {
                    served.join(", ")
                }
            )),
            RouteError::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "the relay is shutting down",
            ),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                other.to_string(),
            ),
        }
    }

    fn from_attempt(error: &AttemptError) -> Self {
        if let Some(failure) = replayable(error) {
            return ApiError::Upstream(Box::new(failure));
        }
        match error {
            AttemptError::Timeout { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "api_error", error.to_string())
            }
            _ => Self::new(StatusCode::BAD_GATEWAY, "api_error", error.to_string()),
        }
    }
}

/// An upstream's own answer worth replaying: an error status, or a provider's 404 about the
/// model. Never a refused relay key (see [`ApiError::from_route`]).
fn replayable(error: &AttemptError) -> Option<UpstreamFailure> {
    match error {
        AttemptError::Status { detail, .. } | AttemptError::NotServed { detail, .. } => {
            detail.downcast_ref::<UpstreamFailure>().cloned()
        }
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Relay {
                status,
                kind,
                message,
            } => {
                let mut response = Response::new(Body::from(error_body(kind, &message)));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if status == OVERLOADED {
                    // Claude Code and the SDKs retry a 529 after this many seconds.
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from_static(OVERLOADED_RETRY_AFTER),
                    );
                }
                response
            }
            ApiError::Upstream(failure) => {
                let UpstreamFailure {
                    status,
                    headers,
                    body,
                } = *failure;
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                *response.headers_mut() = with_json_type(headers);
                response
            }
        }
    }
}

fn with_json_type(mut headers: HeaderMap) -> HeaderMap {
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    headers
}
