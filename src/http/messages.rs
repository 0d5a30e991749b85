//! `POST /v1/messages` and `/v1/messages/count_tokens`: read and check the request, route it
//! through the runtime, and answer with the winner's response (streamed event by event).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use relayrace_actors::{RouteError, Routed};
use tokio::time::Instant;
use tracing::Instrument;

use super::AppState;
use super::relay_body::{RequestLog, relay_stream};
use super::scan;
use crate::config::Secret;
use crate::error::ApiError;
use crate::observe::{Answer, Observer, RequestFacts, RequestOutcome, RouteSummary};
use crate::upstream::{
    ClientCredential, Endpoint, RelayRequest, ResponseBody, StreamStats, UpstreamResponse,
};

/// Client headers that go upstream; everything else (credentials, hop-by-hop, host) stays.
const FORWARDED: [&str; 5] = [
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "user-agent",
    "x-app",
];

/// A request refused before routing (at the in-flight bound, or for its own fault): its log
/// line, its metrics and its answer.
fn rejected(observer: &Observer, request_id: &str, started: Instant, error: ApiError) -> Response {
    tracing::info!(
        request_id,
        status = error.status().as_u16(),
        outcome = RequestOutcome::Rejected.as_str(),
        "request finished"
    );
    observer.finished(Answer {
        provider: None,
        model: "",
        outcome: RequestOutcome::Rejected,
        total: started.elapsed(),
        first_event: None,
        stream: StreamStats::default(),
    });
    with_request_id(error.into_response(), request_id)
}

/// Handles one Messages API request.
pub(super) async fn relay(
    State(state): State<AppState>,
    request: Request,
    endpoint: Endpoint,
) -> Response {
    let started = Instant::now();
    let request_id = next_request_id();
    let observer = state.observer().clone();
    let Some(admitted) = state.admit() else {
        // At the bound: answered at once, never queued (nothing of the body is read).
        let limit = state.settings().max_in_flight;
        let error = ApiError::overloaded(format!(
            "the relay is at its limit of {limit} requests in flight; retry shortly"
        ));
        return rejected(&observer, &request_id, started, error);
    };
    let in_flight = observer.in_flight();
    let (parts, body) = request.into_parts();
    let relay_request = match read_request(&state, &parts, body, endpoint).await {
        Ok(request) => request,
        Err(error) => return rejected(&observer, &request_id, started, error),
    };
    // Debug level: nothing on the request's own task logs at info inside it (the request's info
    // line carries these fields itself), and an enabled span costs a few microseconds a request.
    let span = tracing::debug_span!(
        "request",
        request_id,
        model = relay_request.model.as_str(),
        stream = relay_request.stream,
    );
    let mut log = RequestLog {
        request_id: request_id.clone(),
        model: relay_request.model.clone(),
        started,
        first_event: None,
        failover: None,
        observer,
        _in_flight: in_flight,
        _admitted: admitted,
    };
    let routing = Instant::now();
    let route = state.router().route(relay_request);
    // A disabled span is not worth entering and leaving on every poll.
    let routed = if span.is_disabled() {
        route.await
    } else {
        route.instrument(span).await
    };
    let elapsed = routing.elapsed();
    let facts = RequestFacts {
        request_id: &request_id,
        model: &log.model,
    };
    let response = match routed {
        Ok(routed) => {
            let route = RouteSummary::answered(&routed.report);
            log.observer.routed(&facts, &route, elapsed);
            log.first_event = route.first_event;
            log.failover = route.failover;
            respond(&state, routed, log)
        }
        Err(error) => {
            let route = RouteSummary::failed(&error);
            log.observer.routed(&facts, &route, elapsed);
            log.failover = route.failover;
            fail(&error, log)
        }
    };
    with_request_id(response, &request_id)
}

async fn read_request(
    state: &AppState,
    parts: &http::request::Parts,
    body: Body,
    endpoint: Endpoint,
) -> Result<RelayRequest, ApiError> {
    let limit = state.settings().max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let collected = tokio::time::timeout(
        state.settings().body_read_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "the request body did not arrive in time",
        )
    })?;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::too_large(limit));
        }
        Err(_) => {
            return Err(ApiError::invalid_request(
                "the request body could not be read",
            ));
        }
    };
    let peek = BodyPeek::read(&bytes)?;
    Ok(RelayRequest {
        endpoint,
        model: peek.model,
        stream: peek.stream,
        body: bytes,
        headers: forwarded_headers(&parts.headers),
        query: parts.uri.query().map(str::to_owned),
        client_credential: client_credential(&parts.headers),
    })
}

