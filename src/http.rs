//! The HTTP surface: the Anthropic Messages API over the runtime, plus models, health, status.

mod auth;
mod messages;
mod relay_body;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, middleware};
use relayrace_actors::{HealthState, ProviderSnapshot, RouterHandle, StrategyKind};
use serde::Serialize;
use serde_json::json;

use crate::config::Secret;
use crate::error::ApiError;
use crate::upstream::{Endpoint, RelayUpstream};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    router: RouterHandle<RelayUpstream>,
    settings: AppSettings,
}

/// Settings of the HTTP surface.
#[derive(Clone, Debug)]
pub struct AppSettings {
    /// The strategy in force (shown by `/status`).
    pub strategy: StrategyKind,
    /// Whether failover races are on (shown by `/status`).
    pub failover: bool,
    /// The race timeout (shown by `/status`).
    pub race_timeout: Duration,
    /// Accepted relay keys; empty means no client authentication.
    pub client_keys: Vec<Secret>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Models served, with the provider serving each (`GET /v1/models`).
    pub models: Vec<(String, String)>,
}

impl AppState {
    /// State over a running runtime.
    pub fn new(router: RouterHandle<RelayUpstream>, settings: AppSettings) -> Self {
        Self {
            inner: Arc::new(Inner { router, settings }),
        }
    }

    pub(crate) fn router(&self) -> &RouterHandle<RelayUpstream> {
        &self.inner.router
    }

    pub(crate) fn settings(&self) -> &AppSettings {
        &self.inner.settings
    }
}

/// The relay's routes.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/v1/messages",
            post(|state, request| messages::relay(state, request, Endpoint::Messages)),
        )
        .route(
            "/v1/messages/count_tokens",
            post(|state, request| messages::relay(state, request, Endpoint::CountTokens)),
        )
        .route("/v1/models", get(models))
        .route("/status", get(status))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> ApiError {
    ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

/// `GET /v1/models`: the union of the providers' models, in the Anthropic list format.
async fn models(State(state): State<AppState>) -> Response {
    let mut seen = std::collections::HashSet::new();
    let data: Vec<ModelEntry<'_>> = state
        .settings()
        .models
        .iter()
        .filter(|(id, _)| seen.insert(id.as_str()))
        .map(|(id, _)| ModelEntry {
            kind: "model",
            id,
            display_name: id,
            created_at: "1970-01-01T00:00:00Z",
        })
        .collect();
    let first = data.first().map(|m| m.id);
    let last = data.last().map(|m| m.id);
    Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}))
        .into_response()
}

#[derive(Serialize)]
struct StatusProvider {
    name: String,
    priority: u32,
    weight: u32,
    state: HealthState,
    circuit: &'static str,
    probes_in_flight: u32,
    since: Option<String>,
    until: Option<String>,
    consecutive_failures: Option<u32>,
    counters: Option<relayrace_actors::Counters>,
    last_error: Option<String>,
    last_success_latency_ms: Option<u64>,
}

/// `GET /status`: the strategy and each provider's health, circuit state and counters.
async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state
        .router()
        .snapshot()
        .await
        .map_err(|e| ApiError::from_route(&e))?;
    let settings = state.settings();
    let providers: Vec<StatusProvider> = snapshot.into_iter().map(status_row).collect();
    Ok(Json(json!({
        "strategy": settings.strategy.name(),
        "failover": settings.failover,
        "race_timeout_ms": settings.race_timeout.as_millis() as u64,
        "providers": providers,
    }))
    .into_response())
}

fn status_row(row: ProviderSnapshot) -> StatusProvider {
    let circuit = match row.state {
        HealthState::Healthy | HealthState::CoolingDown => "closed",
        HealthState::Unhealthy => "open",
        HealthState::HalfOpen => "half_open",
        HealthState::Disabled => "disabled",
        HealthState::Failed => "failed",
    };
    let status = row.status.as_ref();
    StatusProvider {
        name: row.name,
        priority: row.priority,
        weight: row.weight,
        state: row.state,
        circuit,
        probes_in_flight: row.probes_in_flight,
        since: status.map(|s| rfc3339(s.since)),
        until: status.and_then(|s| s.until).map(rfc3339),
        consecutive_failures: status.map(|s| s.consecutive_failures),
        counters: status.map(|s| s.counters),
        last_error: status.and_then(|s| s.last_error.clone()),
        last_success_latency_ms: status
            .and_then(|s| s.last_success_latency)
            .map(|d| d.as_millis() as u64),
    }
}

fn rfc3339(time: std::time::SystemTime) -> String {
    humantime_serde::re::humantime::format_rfc3339_millis(time).to_string()
}
