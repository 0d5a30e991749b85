//! Bad client input, answered in process with `app().oneshot()`.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use relayrace::Relay;
use serde_json::Value;
use tower::ServiceExt;

use crate::prepare;

const SIMULATED: &str = "
server:
  max_body_bytes: 2048
providers:
  - name: sim
    type: simulated
    models: [sim-1, shared]
  - name: sim2
    type: simulated
    priority: 2
    models: [shared, sim-2, 'sim-*']
    model_mapping:
      mapped: sim-2
      'mapped-*': sim-2
  - name: off
    type: simulated
    enabled: false
    models: [hidden]
";

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    let (config, resolved) = prepare(SIMULATED, &[]);
    let relay = Relay::start(&config, &resolved).await.unwrap();
    let response = relay.app().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn malformed_json_is_an_invalid_request() {
    for body in ["not json", r#"{"model": "x""#, "[]", ""] {
        let (status, json) = call(post("/v1/messages", body)).await;
        assert_error(
            status,
            &json,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        );
    }
}

#[tokio::test]
async fn a_missing_model_is_an_invalid_request() {
    let (status, body) = call(post("/v1/messages", r#"{"max_tokens": 5}"#)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("model"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let big = format!(r#"{{"model":"m","pad":"{}"}}"#, "x".repeat(4096));
    let (status, body) = call(post("/v1/messages", big.clone())).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    );
    // Also when no content-length announces it (a chunked body).
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(big.into_bytes())]);
    let (status, body) = call(post("/v1/messages", Body::from_stream(stream))).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    );
}

#[tokio::test]
async fn unknown_paths_are_404_with_an_anthropic_body() {
    let (status, body) = call(Request::get("/v2/nothing").body(Body::empty()).unwrap()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found_error");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_an_anthropic_body() {
    let (status, body) = call(Request::get("/v1/messages").body(Body::empty()).unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn models_lists_each_exact_name_the_enabled_providers_serve_once() {
    let (status, body) = call(Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // `models` then `model_mapping` keys; no patterns, nothing of the disabled provider.
    assert_eq!(ids, ["sim-1", "shared", "sim-2", "mapped"]);
    assert_eq!(body["data"][0]["type"], "model");
    assert_eq!(body["data"][3]["display_name"], "mapped");
    assert_eq!(body["has_more"], false);
    assert_eq!(body["first_id"], "sim-1");
    assert_eq!(body["last_id"], "mapped");
}

#[tokio::test]
async fn health_answers_without_authentication() {
    let (status, body) = call(Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn count_tokens_is_routed_like_messages() {
    let (status, body) = call(post(
        "/v1/messages/count_tokens",
        r#"{"model":"shared","messages":[{"role":"user","content":"hello there"}]}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["input_tokens"].as_u64().is_some(), "{body}");
}

#[tokio::test]
async fn a_simulated_provider_answers_in_the_messages_format() {
    let (status, body) = call(post(
        "/v1/messages",
        r#"{"model":"sim-2","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "sim-2");
}
