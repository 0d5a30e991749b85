//! The HTTP surface: the Anthropic Messages API over the runtime, models and health; and the
//! operator endpoints (status, metrics, live events), on the same listener ([`app`]) or apart
//! ([`api`] and [`admin`]).

mod admin;
mod auth;
mod front;
mod messages;
mod relay_body;
pub(crate) mod scan;
mod status;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, middleware};
use relayrace_actors::{RouterHandle, StrategyKind};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Secret;
use crate::error::ApiError;
use crate::observe::Observer;
use crate::upstream::{Endpoint, RelayUpstream};

pub use front::App;
pub(crate) use messages::BodyPeek;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    router: RouterHandle<RelayUpstream>,
    settings: AppSettings,
    observer: Observer,
    /// One permit per Messages API request in flight (`server.max_in_flight`).
    admission: Arc<Semaphore>,
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
    /// The operator key; `None`: the operator endpoints take the client keys.
    pub admin_key: Option<Secret>,
    /// How many failover events a watcher may fall behind before it misses some.
    pub event_capacity: usize,
    /// Model names that metrics label as themselves (others are `other`).
    pub known_models: HashSet<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Messages API requests handled at once; one more is answered 529.
    pub max_in_flight: usize,
    /// How long a client may take to send its body.
    pub body_read_timeout: Duration,
    /// Every provider's name, in configured order.
    pub providers: Vec<String>,
    /// Each provider's key variable (`api_key_env`), by provider name: the log line of a
    /// provider that refuses its key names it.
    pub key_vars: BTreeMap<String, String>,
    /// The exact model names the enabled providers serve, once each (`GET /v1/models`).
    pub models: Vec<String>,
    /// Each provider's served models as configured (names and patterns), by provider name;
    /// empty: every model (`/status`).
    pub served: BTreeMap<String, Vec<String>>,
}

impl AppState {
    /// State over a running runtime; starts its observers (call within a Tokio runtime).
    pub fn new(router: RouterHandle<RelayUpstream>, settings: AppSettings) -> Self {
        let observer = Observer::start(
            router.clone(),
            &settings.providers,
            settings.event_capacity,
            settings.known_models.clone(),
            settings.key_vars.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                router,
                admission: Arc::new(Semaphore::new(settings.max_in_flight)),
                settings,
                observer,
            }),
        }
    }

    /// The relay's observers: metrics, watchers' feeds, traffic figures.
    pub fn observer(&self) -> &Observer {
        &self.inner.observer
    }

    /// A place for one more request in flight, held until its answer ends; `None` at the
    /// bound.
    pub(crate) fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.admission.clone().try_acquire_owned().ok()
    }

    pub(crate) fn router(&self) -> &RouterHandle<RelayUpstream> {
        &self.inner.router
    }

    pub(crate) fn settings(&self) -> &AppSettings {
        &self.inner.settings
    }
}

/// Every route on one listener: the API and the operator endpoints.
pub fn app(state: AppState) -> App {
    let routes = api_routes(&state).merge(admin::routes(&state));
    App::new(finish(routes, state.clone()), Some(state))
}

/// The API alone (with `/health`), for a listener apart from the operator endpoints.
pub fn api(state: AppState) -> App {
    App::new(finish(api_routes(&state), state.clone()), Some(state))
}

/// The operator endpoints alone (with `/health`): `/status`, `/metrics`, `/v1/relay/events`.
pub fn admin(state: AppState) -> App {
    App::new(finish(admin::routes(&state), state), None)
}

/// The API's routes. [`App`] takes the Messages API calls straight to their handler; the
/// routes stay for everything else on those paths (a `GET` is a 405, not a 404).
fn api_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/v1/messages",
            post(|state, request| messages::relay(state, request, Endpoint::Messages)),
        )
        .route(
            "/v1/messages/count_tokens",
            post(|state, request| messages::relay(state, request, Endpoint::CountTokens)),
        )
        .route("/v1/models", get(models));
    if state.settings().client_keys.is_empty() {
        // Nothing to check: no layer to pass through on every request.
        return routes;
    }
    routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_key,
    ))
}

fn finish(routes: Router<AppState>, state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(routes)
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

/// `GET /v1/models`: the exact model names the enabled providers serve, in the Anthropic list
/// format.
async fn models(State(state): State<AppState>) -> Response {
    let data: Vec<ModelEntry<'_>> = state
        .settings()
        .models
        .iter()
        .map(|id| ModelEntry {
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
