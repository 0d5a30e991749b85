//! Playing a [`Reply`] out: Anthropic-shaped JSON, SSE sequences, errors and the ways they break.

use std::collections::VecDeque;
use std::future;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, IntoHeaderName, LOCATION, RETRY_AFTER,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::connection::ConnectionControl;
use super::journal::AttemptGuard;
use super::scenario::{Answer, Ending, ErrorReply, Reply};

/// The malformed frame `malformed_after` sends.
pub(super) const MALFORMED_FRAME: &str = "event: content_block_delta\ndata: {not json\n\n";

/// What is known about the attempt being answered.
pub(super) struct Exchange {
    pub(super) count_tokens: bool,
    pub(super) stream: bool,
    pub(super) model: String,
    pub(super) request_id: String,
    pub(super) message_id: String,
    pub(super) input_tokens: u64,
}

/// Plays `reply` for `exchange`; `guard` travels with the response body and records how the
/// attempt ended.
pub(super) async fn respond(
    reply: Reply<'_>,
    exchange: &Exchange,
    mut guard: AttemptGuard,
    connection: &ConnectionControl,
) -> Response {
    match reply {
        Reply::Error(error) => {
            tokio::time::sleep(error.headers_delay).await;
            error_response(error, exchange, guard)
        }
        Reply::Reset(delay) => {
            tokio::time::sleep(delay).await;
            guard.finish();
            connection.reset();
            // The connection task drops this future with the connection.
            future::pending().await
        }
        Reply::Silent => future::pending().await,
        Reply::Redirect(location) => {
            let mut headers = base_headers(exchange);
            insert(&mut headers, LOCATION, location);
            let script = Script::new(Vec::new(), End::Clean, guard);
            response(StatusCode::TEMPORARY_REDIRECT, headers, script.into_body())
        }
        Reply::ErrorEvent(delay) => {
            tokio::time::sleep(delay).await;
            let frame = sse_frame(
                "error",
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            );
            let mut headers = base_headers(exchange);
            set_event_stream(&mut headers);
            let script = Script::new(vec![frame], End::Clean, guard);
            response(StatusCode::OK, headers, script.into_body())
        }
        Reply::Answer(answer) => {
            tokio::time::sleep(answer.headers_delay).await;
            let mut headers = base_headers(exchange);
            if let Some(name) = &answer.name {
                insert(&mut headers, "x-fault-name", name);
            }
            let script = if exchange.count_tokens {
                set_json(&mut headers);
                let count = json_bytes(&json!({"input_tokens": exchange.input_tokens}));
                Script::new(vec![count], End::Clean, guard)
            } else if exchange.stream {
                set_event_stream(&mut headers);
                sse_script(answer, exchange, guard)
            } else {
                set_json(&mut headers);
                json_script(answer, exchange, &mut headers, guard)
            };
            response(StatusCode::OK, headers, script.into_body())
        }
    }
}

/// The Anthropic error `type` for an HTTP status. This server is a fake upstream speaking the
/// Anthropic Messages API, so its errors carry Anthropic's types; the mapping is the relay's, kept
/// here so that the test kit does not depend on the product it tests.
pub(super) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn default_message(status: StatusCode) -> &'static str {
    match error_type(status) {
        "invalid_request_error" => "Invalid request",
        "authentication_error" => "invalid x-api-key",
        "permission_error" => "Your API key does not have permission to use the specified resource",
        "not_found_error" => "The requested resource could not be found",
        "request_too_large" => "Request exceeds the maximum allowed number of bytes",
        "rate_limit_error" => "Number of requests has exceeded your rate limit",
        "overloaded_error" => "Overloaded",
        _ => status.canonical_reason().unwrap_or("Internal server error"),
    }
}

/// An Anthropic-shaped JSON error body.
pub(super) fn error_body(status: StatusCode, message: Option<&str>) -> Bytes {
    let message = message.unwrap_or_else(|| default_message(status));
    json_bytes(&json!({"type": "error", "error": {"type": error_type(status), "message": message}}))
}

fn error_response(error: &ErrorReply, exchange: &Exchange, guard: AttemptGuard) -> Response {
    let mut headers = base_headers(exchange);
    set_json(&mut headers);
    if let Some(secs) = error.retry_after {
        insert(&mut headers, RETRY_AFTER, &secs.to_string());
    }
    if let Some(name) = &error.name {
        insert(&mut headers, "x-fault-name", name);
    }
    let body = error_body(error.status, error.message.as_deref());
    response(
        error.status,
        headers,
        Script::new(vec![body], End::Clean, guard).into_body(),
    )
}

