//! The HTTP provider against fake upstreams on 127.0.0.1, real time, short timeouts.

mod fake;
mod request;
mod tls;

use std::time::Duration;

use axum::response::IntoResponse;
use futures_util::StreamExt;
use http::StatusCode;
use relayrace_actors::AttemptError;
use tokio::sync::watch;
use tokio::time::{Instant, timeout};

use self::fake::{DELTA, MESSAGE_START, MESSAGE_STOP, OVERLOADED, PING};
use super::*;
use crate::config::{ProviderKind, Secret};
use crate::upstream::fixtures::{drain, full, provider, request};
use crate::upstream::{StreamError, UpstreamFailure};

/// A compatible provider at `base` with key `sk-test` and the fixture timeouts
/// (300 ms first event, 300 ms idle, 2 s total).
fn http_provider(base: &str, edit: impl FnOnce(&mut ResolvedProvider)) -> HttpProvider {
    let config = provider(ProviderKind::AnthropicCompatible, Some(base));
    let mut resolved = ResolvedProvider {
        base_url: config.checked_base_url().unwrap(),
        config,
        key: Some(Secret::new("sk-test")),
        cloud: None,
    };
    edit(&mut resolved);
    let base_url = resolved.base_url.clone().unwrap();
    HttpProvider::new(&resolved, &base_url).unwrap()
}

/// The attempt, bounded so a broken test fails instead of hanging.
async fn attempt(
    provider: &HttpProvider,
    request: &RelayRequest,
) -> Result<UpstreamResponse, AttemptError> {
    timeout(Duration::from_secs(5), provider.attempt(request))
        .await
        .unwrap()
}

fn failure_of(error: &AttemptError) -> &UpstreamFailure {
    let AttemptError::Status { detail, .. } = error else {
        panic!("{error:?}")
    };
    detail.downcast_ref::<UpstreamFailure>().unwrap()
}

#[tokio::test]
async fn a_json_answer_is_a_full_body_with_the_relayed_headers() {
    let mut fake = fake::serve(|| {
        let headers = [
            ("content-type", "application/json"),
            ("request-id", "req_1"),
            ("server", "x"),
        ];
        (headers, r#"{"type":"message"}"#).into_response()
    })
    .await;
    let response = attempt(&http_provider(&fake.url, |_| {}), &request(false))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["request-id"], "req_1");
    assert!(response.headers.get("server").is_none());
    assert_eq!(full(response), r#"{"type":"message"}"#);
    let seen = fake.request().await;
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.body, request(false).body);
}

#[tokio::test]
async fn a_stream_commits_at_its_first_event_while_the_upstream_holds_the_rest() {
    let (release, released) = watch::channel(false);
    let first = "event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_start\ndata: {\"type\":\"message_start\"}\n\n";
    let rest = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let fake = fake::serve(move || fake::sse(fake::held(first, rest, released.clone()))).await;
    let response = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap();
    assert_eq!(response.headers["content-type"], "text/event-stream");
    release.send(true).unwrap();
    // Chunks may carry several frames: what counts is the events, in order.
    let mut parser = sse::SseParser::new(sse::MAX_FRAME_BYTES);
    for chunk in drain(response).await {
        parser.push(&chunk.unwrap());
    }
    let kinds: Vec<_> = std::iter::from_fn(|| parser.next_frame().unwrap())
        .map(|frame| frame.event().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "ping",
            "message_start",
            "content_block_delta",
            "message_stop"
        ]
    );
}

