//! `GET /status`: the strategy, and each provider's models served, health, circuit, counters
//! and traffic (requests answered, failovers, p50/p99 latency and time to first event).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use relayrace_actors::{Counters, HealthState, ProviderSnapshot};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use crate::config::serves_every_model;
use crate::error::ApiError;
use crate::observe::Traffic;
use crate::observe::event::{millis, rfc3339};

#[derive(Serialize)]
struct StatusProvider {
    name: String,
    priority: u32,
    weight: u32,
    /// Its served models as configured (names and patterns); empty: every model.
    models: Vec<String>,
    /// Whether it serves any model (no list, or a `*` pattern).
    serves_every_model: bool,
    state: HealthState,
    circuit: &'static str,
    probes_in_flight: u32,
    since: Option<String>,
    until: Option<String>,
    consecutive_failures: Option<u32>,
    counters: Option<Counters>,
    last_error: Option<String>,
    last_success_latency_ms: Option<u64>,
    #[serde(flatten)]
    traffic: Traffic,
}

/// `GET /status`.
pub(super) async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state
        .router()
        .snapshot()
        .await
        .map_err(|e| ApiError::from_route(&e))?;
    let mut traffic = state.observer().traffic();
    let settings = state.settings();
    let providers: Vec<StatusProvider> = snapshot
        .into_iter()
        .map(|row| {
            let traffic = traffic.remove(&row.name).unwrap_or_default();
            let models = settings.served.get(&row.name).cloned().unwrap_or_default();
            status_row(row, models, traffic)
        })
        .collect();
    Ok(Json(json!({
        "strategy": settings.strategy.name(),
        "failover": settings.failover,
        "race_timeout_ms": millis(settings.race_timeout),
        "hedging": state.router().hedging(),
        "providers": providers,
    }))
    .into_response())
}

fn status_row(row: ProviderSnapshot, models: Vec<String>, traffic: Traffic) -> StatusProvider {
    let circuit = match row.state {
        HealthState::Healthy | HealthState::CoolingDown => "closed",
        HealthState::Unhealthy => "open",
        HealthState::HalfOpen => "half_open",
        HealthState::Rejected => "rejected",
        HealthState::Disabled => "disabled",
        HealthState::Failed => "failed",
    };
    let status = row.status.as_ref();
    StatusProvider {
        name: row.name,
        priority: row.priority,
        weight: row.weight,
        serves_every_model: serves_every_model(&models),
        models,
        state: row.state,
        circuit,
        probes_in_flight: row.probes_in_flight,
        since: status.map(|s| rfc3339(s.since)),
        until: status.and_then(|s| s.until).map(rfc3339),
        consecutive_failures: status.map(|s| s.consecutive_failures),
        counters: status.map(|s| s.counters),
        last_error: status.and_then(|s| s.last_error.clone()),
        last_success_latency_ms: status.and_then(|s| s.last_success_latency).map(millis),
        traffic,
    }
}
