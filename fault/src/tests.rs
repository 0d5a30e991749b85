//! End-to-end over real sockets and real time, with reqwest as the client.

use std::future::Future;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use super::*;

mod misbehaviour;

/// Bounds every wait, so a broken behaviour fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(5);

async fn within<F: Future>(future: F) -> F::Output {
    timeout(PATIENCE, future).await.expect("timed out")
}

async fn upstream(scenario: &str) -> FaultUpstream {
    FaultUpstream::start(scenario.parse().unwrap())
        .await
        .unwrap()
}

fn request_body(model: &str, stream: bool) -> Vec<u8> {
    let body = json!({"model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "hello"}]});
    serde_json::to_vec(&body).unwrap()
}

async fn send(
    client: &reqwest::Client,
    upstream: &FaultUpstream,
    model: &str,
    stream: bool,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/v1/messages", upstream.url()))
        .header("x-api-key", "sk-upstream")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(request_body(model, stream))
        .send()
        .await
}

async fn post(upstream: &FaultUpstream, model: &str, stream: bool) -> reqwest::Response {
    within(send(&reqwest::Client::new(), upstream, model, stream))
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&within(response.bytes()).await.unwrap()).unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

fn event_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect()
}

const FULL_SEQUENCE: [&str; 8] = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
];

#[tokio::test]
async fn ok_json_answer_echoes_the_model_with_usage_name_and_unique_ids() {
    let upstream = upstream("name=alpha,words=3").await;
    let first = post(&upstream, "claude-test", false).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "content-type"), "application/json");
    assert_eq!(header(&first, "x-fault-name"), "alpha");
    let request_id = header(&first, "request-id").to_owned();
    assert!(request_id.starts_with("req_fault_"), "{request_id}");
    let message = json_of(first).await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "claude-test");
    assert_eq!(message["content"][0]["text"], "[alpha] word1 word2 word3");
    assert_eq!(message["usage"]["output_tokens"], 3);
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let second = json_of(post(&upstream, "claude-test", false).await).await;
    assert_ne!(message["id"], second["id"]);

    let attempts = upstream.attempts();
    assert_eq!(upstream.attempt_count(), 2);
    assert_eq!(attempts[0].request_id, request_id);
    assert_eq!(attempts[0].path, "/v1/messages");
    assert!(attempts[0].completed && !attempts[0].disconnected);
}

#[tokio::test]
async fn ok_stream_sends_the_full_event_sequence() {
    let upstream = upstream("words=2,event_delay_ms=5").await;
    let response = post(&upstream, "claude-test", true).await;
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let text = within(response.text()).await.unwrap();
    assert_eq!(event_names(&text), FULL_SEQUENCE);
    for data in text.lines().filter_map(|line| line.strip_prefix("data: ")) {
        serde_json::from_str::<Value>(data).unwrap();
    }
    assert!(text.contains(r#""model":"claude-test""#), "{text}");
    let attempt = &upstream.attempts()[0];
    assert!(attempt.stream && attempt.completed && !attempt.disconnected);
}

#[tokio::test]
async fn records_capture_headers_and_body_as_received() {
    let upstream = upstream("ok").await;
    post(&upstream, "claude-test", false).await;
    let attempt = &upstream.attempts()[0];
    assert_eq!(attempt.headers["x-api-key"], "sk-upstream");
    assert_eq!(attempt.headers["anthropic-version"], "2023-06-01");
    assert!(attempt.headers.get("authorization").is_none());
    assert_eq!(attempt.body, request_body("claude-test", false));
    assert_eq!(
        (attempt.model.as_str(), attempt.stream),
        ("claude-test", false)
    );
    assert_eq!(attempt.scenario, "ok");
}

#[tokio::test]
async fn status_replies_are_anthropic_shaped_with_retry_after_and_message() {
    let upstream = upstream("status=429,retry_after=7").await;
    let limited = post(&upstream, "claude-test", true).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "retry-after"), "7");
    let body = json_of(limited).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let long = "fault:status=400,message=prompt is too long: 300000 tokens > 200000 maximum";
    let too_long = json_of(post(&upstream, long, false).await).await;
    assert_eq!(too_long["error"]["type"], "invalid_request_error");
    assert_eq!(
        too_long["error"]["message"],
        "prompt is too long: 300000 tokens > 200000 maximum"
    );
    let overloaded = post(&upstream, "fault:status=529", false).await;
    assert_eq!(overloaded.status(), 529);
    assert_eq!(
        json_of(overloaded).await["error"]["type"],
        "overloaded_error"
    );
    assert!(upstream.attempts().iter().all(|a| a.completed));
}

#[test]
fn error_types_follow_the_status() {
    for (code, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (500, "api_error"),
        (503, "api_error"),
    ] {
        assert_eq!(
            reply::error_type(http::StatusCode::from_u16(code).unwrap()),
            kind
        );
    }
}

#[tokio::test]
async fn fault_model_overrides_the_default_scenario() {
    let upstream = upstream("ok").await;
    assert_eq!(
        post(&upstream, "fault:status=503", false).await.status(),
        503
    );
    assert_eq!(post(&upstream, "claude-test", false).await.status(), 200);
    let invalid = post(&upstream, "fault:bogus=1", false).await;
    assert_eq!(invalid.status(), 400);
    let message = json_of(invalid).await["error"]["message"].to_string();
    assert!(
        message.contains("bogus") && message.contains("valid keys"),
        "{message}"
    );

    let attempts = upstream.attempts();
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.model.as_str(), a.scenario.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("fault:status=503", "status=503"),
            ("claude-test", "ok"),
            ("fault:bogus=1", "bogus=1")
        ]
    );
}

#[tokio::test]
async fn set_scenario_changes_the_default_for_later_requests() {
    let upstream = upstream("ok").await;
    upstream.set_scenario("status=529".parse().unwrap());
    assert_eq!(upstream.scenario().to_string(), "status=529");
    assert_eq!(post(&upstream, "claude-test", false).await.status(), 529);
}

#[tokio::test]
async fn count_tokens_answers_input_tokens_and_follows_the_scenario() {
    let upstream = upstream("ok").await;
    let count = |model: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/v1/messages/count_tokens", upstream.url()))
            .body(request_body(model, false))
            .send()
    };
    let counted = json_of(within(count("claude-test")).await.unwrap()).await;
    assert!(counted["input_tokens"].as_u64().unwrap() > 0, "{counted}");
    assert_eq!(
        within(count("fault:status=429")).await.unwrap().status(),
        429
    );
    assert_eq!(upstream.attempts()[0].path, "/v1/messages/count_tokens");
}

#[tokio::test]
async fn wait_for_attempts_wakes_on_arrival_and_bad_bodies_get_400() {
    let upstream = upstream("ok").await;
    let waiter = upstream.wait_for_attempts(1);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", upstream.url());
    let (_, response) =
        within(async { tokio::join!(waiter, client.post(&url).body("{").send()) }).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        json_of(response).await["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(upstream.attempts()[0].model, "");
}