/// The SSE sequence of `answer`, broken as it says.
fn sse_script(answer: &Answer, exchange: &Exchange, guard: AttemptGuard) -> Script {
    let words = words(answer);
    let mut frames = vec![
        sse_frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": exchange.message_id, "type": "message", "role": "assistant",
                "model": exchange.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": exchange.input_tokens, "output_tokens": 1}}}),
        ),
        sse_frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        sse_frame("ping", &json!({"type": "ping"})),
    ];
    frames.extend(words.iter().map(|word| {
        sse_frame(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}),
        )
    }));
    frames.push(sse_frame(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(sse_frame(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": exchange.input_tokens, "output_tokens": words.len()}}),
    ));
    frames.push(sse_frame("message_stop", &json!({"type": "message_stop"})));
    let end = match answer.ending {
        Ending::Complete => End::Clean,
        Ending::CutAfter(n) => {
            frames.truncate(n);
            End::Clean
        }
        Ending::StallAfter(n) => {
            frames.truncate(n);
            End::Stall
        }
    };
    if let Some(n) = answer.malformed_after.filter(|n| *n <= frames.len()) {
        frames.insert(n, Bytes::from_static(MALFORMED_FRAME.as_bytes()));
    }
    let mut script = Script::new(frames, end, guard);
    script.first_delay = answer.first_event_delay;
    script.delay = answer.event_delay;
    script
}

/// The JSON message of `answer`: not JSON for `malformed_after`, half of it for `cut_after`
/// (then an abrupt close) and `stall_after` (then silence).
fn json_script(
    answer: &Answer,
    exchange: &Exchange,
    headers: &mut HeaderMap,
    guard: AttemptGuard,
) -> Script {
    let words = words(answer);
    let body = match answer.malformed_after {
        Some(_) => Bytes::from_static(b"{not json"),
        None => json_bytes(&json!({
            "id": exchange.message_id, "type": "message", "role": "assistant",
            "model": exchange.model, "content": [{"type": "text", "text": words.concat()}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": exchange.input_tokens, "output_tokens": words.len()}})),
    };
    let (frame, end) = match answer.ending {
        Ending::Complete => (body.clone(), End::Clean),
        Ending::CutAfter(_) => (body.slice(..body.len() / 2), End::Abort),
        Ending::StallAfter(_) => (body.slice(..body.len() / 2), End::Stall),
    };
    insert(headers, CONTENT_LENGTH, &body.len().to_string());
    let mut script = Script::new(vec![frame], end, guard);
    script.first_delay = answer.first_event_delay;
    script
}

/// The text deltas: `word1`, ` word2`, …; the first carries the name, if any.
fn words(answer: &Answer) -> Vec<String> {
    let prefix = answer
        .name
        .as_ref()
        .map(|name| format!("[{name}] "))
        .unwrap_or_default();
    (1..=answer.words)
        .map(|i| {
            if i == 1 {
                format!("{prefix}word1")
            } else {
                format!(" word{i}")
            }
        })
        .collect()
}

/// How a scripted body ends after its frames.
#[derive(Clone, Copy)]
enum End {
    /// The body ends normally.
    Clean,
    /// The body fails, so the connection is closed abruptly.
    Abort,
    /// Nothing more, ever; only the client can end it.
    Stall,
}

/// A response body as a list of frames with delays and an ending. Holds the attempt's guard:
/// dropped before its end (the client went away), the attempt is recorded as disconnected.
struct Script {
    frames: VecDeque<Bytes>,
    first_delay: Duration,
    delay: Duration,
    sent: usize,
    end: End,
    guard: AttemptGuard,
}

impl Script {
    fn new(frames: Vec<Bytes>, end: End, guard: AttemptGuard) -> Self {
        Script {
            frames: frames.into(),
            first_delay: Duration::ZERO,
            delay: Duration::ZERO,
            sent: 0,
            end,
            guard,
        }
    }

    fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(
            self,
            |mut script| async move {
                let item = script.next().await?;
                Some((item, script))
            },
        ))
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        if let Some(frame) = self.frames.pop_front() {
            let delay = if self.sent == 0 {
                self.first_delay
            } else {
                self.delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.sent += 1;
            // A body of known length is not polled past its last frame.
            if self.frames.is_empty() && matches!(self.end, End::Clean) {
                self.guard.finish();
            }
            return Some(Ok(frame));
        }
        match self.end {
            End::Clean => {
                self.guard.finish();
                None
            }
            End::Abort => {
                // Let hyper flush what was sent before the error tears the connection down.
                tokio::task::yield_now().await;
                self.guard.finish();
                self.end = End::Clean;
                Some(Err(io::Error::other("fault upstream cut the answer")))
            }
            End::Stall => future::pending().await,
        }
    }
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn base_headers(exchange: &Exchange) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, "request-id", &exchange.request_id);
    headers
}

fn set_event_stream(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

fn set_json(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
}

/// Inserts a header, skipping values that are not valid header text.
fn insert(headers: &mut HeaderMap, name: impl IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn sse_frame(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}
