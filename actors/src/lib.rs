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
//!     Provider "a"    Provider "b"  ...      Router              Race (per failover or hedge)
//!     (health, probe  (health, probe       (routing table,      ├── Attempt → provider x
//!      slots; publishes its view)           strategy state)     ├── Attempt → provider y
//!                                                               └── Attempt → provider z
//! ```
//!
//! One owner per fact: a provider actor owns its health and its probe slots and publishes a
//! view of them (a `watch`); the router owns the routing table and the strategy's rotation
//! state and publishes the table; a race owns which of its attempts commits. Nobody else writes
//! them; the request path reads the published views.
//!
//! ## The message flow of `route`
//!
//! The path is one module, `route.rs`, read top to bottom:
//!
//! ```text
//! RouterHandle::route(req)
//!   ├─ eligible: the published routing table
//!   ├─ primary:  failover → the first provider in rotation by priority, read from the
//!   │              providers' views (no message; a half-open one takes a probe permit)
//!   │            other strategies → call Router: Admit ─▶ strategy pick, admitted
//!   ├─ attempt:  Upstream::attempt(primary, req)     (in the caller's task, never in a mailbox)
//!   ├─ hedge:    no commit by the primary's learned delay for the request's class, budget
//!   │              permitting ─▶ spawn an open Race with the next eligible provider, beside the
//!   │              primary; the primary commits first ─▶ cast Race: Cancel; the hedge does ─▶
//!   │              the primary is dropped; the primary fails over ─▶ cast Race: Join, Close
//!   ├─ success ─▶ counted in place (provider in good standing) or cast Provider: AttemptFinished
//!   │              (its time to commit is learned in place for its class: no message)
//!   ├─ verdict:  Triggers::judge(error) ─▶ no failover ─▶ cast Provider: AttemptFinished ─▶ error
//!   └─ race:     may the primary race again? call Provider: AttemptFinished (recorded, view
//!        │         republished) and read who is in rotation; else cast and leave it out
//!        └─ spawn Race ─▶ spawn one Attempt actor per provider
//!              ├─ each Attempt: Upstream::attempt ─▶ cast Provider: AttemptFinished
//!              │                                  ─▶ cast Race: AttemptFinished
//!              ├─ first success ─▶ kill the other Attempts ─▶ reply to the requester, once
//!              └─ all failed / deadline (race timeout) ─▶ reply with every attempt, in order
//!   report: every attempt, the winner's index, the failover's cause and how its race ended
//! Provider: transition ─▶ republish its view, publish a HealthEvent
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
//! assert!(routed.report.raced());
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
mod events;
mod handle;
mod hedge;
mod provider;
mod race;
mod report;
mod route;
mod router;
mod runtime;
mod state;
mod supervisor;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod timer;
mod trigger;
mod upstream;

pub use config::{
    ConfigError, HealthConfig, HedgeBudget, HedgeConfig, HedgeOverride, InitialDelays, ModelOrder,
    ProviderSettings, RoutingConfig, RuntimeConfig, StrategyKind, SupervisionConfig,
    is_model_pattern, serves_model,
};
pub use events::{EventsError, HealthEvent, HealthEvents};
pub use handle::{HedgeStatus, ProviderHedgeStatus, ProviderSnapshot, RouterHandle};
pub use hedge::{BudgetStatus, ClassDelay, HedgeCounts, RequestClass};
pub use provider::{Counters, ProviderStatus};
pub use report::{
    AttemptOutcome, AttemptRecord, Failover, RaceEnd, RouteError, RouteReport, Routed,
};
pub use runtime::{Runtime, RuntimeBuilder, StartError};
pub use state::HealthState;
pub use trigger::{
    ConnectionTrigger, HealthEffect, NotServedTrigger, RejectedTrigger, StatusTrigger,
    TimeoutTrigger, Trigger, Triggers, Verdict,
};
pub use upstream::{AttemptError, Cause, Detail, Provider, ProviderId, RequestShape, Upstream};