/// What the relay reads of a request body before routing it: `model` and `stream`; the rest
/// goes upstream untouched.
pub(crate) struct BodyPeek {
    /// The body's `model`, a non-empty string.
    pub(crate) model: String,
    /// The body's `stream`; absent or `null` is `false`.
    pub(crate) stream: bool,
}

impl BodyPeek {
    /// Reads `model` and `stream` from `body`, which must be a JSON object; the error says
    /// what is wrong, for the client's 400.
    pub(crate) fn read(body: &Bytes) -> Result<Self, ApiError> {
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::invalid_request(
                "request body must be a JSON object",
            ));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            ApiError::invalid_request(format!("request body is not valid JSON: {e}"))
        };
        // Claude Code's layout (model first, stream last) is read from the two ends alone;
        // any other body is read whole (see `scan`). `null` reads as absent.
        let (model, stream) = match scan::ends(body) {
            Some(ends) => {
                let token = |token: &[u8]| {
                    serde_json::from_slice::<Option<serde_json::Value>>(token)
                        .map_err(|e| invalid(&e))
                };
                (token(ends.model)?, token(ends.stream)?)
            }
            None => {
                #[derive(serde::Deserialize)]
                struct Fields {
                    model: Option<serde_json::Value>,
                    stream: Option<serde_json::Value>,
                }
                let fields: Fields = serde_json::from_slice(body).map_err(|e| invalid(&e))?;
                (fields.model, fields.stream)
            }
        };
        let model = match model {
            Some(serde_json::Value::String(model)) if !model.is_empty() => model,
            Some(serde_json::Value::String(_)) => {
                return Err(ApiError::invalid_request("model: must not be empty"));
            }
            Some(_) => return Err(ApiError::invalid_request("model: must be a string")),
            None => return Err(ApiError::invalid_request("model: field required")),
        };
        let stream = match stream {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(stream)) => stream,
            Some(_) => return Err(ApiError::invalid_request("stream: must be a boolean")),
        };
        Ok(BodyPeek { model, stream })
    }
}

fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut forwarded = HeaderMap::new();
    for (name, value) in headers {
        let name_str = name.as_str();
        if FORWARDED.contains(&name_str) || name_str.starts_with("x-stainless-") {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

fn client_credential(headers: &HeaderMap) -> Option<ClientCredential> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(ClientCredential::ApiKey(Secret::new(key)));
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| ClientCredential::Bearer(Secret::new(token.trim())))
}

