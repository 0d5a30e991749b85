//! The Bedrock provider against local servers on 127.0.0.1: the SigV4 signature checked as AWS
//! computes it over what arrived, event-stream answers built here with real CRCs.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request as ServerRequest;
use axum::response::Response;
use base64::Engine;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use ring::hmac;
use tokio::sync::mpsc;

use super::eventstream::encode;
use super::*;
use crate::config::{CloudAccess, ProviderKind, Secret};
use crate::upstream::fixtures::{provider, request};
use crate::upstream::{ResponseBody, StreamError, UpstreamFailure};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const MODEL_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// What a test server saw of one request.
#[derive(Debug)]
struct Seen {
    path: String,
    headers: http::HeaderMap,
    body: serde_json::Value,
    /// `Ok` when the signature is what AWS computes over the request as received.
    signature: Result<(), String>,
}

/// A server answering every request with `answer()`, reporting what it saw.
async fn serve(
    answer: impl Fn() -> Response + Clone + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (seen, requests) = mpsc::unbounded_channel();
    let app = Router::new().fallback(move |request: ServerRequest| {
        let answer = answer.clone();
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let _ = seen.send(Seen {
                path: parts.uri.path().to_owned(),
                signature: verify(&parts, &body),
                headers: parts.headers,
                body: serde_json::from_slice(&body).unwrap_or_default(),
            });
            answer()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, requests)
}

/// Recomputes the SigV4 signature of a received request: the canonical request over its path
/// as received (encoded once more), the headers it lists as signed, and its body's hash.
fn verify(parts: &http::request::Parts, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let authorization = header("authorization")?;
    let amz_date = header("x-amz-date")?;
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .ok_or("not sigv4")?;
    let (credential, rest) = rest
        .split_once(", SignedHeaders=")
        .ok_or("no signed headers")?;
    let (signed_headers, signature) = rest.split_once(", Signature=").ok_or("no signature")?;
    let scope = credential
        .strip_prefix("AKIDEXAMPLE/")
        .ok_or("wrong key id")?;
    if scope != format!("{}/us-east-1/bedrock/aws4_request", &amz_date[..8]) {
        return Err(format!("wrong scope {scope}"));
    }
    let values: Vec<(String, String)> = signed_headers
        .split(';')
        .filter(|name| !matches!(*name, "x-amz-date" | "x-amz-security-token"))
        .map(|name| Ok((name.to_owned(), header(name)?)))
        .collect::<Result<_, String>>()?;
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let token = header("x-amz-security-token").ok();
    let unsigned = sigv4::Unsigned {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &pairs,
        payload: body,
    };
    let (canonical, listed) = sigv4::canonical_request(&unsigned, &amz_date, token.as_deref());
    if listed != signed_headers {
        return Err(format!(
            "signed headers {signed_headers}, expected {listed}"
        ));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sigv4::hex(digest.as_ref())
    );
    let mut key = format!("AWS4{SECRET}").into_bytes();
    for part in [&amz_date[..8], "us-east-1", "bedrock", "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let expected = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        string_to_sign.as_bytes(),
    );
    if sigv4::hex(expected.as_ref()) != signature {
        return Err(format!("signature mismatch over:\n{canonical}"));
    }
    Ok(())
}

fn bedrock(base: &str, credentials: CloudCredentials) -> BedrockProvider {
    let mut config = provider(ProviderKind::Bedrock, Some(base));
    config.model_mapping = [("claude-test".to_owned(), MODEL_ID.to_owned())].into();
    let base_url: Url = base.parse().unwrap();
    let resolved = ResolvedProvider {
        base_url: Some(base_url.clone()),
        config,
        key: None,
        cloud: Some(CloudAccess {
            region: "us-east-1".to_owned(),
            credentials,
        }),
    };
    BedrockProvider::new(&resolved, &base_url).unwrap()
}

fn keys(session_token: Option<&str>) -> CloudCredentials {
    CloudCredentials::AwsKeys {
        keys: AwsKeys {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new(SECRET),
            session_token: session_token.map(Secret::new),
        },
        source: "test".to_owned(),
    }
}

fn chunk(event: &serde_json::Value) -> Vec<u8> {
    let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    encode(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        serde_json::json!({ "bytes": bytes, "p": "abcd" })
            .to_string()
            .as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    encode(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        serde_json::json!({ "message": message })
            .to_string()
            .as_bytes(),
    )
}

fn message_start() -> serde_json::Value {
    serde_json::json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "usage": {}}})
}

