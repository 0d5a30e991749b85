//! The provider actor: owns one provider's health and probe admission, receives the outcome of
//! every attempt made against it, publishes its [`View`] after every change and each transition
//! as a health event. It knows nothing of the router: routing reads the view.

pub mod health;
mod message;
mod outcome;
mod standing;
mod view;

pub use message::{Counters, ProviderStatus};
pub(crate) use message::{ProviderMsg, Reported};
pub(crate) use outcome::{OutcomeGuard, send as send_report};
pub(crate) use standing::{StandingOwner, standing};
pub(crate) use view::{Seat, Target, View, ViewCopy, ViewSender};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::HealthConfig;
use crate::events::{EventBus, HealthEvent};
use crate::state::HealthState;
use crate::trigger::HealthEffect;
use crate::upstream::Provider;
use health::{Circuit, Health, Transition};

pub(crate) struct ProviderActor;

/// Everything a provider actor (re)starts from.
#[derive(Clone)]
pub(crate) struct ProviderArgs {
    pub(crate) provider: Provider,
    pub(crate) standing: StandingOwner,
    pub(crate) view: ViewSender,
    pub(crate) health: HealthConfig,
    pub(crate) enabled: bool,
    pub(crate) events: EventBus,
    /// Drives the jitter of its probe waits.
    pub(crate) seed: u64,
}

pub(crate) struct ProviderState {
    args: ProviderArgs,
    myself: ActorRef<ProviderMsg>,
    health: Health,
    enabled: bool,
    /// Probe slots while half-open; closed on leaving it.
    probes: Option<Arc<Semaphore>>,
    counters: Counters,
    last_error: Option<String>,
    generation: u64,
    timer: Option<crate::timer::Timer>,
}

impl Actor for ProviderActor {
    type Msg = ProviderMsg;
    type State = ProviderState;
    type Arguments = ProviderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ProviderArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.standing.restart(args.enabled);
        let state = ProviderState {
            health: Health::new(args.health.clone(), Instant::now(), args.seed),
            enabled: args.enabled,
            myself,
            args,
            probes: None,
            counters: Counters::default(),
            last_error: None,
            generation: 0,
            timer: None,
        };
        state.publish();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProviderMsg::AttemptFinished {
                report,
                latency,
                reply,
            } => {
                state.record(report, latency);
                state.args.standing.settle();
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            ProviderMsg::DeadlineReached { generation } => {
                if generation == state.generation {
                    if let Some(transition) = state.health.tick(Instant::now()) {
                        state.apply(transition);
                    }
                }
            }
            ProviderMsg::SetEnabled { enabled, reply } => {
                state.set_enabled(enabled);
                let _ = reply.send(());
            }
            ProviderMsg::GetStatus { reply } => {
                let _ = reply.send(state.status());
            }
            #[cfg(any(test, feature = "test-util"))]
            ProviderMsg::Crash => panic!("provider {} crashed on request", state.args.provider),
        }
        Ok(())
    }
}

impl ProviderState {
    /// Where the provider stands in routing: its circuit, unless an operator disabled it.
    fn published(&self) -> HealthState {
        if self.enabled {
            self.health.state().into()
        } else {
            HealthState::Disabled
        }
    }

    /// Publishes the view and whether a success may skip the message.
    fn publish(&self) {
        self.args.view.send_replace(View {
            state: self.published(),
            actor: Some(self.myself.clone()),
            probes: self.probes.clone(),
            probe_limit: self.args.health.half_open_probes,
        });
        self.publish_clean();
    }

    /// Publishes whether a success may skip the message (see [`standing`]).
    fn publish_clean(&self) {
        let clean = self.enabled
            && self.health.state() == Circuit::Healthy
            && self.health.consecutive_failures() == 0;
        self.args.standing.set_clean(clean);
    }

    fn record(&mut self, report: Reported, latency: Duration) {
        self.counters.attempts += 1;
        let effect = match report {
            Reported::Succeeded => {
                self.counters.successes += 1;
                self.args.standing.record_latency(latency);
                HealthEffect::Success
            }
            Reported::Cancelled => {
                self.counters.cancelled += 1;
                HealthEffect::Neutral
            }
            Reported::Failed { effect, error } => {
                if effect == HealthEffect::Neutral {
                    self.counters.client_errors += 1;
                } else {
                    self.counters.failures += 1;
                    self.last_error = Some(error);
                }
                effect
            }
        };
        match self.health.record(&effect, Instant::now()) {
            Some(transition) => self.apply(transition),
            // A failure below the threshold, or the success after it, changes `clean` alone.
            None => self.publish_clean(),
        }
    }

    fn set_enabled(&mut self, enabled: bool) {
        if self.enabled == enabled {
            return;
        }
        let from = self.published();
        self.enabled = enabled;
        self.publish();
        let reason = if enabled {
            "enabled by operator"
        } else {
            "disabled by operator"
        };
        self.announce(from, reason.to_owned());
    }

    /// Acts on a health transition: probe slots, the timer for the next deadline, the view and
    /// the event.
    fn apply(&mut self, transition: Transition) {
        if let Some(slots) = self.probes.take() {
            slots.close();
        }
        if transition.to == Circuit::HalfOpen {
            let limit = self.args.health.half_open_probes as usize;
            self.probes = Some(Arc::new(Semaphore::new(limit)));
        }
        self.generation += 1;
        self.timer = self.health.deadline().map(|deadline| {
            let generation = self.generation;
            crate::timer::Timer::at(deadline, self.myself.clone(), move || {
                ProviderMsg::DeadlineReached { generation }
            })
        });
        self.publish();
        if self.enabled {
            self.announce(transition.from.into(), transition.reason);
        }
    }

    fn announce(&self, from: HealthState, reason: String) {
        self.args.events.publish(HealthEvent {
            provider: self.args.provider.clone(),
            from,
            to: self.published(),
            reason,
            at: SystemTime::now(),
        });
    }

    fn status(&self) -> ProviderStatus {
        let standing = &self.args.standing;
        let quiet = standing.quiet_successes();
        let mut counters = self.counters;
        counters.attempts += quiet;
        counters.successes += quiet;
        ProviderStatus {
            state: self.published(),
            since: wall_clock(self.health.since()),
            consecutive_failures: self.health.consecutive_failures(),
            counters,
            last_error: self.last_error.clone(),
            last_success_latency: standing.last_success_latency(),
            until: self.health.deadline().map(wall_clock),
        }
    }
}

/// Converts a tokio instant to wall-clock time.
fn wall_clock(instant: Instant) -> SystemTime {
    let now = Instant::now();
    if instant <= now {
        SystemTime::now() - (now - instant)
    } else {
        SystemTime::now() + (instant - now)
    }
}
