//! The operator endpoints — `/status`, `/metrics`, `/v1/relay/events` — behind the operator key
//! (or the client keys when no operator key is configured). They never show a secret.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, header};

use super::{AppState, auth, status};
use crate::error::ApiError;

/// How often an idle event stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The Prometheus text exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The operator routes, behind the operator key.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/status", get(status::status))
        .route("/metrics", get(metrics))
        .route("/v1/relay/events", get(events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_key,
        ))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = state.observer().metrics();
    metrics.hedging(&state.router().hedging());
    metrics.runtime(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        state.router().race_actors_alive(),
    );
    let body = metrics.render();
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response()
}

/// `GET /v1/relay/events`: a snapshot of every provider, then health transitions and failovers
/// as Server-Sent Events.
async fn events(State(state): State<AppState>) -> Result<Response, ApiError> {
    let feed = state
        .observer()
        .watch()
        .await
        .map_err(|e| ApiError::from_route(&e))?;
    let mut response = Sse::new(frames(feed.into_stream()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Tell buffering proxies to pass each event on as it comes.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn frames(
    events: impl Stream<Item = crate::observe::RelayEvent>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    events.map(|event| Ok(Event::default().event(event.name()).data(event.data())))
}
