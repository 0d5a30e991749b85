//! # relayrace
//!
//! An Anthropic Messages API relay: Claude Code and the Anthropic SDKs point at it
//! (`ANTHROPIC_BASE_URL=http://127.0.0.1:8787`) and it routes every request through the
//! [`relayrace_actors`] runtime to several Anthropic-compatible providers, failing over by
//! racing them when one answers 429, 5xx, 529, times out or cannot be reached — before anything
//! has reached the client. After that commit point a stream is piped event by event, and a
//! stream that breaks ends with an Anthropic error event, never as a truncated answer.
//!
//! [`Relay::start`] builds the runtime and the app; [`Relay::serve`] serves it (or
//! [`Relay::serve_split`], with the operator endpoints on a listener of their own);
//! [`http::app`] gives the bare router for in-process tests. [`observe`] is what operators see
//! (metrics, live events, traffic figures); [`cli`] the `watch` and `status` commands.

pub mod anthropic;
pub mod cli;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod observe;
pub mod server;
pub mod telemetry;
pub mod upstream;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use relayrace_actors::{RouterHandle, Runtime, StartError};
use tokio::net::TcpListener;

use crate::config::{Config, Resolved};
use crate::http::{AppSettings, AppState};
use crate::upstream::{RelayUpstream, UpstreamBuildError};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A provider client could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamBuildError),
    /// The runtime did not start.
    #[error(transparent)]
    Runtime(#[from] StartError),
}

/// A started relay: the runtime and the app over it.
pub struct Relay {
    runtime: Runtime<RelayUpstream>,
    state: AppState,
    limits: server::Limits,
}

impl Relay {
    /// Starts the runtime over the resolved providers.
    pub async fn start(config: &Config, resolved: &Resolved) -> Result<Self, RelayError> {
        let upstream = RelayUpstream::new(&resolved.providers)?;
        let runtime = Runtime::start(config.runtime_config(&resolved.providers), upstream).await?;
        let settings = AppSettings {
            strategy: config.routing.strategy,
            failover: config.routing.failover,
            race_timeout: config.routing.effective_race_timeout(),
            client_keys: resolved.client_keys.clone(),
            admin_key: resolved.admin_key.clone(),
            event_capacity: config.supervision.event_capacity,
            known_models: known_models(resolved),
            max_body_bytes: config.server.max_body_bytes,
            max_in_flight: config.server.max_in_flight,
            body_read_timeout: config.server.body_read_timeout,
            providers: resolved
                .providers
                .iter()
                .map(|p| p.config.name.clone())
                .collect(),
            key_vars: resolved
                .providers
                .iter()
                .filter_map(|p| Some((p.config.name.clone(), p.config.api_key_env.clone()?)))
                .collect(),
            models: listed_models(resolved),
            served: resolved
                .providers
                .iter()
                .map(|p| (p.config.name.clone(), p.config.served_models()))
                .collect(),
        };
        let state = AppState::new(runtime.handle(), settings);
        Ok(Relay {
            runtime,
            state,
            limits: server::Limits {
                grace: config.server.shutdown_grace,
                header_read_timeout: config.server.header_read_timeout,
                max_connections: config.server.max_connections,
            },
        })
    }

    /// The HTTP app: the API and the operator endpoints.
    pub fn app(&self) -> http::App {
        http::app(self.state.clone())
    }

    /// The relay's observers (metrics, watchers' feeds, traffic figures).
    pub fn observer(&self) -> &observe::Observer {
        self.state.observer()
    }

    /// The runtime's router handle (health events, snapshot, enable/disable).
    pub fn router(&self) -> RouterHandle<RelayUpstream> {
        self.runtime.handle()
    }

    /// Serves the API and the operator endpoints on `listener` until `shutdown` resolves,
    /// drains in-flight requests within the grace period, then stops the runtime.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let observer = self.state.observer().clone();
        let stopping = async move {
            shutdown.await;
            // Watchers' event streams end now, or they would hold the drain to its grace.
            observer.close();
        };
        server::serve(listener, self.app(), stopping, self.limits).await;
        self.runtime.shutdown(Duration::from_secs(1)).await;
    }

    /// As [`Relay::serve`], with the API on `listener` and the operator endpoints (`/status`,
    /// `/metrics`, `/v1/relay/events`) on `admin`.
    pub async fn serve_split(
        self,
        listener: TcpListener,
        admin: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        let observer = self.state.observer().clone();
        let api = http::api(self.state.clone());
        let operator = http::admin(self.state.clone());
        // Closing the observers (which ends the watchers' streams) stops both servers.
        tokio::join!(
            async {
                shutdown.await;
                observer.close();
            },
            server::serve(listener, api, observer.closed(), self.limits),
            server::serve(admin, operator, observer.closed(), self.limits),
        );
        self.runtime.shutdown(Duration::from_secs(1)).await;
    }
}

/// What `GET /v1/models` lists: every exact name an enabled provider serves (its `models` and
/// `model_mapping` keys; patterns cannot be listed), once each, in configured order.
fn listed_models(resolved: &Resolved) -> Vec<String> {
    let mut listed: Vec<String> = Vec::new();
    for provider in resolved.providers.iter().filter(|p| p.config.enabled) {
        for name in provider.config.served_names() {
            if !listed.contains(&name) {
                listed.push(name);
            }
        }
    }
    listed
}

/// Model names metrics label as themselves: the exact names the providers list or map (a
/// pattern never equals a request's model).
fn known_models(resolved: &Resolved) -> HashSet<String> {
    let mut known = HashSet::new();
    for provider in &resolved.providers {
        let names = provider.config.models.iter();
        let mapped = provider
            .config
            .model_mapping
            .iter()
            .flat_map(|(f, t)| [f, t]);
        known.extend(
            names
                .chain(mapped)
                .filter(|model| !config::is_model_pattern(model))
                .cloned(),
        );
    }
    known
}
