//! # relayrace-actors
//!
//! The relayrace runtime: routes requests across several providers and fails over by racing
//! them. It is generic over what it carries (it knows nothing of HTTP): the embedder implements
//! [`Upstream`] to perform one attempt against one provider, and the runtime decides which
//! provider to try, when to race, and what every outcome does to each provider's health.
//!
//! ## The actor tree
//!
//! ```text
//!                       Supervisor (root; restarts crashed children, ordered shutdown)
//!          ┌───────────────┬──────────┴──────────┬──────────────────────┐
//!     Provider "a"    Provider "b"  ...      Router              Race (one per failover)
//!     (health state   (health state        (routing table,      ├── Attempt → provider x
//!      machine,        machine,             strategy state)     ├── Attempt → provider y
//!      counters)       counters)                                └── Attempt → provider z
//! ```
//!
//! ## The message flow of `route`
//!
//! ```text
//! RouterHandle::route(req)
//!   ├─ primary: the Router's published pick (failover, healthy: no message)
//!   │           or call Router: PlanPrimary ─▶ strategy pick among providers in rotation
//!   ├─ Upstream::attempt(primary, req)          (in the caller's task; never in an actor's mailbox)
//!   ├─ success ─▶ counted (provider in good standing) or cast Provider: AttemptFinished ─▶ return
//!   ├─ error, no trigger ─▶ cast Provider: AttemptFinished ─▶ return the error
//!   └─ error, trigger:
//!        ├─ call Provider: AttemptFinished + PlanRace ─▶ records it, tells the Router of any
//!        │     transition, forwards PlanRace ─▶ Router answers: every provider in rotation now
//!        └─ spawn Race ─▶ spawn one Attempt actor per provider
//!              ├─ each Attempt: Upstream::attempt ─▶ cast Provider: AttemptFinished
//!              │                                  ─▶ cast Race: AttemptFinished
//!              ├─ first success ─▶ kill the other Attempts ─▶ reply to the requester, once
//!              └─ all failed / race timeout ─▶ reply with every attempt's error, in order
//! Provider: health transition ─▶ cast Router: HealthChanged, publish a HealthEvent
//! ```
//!
//! ## Example
//!
//! Embed the runtime with a small upstream, route a request, and read a health event.
//!
//! ```
//! use std::sync::Arc;
//! use relayrace_actors::{
//!     AttemptError, HealthState, Provider, ProviderSettings, Runtime, RuntimeConfig, Upstream,
//! };
//!
//! /// Provider "flaky" is overloaded; "steady" answers.
//! struct Echo;
//!
//! impl Upstream for Echo {
//!     type Request = String;
//!     type Response = String;
//!
//!     async fn attempt(&self, provider: &Provider, request: Arc<String>) -> Result<String, AttemptError> {
//!         match provider.name() {
//!             "flaky" => Err(AttemptError::status(529)),
//!             name => Ok(format!("{name}: {request}")),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut config = RuntimeConfig::with_providers([
//!     ProviderSettings::new("flaky").priority(1),
//!     ProviderSettings::new("steady").priority(2),
//! ]);
//! config.health.failure_threshold = 1;
//! let runtime = Runtime::start(config, Echo).await.unwrap();
//! let mut events = runtime.subscribe();
//!
//! let routed = runtime.handle().route("hello".to_owned()).await.unwrap();
//! assert_eq!(routed.response, "steady: hello");
//! assert!(routed.report.raced);
//! assert_eq!(routed.report.attempts.len(), 2);
//!
//! let event = events.recv().await.unwrap();
//! assert_eq!(event.provider.name(), "flaky");
//! assert_eq!((event.from, event.to), (HealthState::Healthy, HealthState::Unhealthy));
//!
//! runtime.shutdown(std::time::Duration::from_secs(1)).await;
//! # }
//! ```

pub mod config;
mod error;
mod events;
mod provider;
mod race;
mod report;
mod router;
mod runtime;
mod supervisor;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod timer;
mod trigger;
mod upstream;

pub use config::{
    ConfigError, HealthConfig, ProviderSettings, RoutingConfig, RuntimeConfig, StrategyKind,
    SupervisionConfig,
};
pub use error::{AttemptError, Detail, RouteError, StartError};
pub use events::{EventsError, HealthEvent, HealthEvents};
pub use provider::health::HealthState;
pub use provider::{Counters, ProviderStatus};
pub use report::{AttemptOutcome, AttemptRecord, RouteReport, Routed};
pub use router::{ProviderSnapshot, RouterHandle};
pub use runtime::{Runtime, RuntimeBuilder};
pub use trigger::{
    ConnectionTrigger, HealthEffect, StatusTrigger, TimeoutTrigger, Trigger, Triggers, Verdict,
};
pub use upstream::{Provider, ProviderId, Upstream};