/// The events of a whole answer.
fn answer_events() -> Vec<serde_json::Value> {
    vec![
        message_start(),
        serde_json::json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        serde_json::json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hi"}}),
        serde_json::json!({"type": "content_block_stop", "index": 0}),
        serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 1}}),
        serde_json::json!({"type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3}}),
    ]
}

/// An event-stream answer of `bytes`, sent in pieces of `piece` bytes.
fn event_stream(bytes: Arc<Vec<u8>>, piece: usize) -> impl Fn() -> Response + Clone {
    move || {
        let pieces: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(piece)
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        Response::builder()
            .header("content-type", EVENT_STREAM)
            .body(Body::from_stream(futures_util::stream::iter(pieces)))
            .unwrap()
    }
}

async fn relayed(response: UpstreamResponse) -> (String, Option<StreamError>) {
    let ResponseBody::Stream(mut events) = response.body else {
        panic!("expected a stream");
    };
    let mut text = String::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
            Err(error) => return (text, Some(error)),
        }
    }
    (text, None)
}

#[tokio::test]
async fn a_stream_is_signed_and_relayed_as_the_anthropic_sse_events() {
    let mut bytes = Vec::new();
    for event in answer_events() {
        bytes.extend(chunk(&event));
    }
    // 7-byte pieces: every message arrives split across reads.
    let (url, mut seen) = serve(event_stream(Arc::new(bytes), 7)).await;
    let provider = bedrock(&url, keys(Some("session-token-value")));
    let mut streamed = request(true);
    streamed.headers.insert(
        "anthropic-beta",
        HeaderValue::from_static("context-1m-2025-08-07"),
    );
    let response = provider.attempt(&streamed).await.unwrap();
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let (text, error) = relayed(response).await;
    assert!(error.is_none(), "{error:?}");
    let expected: String = answer_events()
        .iter()
        .map(|event| {
            let mut event = event.clone();
            event
                .as_object_mut()
                .unwrap()
                .remove("amazon-bedrock-invocationMetrics");
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(text, expected);

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.signature, Ok(()));
    assert_eq!(
        seen.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    );
    assert_eq!(seen.headers["x-amz-security-token"], "session-token-value");
    assert_eq!(seen.headers["accept"], EVENT_STREAM);
    assert_eq!(seen.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        seen.body["anthropic_beta"],
        serde_json::json!(["context-1m-2025-08-07"])
    );
    assert!(seen.body.get("model").is_none() && seen.body.get("stream").is_none());
}

#[tokio::test]
async fn a_json_answer_calls_invoke_and_is_relayed_as_it_came() {
    let body = r#"{"id":"msg_1","type":"message","content":[]}"#;
    let (url, mut seen) = serve(move || {
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    })
    .await;
    let response = bedrock(&url, keys(None))
        .attempt(&request(false))
        .await
        .unwrap();
    let ResponseBody::Full(full) = response.body else {
        panic!("expected JSON");
    };
    assert_eq!(full, body);
    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.signature, Ok(()));
    assert!(seen.path.ends_with("v1%3A0/invoke"), "{}", seen.path);
    assert!(!seen.headers.contains_key("x-amz-security-token"));
}