#[tokio::test]
async fn an_error_event_before_the_first_event_is_an_error_status() {
    let fake =
        fake::serve(|| fake::sse(fake::paced(&[PING, OVERLOADED], Duration::ZERO, false))).await;
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap_err();
    assert_eq!(error.status_code(), Some(529));
    let failure = failure_of(&error);
    assert_eq!(failure.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn an_error_status_keeps_retry_after_headers_and_body() {
    let body = r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#;
    let fake = fake::serve(move || {
        let headers = [
            ("retry-after", "3"),
            ("content-type", "application/json"),
            ("request-id", "r"),
        ];
        (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
    })
    .await;
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap_err();
    assert_eq!(error.status_code(), Some(503));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    let failure = failure_of(&error);
    assert_eq!(failure.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failure.headers["request-id"], "r");
    assert_eq!(failure.headers["retry-after"], "3");
    assert_eq!(failure.body, body);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_a_bad_gateway() {
    let fake =
        fake::serve(|| (StatusCode::FOUND, [("location", "http://127.0.0.1:1/")]).into_response())
            .await;
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(false))
        .await
        .unwrap_err();
    assert_eq!(error.status_code(), Some(502));
    let body: serde_json::Value = serde_json::from_slice(&failure_of(&error).body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("redirect (status 302)"), "{message}");
}

#[tokio::test]
async fn a_json_answer_whose_body_does_not_start_times_out_at_the_first_event() {
    const HEADERS: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n";
    let (url, closed) = fake::raw(HEADERS).await;
    let started = Instant::now();
    let error = attempt(&http_provider(&url, |_| {}), &request(false))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AttemptError::Timeout { phase: "body" }),
        "{error:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    timeout(Duration::from_secs(1), closed)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_json_answer_that_stalls_halfway_times_out_after_the_idle_timeout() {
    let fake = fake::serve(|| {
        let body = axum::body::Body::from_stream(
            fake::paced(&[r#"{"type":"mess"#], Duration::from_millis(200), true)
                .map(Ok::<_, std::convert::Infallible>),
        );
        ([("content-type", "application/json")], body).into_response()
    })
    .await;
    let started = Instant::now();
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(false))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AttemptError::Timeout { phase: "body" }),
        "{error:?}"
    );
    // 200 ms to the first chunk (inside the 300 ms first-event timeout), then 300 ms idle.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_2xx_body_that_is_not_json_is_a_bad_gateway() {
    let fake =
        fake::serve(|| ([("content-type", "application/json")], "{not json").into_response()).await;
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(false))
        .await
        .unwrap_err();
    assert_eq!(error.status_code(), Some(502));
    let body: serde_json::Value = serde_json::from_slice(&failure_of(&error).body).unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(
        body["error"]["message"],
        "the provider's answer is not valid JSON"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    let url = fake::closed_port().await;
    let error = attempt(&http_provider(&url, |_| {}), &request(false))
        .await
        .unwrap_err();
    let AttemptError::Connection { message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.starts_with("connect error"), "{message}");
    assert!(!message.contains("sk-test"));
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_within_first_event() {
    let (url, closed) = fake::raw("").await;
    let started = Instant::now();
    let error = attempt(&http_provider(&url, |_| {}), &request(true))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "response headers"
            }
        ),
        "{error:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
        "{elapsed:?}"
    );
    timeout(Duration::from_secs(1), closed)
        .await
        .unwrap()
        .unwrap();
}

const SSE_HEADERS: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn headers_without_an_event_time_out_waiting_for_the_first_event() {
    let (url, _closed) = fake::raw(SSE_HEADERS).await;
    let error = attempt(&http_provider(&url, |_| {}), &request(true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "first event"
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_before_any_event_is_a_connection_error() {
    let fake = fake::serve(|| fake::sse(fake::paced(&[PING], Duration::ZERO, false))).await;
    let error = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AttemptError::Connection { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_cut_before_message_stop_is_truncated() {
    let fake =
        fake::serve(|| fake::sse(fake::paced(&[MESSAGE_START, DELTA], Duration::ZERO, false)))
            .await;
    let response = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap();
    let frames = drain(response).await;
    assert!(
        matches!(
            frames.as_slice(),
            [Ok(_), Ok(_), Err(StreamError::Truncated)]
        ),
        "{frames:?}"
    );
}

#[tokio::test]
async fn silence_after_some_events_ends_in_the_idle_timeout() {
    let fake = fake::serve(|| {
        fake::sse(fake::paced(
            &[MESSAGE_START, DELTA],
            Duration::from_millis(20),
            true,
        ))
    })
    .await;
    let response = attempt(&http_provider(&fake.url, |_| {}), &request(true))
        .await
        .unwrap();
    let started = Instant::now();
    let frames = drain(response).await;
    assert!(
        matches!(frames.as_slice(), [Ok(_), Ok(_), Err(StreamError::Idle(_))]),
        "{frames:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_complete_stream_ends_cleanly() {
    let chunks = [MESSAGE_START, DELTA, MESSAGE_STOP];
    let fake =
        fake::serve(move || fake::sse(fake::paced(&chunks, Duration::from_millis(10), false)))
            .await;
    let frames = drain(
        attempt(&http_provider(&fake.url, |_| {}), &request(true))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(Result::is_ok));
}

#[tokio::test]
async fn dropping_the_attempt_closes_the_connection() {
    let (url, closed) = fake::raw("").await;
    let provider = http_provider(&url, |_| {});
    let request = request(true);
    assert!(
        timeout(Duration::from_millis(100), provider.attempt(&request))
            .await
            .is_err()
    );
    timeout(Duration::from_secs(1), closed)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn dropping_a_committed_stream_closes_the_connection() {
    const FIRST: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
        18\r\nevent: x\ndata: {\"a\":1}\n\n\r\n";
    let (url, closed) = fake::raw(FIRST).await;
    let response = attempt(&http_provider(&url, |_| {}), &request(true))
        .await
        .unwrap();
    drop(response);
    timeout(Duration::from_secs(1), closed)
        .await
        .unwrap()
        .unwrap();
}