fn respond(state: &AppState, routed: Routed<UpstreamResponse>, log: RequestLog) -> Response {
    let Routed { response, report } = routed;
    let UpstreamResponse {
        status,
        headers,
        body,
    } = response;
    let attempts = report.attempts.len();
    let provider = report.winner().clone();
    let body = match body {
        ResponseBody::Full(bytes) => {
            log.finish(
                provider.name(),
                attempts,
                status.as_u16(),
                RequestOutcome::Ok,
                StreamStats::default(),
            );
            Body::from(bytes)
        }
        ResponseBody::Stream(events) => relay_stream(
            events,
            provider.clone(),
            state.router().clone(),
            log.streaming(provider.name(), attempts, status.as_u16()),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    let relay_headers = response.headers_mut();
    if let Ok(name) = HeaderValue::from_str(provider.name()) {
        relay_headers.insert(PROVIDER, name);
    }
    relay_headers.insert(ATTEMPTS, HeaderValue::from(attempts));
    relay_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn fail(error: &RouteError, log: RequestLog) -> Response {
    let api_error = ApiError::from_route(error);
    let attempts = error.attempts().len();
    let provider = error
        .attempts()
        .last()
        .map(|a| a.provider.name().to_owned())
        .unwrap_or_default();
    tracing::warn!(request_id = %log.request_id, error = %error, "request failed");
    log.finish(
        &provider,
        attempts,
        api_error.status().as_u16(),
        RequestOutcome::Error,
        StreamStats::default(),
    );
    let mut response = api_error.into_response();
    response
        .headers_mut()
        .insert(ATTEMPTS, HeaderValue::from(attempts));
    response
}

const PROVIDER: HeaderName = HeaderName::from_static("x-relayrace-provider");
const ATTEMPTS: HeaderName = HeaderName::from_static("x-relayrace-attempts");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-relayrace-request-id");

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

fn next_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    request_id_text(base.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// `format!("rr_{id:016x}")` without the formatting machinery (once per request).
fn request_id_text(id: u64) -> String {
    let mut text = String::with_capacity(19);
    text.push_str("rr_");
    for shift in (0..64).step_by(4).rev() {
        text.push(char::from(
            b"0123456789abcdef"[(id >> shift) as usize & 0xf],
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    mod props {
        //! Property tests of the body scan (they run in CI on stable).
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_and_only_an_object_with_a_model_passes(
                body in proptest::collection::vec(any::<u8>(), 0..512),
            ) {
                if let Ok(peek) = BodyPeek::read(&Bytes::from(body.clone())) {
                    match serde_json::from_slice::<serde_json::Value>(&body) {
                        Ok(value) => {
                            prop_assert_eq!(value["model"].as_str(), Some(peek.model.as_str()));
                        }
                        // Only a body read from its ends goes unchecked in between.
                        Err(_) => prop_assert!(scan::ends(&body).is_some()),
                    }
                }
            }

            #[test]
            fn model_and_stream_are_read_whatever_else_the_body_holds(
                model in "[ -~]{1,40}",
                stream in proptest::option::of(any::<bool>()),
                extra in proptest::collection::btree_map("[a-z_]{1,8}", any::<i64>(), 0..6),
            ) {
                let mut body = serde_json::Map::new();
                for (key, value) in &extra {
                    body.insert(key.clone(), (*value).into());
                }
                body.insert("model".into(), model.clone().into());
                if let Some(stream) = stream {
                    body.insert("stream".into(), stream.into());
                }
                let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
                let peek = BodyPeek::read(&bytes).unwrap();
                prop_assert_eq!(peek.model, model);
                prop_assert_eq!(peek.stream, stream.unwrap_or(false));
            }
        }
    }

    #[test]
    fn request_ids_are_rr_and_sixteen_hex_digits() {
        for id in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(request_id_text(id), format!("rr_{id:016x}"));
        }
        assert_ne!(next_request_id(), next_request_id());
    }

    #[test]
    fn the_body_peek_reads_model_and_stream() {
        let peek =
            BodyPeek::read(&Bytes::from_static(br#"{"model":"m","stream":true,"x":1}"#)).unwrap();
        assert_eq!((peek.model.as_str(), peek.stream), ("m", true));
        let peek = BodyPeek::read(&Bytes::from_static(br#"{"model":"m"}"#)).unwrap();
        assert!(!peek.stream);
    }

    #[test]
    fn the_body_peek_rejects_bad_bodies_with_clear_messages() {
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "must be a JSON object"),
            (br#"{"model":"m""#, "not valid JSON"),
            (b"[1,2]", "must be a JSON object"),
            (br#"{"max_tokens":1}"#, "model: field required"),
            (br#"{"model":7}"#, "model: must be a string"),
            (
                br#"{"model":"m","stream":"yes"}"#,
                "stream: must be a boolean",
            ),
        ];
        for (body, expected) in cases {
            let error = BodyPeek::read(&Bytes::copy_from_slice(body)).err().unwrap();
            let ApiError::Relay {
                status, message, ..
            } = error
            else {
                panic!("relay error expected");
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn only_allowlisted_headers_go_upstream() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "tools"),
            ("x-stainless-lang", "js"),
            ("x-api-key", "secret"),
            ("authorization", "Bearer secret"),
            ("connection", "keep-alive"),
            ("host", "relay"),
            ("cookie", "a=b"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        let forwarded = forwarded_headers(&headers);
        let mut names: Vec<&str> = forwarded.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["anthropic-beta", "anthropic-version", "x-stainless-lang"]
        );
    }

    #[test]
    fn the_client_credential_is_kept_for_passthrough_only() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer tok".parse().unwrap());
        let Some(ClientCredential::Bearer(token)) = client_credential(&headers) else {
            panic!("bearer expected");
        };
        assert_eq!(token.expose(), "tok");
        assert_eq!(format!("{token:?}"), "***");
    }
}