#[tokio::test]
async fn an_exception_before_the_first_chunk_fails_the_attempt_with_its_status() {
    let bytes = Arc::new(exception(
        "throttlingException",
        "Too many requests, please wait",
    ));
    let (url, _seen) = serve(event_stream(bytes, 1024)).await;
    let error = bedrock(&url, keys(None))
        .attempt(&request(true))
        .await
        .unwrap_err();
    let AttemptError::Status { status, detail, .. } = error else {
        panic!("expected a status, got {error:?}");
    };
    assert_eq!(status, 429);
    let failure = detail.downcast_ref::<UpstreamFailure>().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["message"], "Too many requests, please wait");
}

#[tokio::test]
async fn an_exception_after_the_first_chunk_becomes_an_error_event() {
    let mut bytes = chunk(&message_start());
    bytes.extend(exception("modelStreamErrorException", "the model broke"));
    let (url, _seen) = serve(event_stream(Arc::new(bytes), 1024)).await;
    let response = bedrock(&url, keys(None))
        .attempt(&request(true))
        .await
        .unwrap();
    let (text, error) = relayed(response).await;
    let last = text.rsplit("\n\n").nth(1).unwrap();
    let data = last.strip_prefix("event: error\ndata: ").unwrap();
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert_eq!(data["error"]["message"], "the model broke");
    assert!(matches!(error, Some(StreamError::ErrorEvent { .. })));
}

#[tokio::test]
async fn a_corrupt_crc_fails_before_the_commit_and_ends_a_committed_stream() {
    let mut corrupt = chunk(&message_start());
    let at = corrupt.len() - 1;
    corrupt[at] ^= 0xff;
    let (url, _seen) = serve(event_stream(Arc::new(corrupt.clone()), 1024)).await;
    let error = bedrock(&url, keys(None))
        .attempt(&request(true))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AttemptError::Connection { .. }),
        "{error:?}"
    );

    let mut bytes = chunk(&message_start());
    bytes.extend(corrupt);
    let (url, _seen) = serve(event_stream(Arc::new(bytes), 1024)).await;
    let response = bedrock(&url, keys(None))
        .attempt(&request(true))
        .await
        .unwrap();
    let (_, error) = relayed(response).await;
    assert!(
        matches!(error, Some(StreamError::Transport(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_answers_map_by_their_exception_type() {
    for (kind, status, expected) in [
        ("ThrottlingException", 429, 429),
        ("ModelTimeoutException", 408, 504),
        ("ServiceUnavailableException", 503, 503),
        ("ValidationException", 400, 400),
    ] {
        let (url, _seen) = serve(move || {
            Response::builder()
                .status(status)
                .header(
                    "x-amzn-errortype",
                    format!("{kind}:http://internal.amazon.com/"),
                )
                .body(Body::from(r#"{"message":"nope"}"#))
                .unwrap()
        })
        .await;
        let error = bedrock(&url, keys(None))
            .attempt(&request(false))
            .await
            .unwrap_err();
        assert_eq!(error.status_code(), Some(expected), "{kind}");
    }
    let (url, _seen) = serve(|| {
        Response::builder()
            .status(403)
            .body(Body::from(r#"{"Message":"User is not authorized"}"#))
            .unwrap()
    })
    .await;
    let error = bedrock(&url, keys(None))
        .attempt(&request(false))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AttemptError::Rejected { status: 403, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bedrock_api_key_is_sent_as_a_bearer_token_unsigned() {
    let (url, mut seen) = serve(|| Response::new(Body::from("{}"))).await;
    let credentials = CloudCredentials::BedrockApiKey {
        key: Secret::new("bedrock-api-key-123"),
        env_var: "AWS_BEARER_TOKEN_BEDROCK".to_owned(),
    };
    bedrock(&url, credentials)
        .attempt(&request(false))
        .await
        .unwrap();
    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.headers["authorization"], "Bearer bedrock-api-key-123");
    assert!(!seen.headers.contains_key("x-amz-date"));
}
