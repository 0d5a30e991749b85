//! Optional client authentication: a relay key on `x-api-key` or `Authorization: Bearer`,
//! compared in constant time against every accepted key. The operator endpoints take the
//! operator key instead, when one is configured.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::config::Secret;
use crate::error::ApiError;

/// Rejects requests without an accepted relay key (when keys are configured).
pub(super) async fn require_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.settings().client_keys;
    admit(keys, request, next, ApiError::unauthenticated).await
}

/// Rejects requests to the operator endpoints without the operator key; without one
/// configured, as [`require_key`].
pub(super) async fn require_admin_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let settings = state.settings();
    match &settings.admin_key {
        Some(key) => {
            admit(std::slice::from_ref(key), request, next, || {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "invalid or missing operator key",
                )
            })
            .await
        }
        None => {
            admit(
                &settings.client_keys,
                request,
                next,
                ApiError::unauthenticated,
            )
            .await
        }
    }
}

/// Runs the request when `keys` is empty or it presents one of them; else answers `refusal`.
async fn admit(
    keys: &[Secret],
    request: Request,
    next: Next,
    refusal: impl FnOnce() -> ApiError,
) -> Response {
    if admitted(keys, request.headers()) {
        next.run(request).await
    } else {
        refusal().into_response()
    }
}

/// Whether a request with `headers` may pass: `keys` is empty or it presents one of them.
pub(super) fn admitted(keys: &[Secret], headers: &HeaderMap) -> bool {
    keys.is_empty() || presented(headers).is_some_and(|k| accepted(keys, k))
}

/// The key the client presented, from `x-api-key` or `Authorization: Bearer`.
pub(super) fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(key) = headers.get("x-api-key") {
        return Some(key.as_bytes());
    }
    let authorization = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let scheme = authorization.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| authorization[7..].trim_ascii())
}

/// Whether `key` is one of `keys`; every key is compared, each in constant time.
fn accepted(keys: &[Secret], key: &[u8]) -> bool {
    keys.iter().fold(false, |found, accepted| {
        found | bool::from(accepted.expose().as_bytes().ct_eq(key))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_key_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer  rk-1 ".parse().unwrap());
        assert_eq!(presented(&headers), Some(&b"rk-1"[..]));
        headers.insert("x-api-key", "rk-2".parse().unwrap());
        assert_eq!(presented(&headers), Some(&b"rk-2"[..]));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented(&basic), None);
    }

    #[test]
    fn accepts_only_configured_keys() {
        let keys = [Secret::new("rk-one"), Secret::new("rk-two")];
        assert!(accepted(&keys, b"rk-two"));
        assert!(!accepted(&keys, b"rk-tw"));
        assert!(!accepted(&keys, b""));
    }
}
