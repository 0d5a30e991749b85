//! The routes of a fault upstream: record the attempt, pick its scenario, play the reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;
use tokio::sync::watch;

use super::connection::{ConnectionControl, OpenConnections};
use super::journal::{AttemptRecord, Journal};
use super::reply::{self, Exchange};
use super::scenario::{ErrorReply, Reply, Scenario};

/// A request whose `model` starts with this is answered by the scenario text after it.
pub(super) const FAULT_PREFIX: &str = "fault:";

/// Numbers ids and `request-id`s, unique across the servers of a process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What the routes of one server share.
pub(super) struct ServerState {
    pub(super) journal: Arc<Journal>,
    pub(super) default: watch::Sender<Scenario>,
    pub(super) connections: OpenConnections,
}

pub(super) fn app(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .fallback(not_found)
        .with_state(state)
}

async fn messages(
    State(state): State<Arc<ServerState>>,
    Extension(connection): Extension<ConnectionControl>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    attempt(&state, &connection, uri, headers, body, false).await
}

async fn count_tokens(
    State(state): State<Arc<ServerState>>,
    Extension(connection): Extension<ConnectionControl>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    attempt(&state, &connection, uri, headers, body, true).await
}

async fn not_found() -> (StatusCode, [(&'static str, &'static str); 1], Bytes) {
    let body = reply::error_body(
        StatusCode::NOT_FOUND,
        Some("no such endpoint on the fault upstream"),
    );
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        body,
    )
}

async fn attempt(
    state: &ServerState,
    connection: &ConnectionControl,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    count_tokens: bool,
) -> Response {
    let request = summarize(&body);
    let (model, stream) = match &request {
        Ok((model, stream)) => (model.clone(), *stream && !count_tokens),
        Err(_) => (String::new(), false),
    };
    let (scenario_text, scenario) = match model.strip_prefix(FAULT_PREFIX) {
        Some(text) => (text.to_owned(), text.parse::<Scenario>()),
        None => {
            let scenario = state.default.borrow().clone();
            (scenario.to_string(), Ok(scenario))
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let exchange = Exchange {
        count_tokens,
        stream,
        model: model.clone(),
        request_id: format!("req_fault_{id}"),
        message_id: format!("msg_fault_{id}"),
        input_tokens: u64::try_from(body.len().div_ceil(4))
            .unwrap_or(u64::MAX)
            .max(1),
    };
    let (index, guard) = state.journal.record(AttemptRecord {
        at: Duration::ZERO,
        path: uri.path().to_owned(),
        scenario: scenario_text,
        stream,
        model,
        request_id: exchange.request_id.clone(),
        headers,
        body,
        disconnected: false,
        completed: false,
    });
    let checked = request.and_then(|_| scenario.as_ref().map_err(ToString::to_string));
    let invalid;
    let reply = match checked {
        Ok(scenario) => scenario.reply(index, state.journal.uptime()),
        Err(reason) => {
            invalid = invalid_request(reason);
            Reply::Error(&invalid)
        }
    };
    reply::respond(reply, &exchange, guard, connection).await
}

fn invalid_request(message: String) -> ErrorReply {
    ErrorReply {
        message: Some(message),
        ..ErrorReply::new(StatusCode::BAD_REQUEST)
    }
}

/// The request's `model` and `stream`, or why the body is not a Messages request.
fn summarize(body: &[u8]) -> Result<(String, bool), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model: field required")?;
    let stream = value
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((model.to_owned(), stream))
}
