//! Starting and stopping the runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::{ConfigError, RuntimeConfig};
use crate::events::{EventBus, HealthEvents};
use crate::handle::{RouterHandle, Shared};
use crate::hedge::{Hedging, ProviderHedge};
use crate::provider::{ProviderArgs, Seat, View, standing};
use crate::race::Live;
use crate::route::RoutePath;
use crate::router::eligibility::Eligibility;
use crate::router::table::Table;
use crate::router::{RouterArgs, RouterMsg};
use crate::supervisor::{SupervisorActor, SupervisorArgs, SupervisorMsg};
use crate::trigger::{Trigger, Triggers};
use crate::upstream::{Provider, ProviderId, Upstream};

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid; every problem is listed.
    #[error("invalid runtime configuration: {}", join(.0))]
    Config(Vec<ConfigError>),
    /// An actor failed to start.
    #[error("failed to start the {actor} actor: {message}")]
    Spawn {
        /// Which actor.
        actor: &'static str,
        /// What ractor said.
        message: String,
    },
}

fn join(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A running runtime: the supervisor, its providers and router, and a handle to route with.
pub struct Runtime<U: Upstream> {
    handle: RouterHandle<U>,
    supervisor: ActorRef<SupervisorMsg>,
    join: JoinHandle<()>,
    live: Live,
}

impl<U: Upstream> std::fmt::Debug for Runtime<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Options beyond the config: extra triggers.
pub struct RuntimeBuilder<U: Upstream> {
    config: RuntimeConfig,
    upstream: U,
    triggers: Triggers,
}

impl<U: Upstream> RuntimeBuilder<U> {
    /// Adds a failover trigger to those of the config.
    #[must_use]
    pub fn trigger(mut self, trigger: impl Trigger) -> Self {
        self.triggers = self.triggers.with(Arc::new(trigger));
        self
    }

    /// Validates the config and starts the actors.
    pub async fn start(self) -> Result<Runtime<U>, StartError> {
        let RuntimeBuilder {
            config,
            upstream,
            triggers,
        } = self;
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(StartError::Config(errors));
        }
        let events = EventBus::new(config.supervision.event_capacity);
        let (slot, router_slot) = watch::channel(None::<ActorRef<RouterMsg>>);
        let seed = config.routing.seed.unwrap_or_else(clock_seed);
        let (provider_args, seats) = providers(&config, &events, seed.rotate_left(17));
        let strategy = config.routing.strategy;
        let eligibility = Arc::new(Eligibility::new(
            &config.providers,
            &config.routing.model_order,
        ));
        let (table, table_reader) = watch::channel(Arc::new(Table::new(
            seats.clone(),
            strategy,
            eligibility.clone(),
        )));
        let args = SupervisorArgs {
            providers: provider_args,
            router: RouterArgs {
                seats,
                strategy,
                seed,
                table: Arc::new(table),
                eligibility,
            },
            slot,
            policy: config.supervision.clone(),
            events: events.clone(),
        };
        let (supervisor, join) =
            Actor::spawn(None, SupervisorActor, args)
                .await
                .map_err(|error| StartError::Spawn {
                    actor: "supervisor",
                    message: error.to_string(),
                })?;
        let live = Live::new();
        let handle = RouterHandle::new(Shared {
            path: RoutePath {
                upstream: Arc::new(upstream),
                triggers,
                failover: config.routing.failover,
                race_timeout: config.routing.effective_race_timeout(),
                probe_timeout: config.health.probe_timeout,
                table: table_reader.clone(),
                router: router_slot.clone(),
                supervisor: supervisor.get_cell(),
                live: live.clone(),
                hedging: Hedging::new(&config.routing.hedge),
            },
            table: table_reader,
            router: router_slot,
            events,
        });
        Ok(Runtime {
            handle,
            supervisor,
            join,
            live,
        })
    }
}

impl<U: Upstream> Runtime<U> {
    /// Starts a runtime with the config's triggers.
    pub async fn start(config: RuntimeConfig, upstream: U) -> Result<Self, StartError> {
        Self::builder(config, upstream).start().await
    }

    /// A builder, to add triggers before starting.
    pub fn builder(config: RuntimeConfig, upstream: U) -> RuntimeBuilder<U> {
        let triggers = Triggers::from_config(&config.routing);
        RuntimeBuilder {
            config,
            upstream,
            triggers,
        }
    }

    /// A handle to route with; clone it freely.
    pub fn handle(&self) -> RouterHandle<U> {
        self.handle.clone()
    }

    /// A new subscription to health events.
    pub fn subscribe(&self) -> HealthEvents {
        self.handle.subscribe()
    }

    /// Stops routing new requests, lets running races finish for up to `grace`, then cancels
    /// what is left and stops every actor. When this returns, no actor or task of the runtime is
    /// running.
    pub async fn shutdown(self, grace: Duration) {
        if let Some(router) = self.handle.router_ref() {
            let _ = router.call(|reply| RouterMsg::Close { reply }, None).await;
        }
        let _ = tokio::time::timeout(grace, self.live.none_alive()).await;
        if let Ok(CallResult::Success(())) = self
            .supervisor
            .call(|reply| SupervisorMsg::Shutdown { reply }, None)
            .await
        {
            tracing::debug!("runtime actors stopped");
        }
        let _ = self.join.await;
        // Killed racers drop their state on their own tasks; wait for the last of them.
        self.live.none_alive().await;
    }
}

/// Each provider's actor arguments and its seat in the routing table, joined by its standing
/// and its view.
/// `seed` drives the jitter of their probe waits (each provider gets its own stream).
fn providers(
    config: &RuntimeConfig,
    events: &EventBus,
    seed: u64,
) -> (Vec<ProviderArgs>, Vec<Seat>) {
    let mut provider_args = Vec::with_capacity(config.providers.len());
    let mut seats = Vec::with_capacity(config.providers.len());
    for (i, settings) in config.providers.iter().enumerate() {
        let provider = Provider::new(ProviderId(i), settings.name.as_str());
        let (requester, owner) = standing();
        let (view, reader) = watch::channel(View::starting(config.health.half_open_probes));
        seats.push(Seat {
            provider: provider.clone(),
            priority: settings.priority,
            weight: settings.weight,
            view: reader,
            standing: requester,
            hedge: Arc::new(ProviderHedge::new(
                config.routing.hedge.overridden(&settings.hedge),
            )),
            slots: settings
                .max_concurrent_attempts
                .map(|max| Arc::new(Semaphore::new(max as usize))),
        });
        provider_args.push(ProviderArgs {
            provider,
            standing: owner,
            view: Arc::new(view),
            health: config.health.clone(),
            enabled: settings.enabled,
            events: events.clone(),
            seed: seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        });
    }
    (provider_args, seats)
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}
