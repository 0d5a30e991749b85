//! Bedrock and Vertex providers on 127.0.0.1: a throttled Bedrock fails over to Vertex, for a
//! JSON answer and for a stream (whose throttling arrives as an event-stream exception inside a
//! 200, before the first chunk).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::json;

use crate::{TestRelay, header};

const KEY_PEM: &str = include_str!("../../src/upstream/vertex/testdata/test-service-account.pem");

/// One event-stream message with string headers, its CRCs computed (as AWS frames them).
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        block.push(7);
        block.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(16 + block.len() + payload.len()).unwrap();
    let mut message = total.to_be_bytes().to_vec();
    message.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32fast::hash(&message);
    message.extend_from_slice(&prelude_crc.to_be_bytes());
    message.extend_from_slice(&block);
    message.extend_from_slice(payload);
    let crc = crc32fast::hash(&message);
    message.extend_from_slice(&crc.to_be_bytes());
    message
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A Bedrock that throttles: a 429 `ThrottlingException` for `invoke`, a 200 whose first
/// message is a `throttlingException` for streams. Counts the signed requests it got.
async fn throttled_bedrock(signed: Arc<AtomicUsize>) -> String {
    serve(Router::new().fallback(move |request: Request| {
        let signed = signed.clone();
        async move {
            let sigv4 = request.headers().get("authorization").is_some_and(|v| {
                v.to_str()
                    .unwrap()
                    .starts_with("AWS4-HMAC-SHA256 Credential=")
            });
            if sigv4 {
                signed.fetch_add(1, Ordering::SeqCst);
            }
            let message = r#"{"message":"Too many requests, please wait before trying again."}"#;
            if request
                .uri()
                .path()
                .ends_with("/invoke-with-response-stream")
            {
                let exception = frame(
                    &[
                        (":exception-type", "throttlingException"),
                        (":content-type", "application/json"),
                        (":message-type", "exception"),
                    ],
                    message.as_bytes(),
                );
                return Response::builder()
                    .header("content-type", "application/vnd.amazon.eventstream")
                    .body(Body::from(exception))
                    .unwrap();
            }
            Response::builder()
                .status(429)
                .header(
                    "x-amzn-errortype",
                    "ThrottlingException:http://internal.amazon.com/coral/",
                )
                .body(Body::from(message))
                .unwrap()
        }
    }))
    .await
}

/// A Vertex with its token endpoint at `/token`.
async fn vertex() -> String {
    serve(Router::new().fallback(|request: Request| async move {
        let path = request.uri().path().to_owned();
        if path == "/token" {
            return Response::new(Body::from(r#"{"access_token":"ya29.t","expires_in":3600}"#));
        }
        assert_eq!(request.headers()["authorization"], "Bearer ya29.t");
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        if path.ends_with(":streamRawPredict") {
            let sse = [
                r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_v","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{}}}"#,
                r#"event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}"#,
                r#"event: message_stop
data: {"type":"message_stop"}"#,
            ]
            .join("\n\n")
                + "\n\n";
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(sse))
                .unwrap();
        }
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(r#"{"id":"msg_v","type":"message","content":[]}"#))
            .unwrap()
    }))
    .await
}

#[tokio::test]
async fn a_throttled_bedrock_fails_over_to_vertex_streaming_and_json() {
    let signed = Arc::new(AtomicUsize::new(0));
    let bedrock = throttled_bedrock(signed.clone()).await;
    let vertex = vertex().await;
    let key_file =
        std::env::temp_dir().join(format!("relayrace-cloud-{}.json", std::process::id()));
    let key = json!({"type": "service_account", "client_email": "relay@p.iam.gserviceaccount.com",
        "private_key_id": "k1", "private_key": KEY_PEM, "token_uri": format!("{vertex}/token")});
    std::fs::write(&key_file, key.to_string()).unwrap();
    let yaml = format!(
        "providers:\n  - name: bedrock\n    type: bedrock\n    region: us-east-1\n    \
         base_url: {bedrock}\n    priority: 1\n    \
         timeouts: {{connect: 1s, first_event: 2s, idle: 2s, total: 20s}}\n  \
         - name: vertex\n    type: vertex\n    project: p\n    region: us-east5\n    \
         base_url: {vertex}\n    priority: 2\n    \
         timeouts: {{connect: 1s, first_event: 2s, idle: 2s, total: 20s}}\n"
    );
    let relay = TestRelay::start_with_env(
        &yaml,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("GOOGLE_APPLICATION_CREDENTIALS", key_file.to_str().unwrap()),
        ],
    )
    .await;
    for stream in [false, true] {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "stream": stream,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let response = relay.post(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "stream {stream}");
        assert_eq!(header(&response, "x-relayrace-provider"), "vertex");
        assert_eq!(header(&response, "x-relayrace-attempts"), "2");
        let text = response.text().await.unwrap();
        if stream {
            assert!(text.starts_with("event: message_start\n"), "{text}");
            assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        } else {
            assert!(text.contains("msg_v"), "{text}");
        }
    }
    assert_eq!(signed.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_file(key_file);
}
