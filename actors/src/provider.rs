//! The provider actor: owns one provider's health, receives the outcome of every attempt made
//! against it, reports each transition as an event and to the router.

pub mod health;
mod outcome;

pub(crate) use outcome::{OutcomeGuard, Reported, Standing};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::HealthConfig;
use crate::events::{EventBus, HealthEvent};
use crate::router::{RouterMsg, RouterSlot, Target};
use crate::trigger::HealthEffect;
use crate::upstream::{Provider, ProviderId};
use health::{Health, HealthState, Transition};

/// Counters of one provider since the runtime started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Attempts reported.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub successes: u64,
    /// Attempts that failed in a way that counts against health (or cooled it down).
    pub failures: u64,
    /// Attempts that failed with the client's error (e.g. 400); not held against the provider.
    pub client_errors: u64,
    /// Attempts cancelled: race losers, timeouts, dropped requests.
    pub cancelled: u64,
}

/// A provider's health and counters at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderStatus {
    /// Current state.
    pub state: HealthState,
    /// Wall-clock time the state was entered.
    pub since: SystemTime,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Counters.
    pub counters: Counters,
    /// The last error held against the provider, if any.
    pub last_error: Option<String>,
    /// When a cool-off or cooldown ends, if one is running.
    pub until: Option<SystemTime>,
    /// Latency of the last successful attempt.
    pub last_success_latency: Option<Duration>,
}

/// A failover race to plan once the failure that starts it is recorded: the provider forwards
/// it to the router behind its own health news, saving the requester a round trip.
pub(crate) struct RaceRequest {
    pub(crate) exclude: Option<ProviderId>,
    pub(crate) reply: RpcReplyPort<Vec<Target>>,
}

/// Messages of the provider actor.
pub(crate) enum ProviderMsg {
    /// An attempt against this provider ended. With `plan_race`, once the router has been told
    /// of any transition, the race is planned by the router (which then sees this outcome).
    AttemptFinished {
        report: Reported,
        latency: Duration,
        /// Sent by an [`OutcomeGuard`], which counted it as unsettled.
        settles: bool,
        plan_race: Option<RaceRequest>,
    },
    /// The health deadline scheduled under `generation` passed.
    DeadlineReached { generation: u64 },
    /// An operator enables or disables the provider.
    SetEnabled {
        enabled: bool,
        reply: RpcReplyPort<()>,
    },
    /// Current health and counters.
    GetStatus { reply: RpcReplyPort<ProviderStatus> },
    /// Panics, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    Crash,
}

pub(crate) struct ProviderActor;

/// Everything a provider actor (re)starts from.
#[derive(Clone)]
pub(crate) struct ProviderArgs {
    pub(crate) provider: Provider,
    pub(crate) standing: Arc<Standing>,
    pub(crate) health: HealthConfig,
    pub(crate) enabled: bool,
    pub(crate) events: EventBus,
    pub(crate) router: RouterSlot,
}

pub(crate) struct ProviderState {
    args: ProviderArgs,
    health: Health,
    enabled: bool,
    counters: Counters,
    last_error: Option<String>,
    generation: u64,
    timer: Option<crate::timer::Timer>,
}

impl ProviderState {
    /// Republishes whether a success may skip the message (see [`Standing`]).
    fn update_standing(&self) {
        let clean = self.enabled
            && self.health.state() == HealthState::Healthy
            && self.health.consecutive_failures() == 0;
        self.args.standing.clean.store(clean, Ordering::Release);
    }

    fn published(&self) -> HealthState {
        if self.enabled {
            self.health.state()
        } else {
            HealthState::Disabled
        }
    }

    fn status(&self) -> ProviderStatus {
        let standing = &self.args.standing;
        let quiet = standing.quiet_successes.load(Ordering::Relaxed);
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

impl Actor for ProviderActor {
    type Msg = ProviderMsg;
    type State = ProviderState;
    type Arguments = ProviderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ProviderArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A crashed predecessor's unprocessed reports are gone with its mailbox.
        args.standing.unsettled.store(0, Ordering::Release);
        args.standing.clean.store(args.enabled, Ordering::Release);
        Ok(ProviderState {
            health: Health::new(args.health.clone(), Instant::now()),
            enabled: args.enabled,
            args,
            counters: Counters::default(),
            last_error: None,
            generation: 0,
            timer: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProviderMsg::AttemptFinished {
                report,
                latency,
                settles,
                plan_race,
            } => {
                if matches!(report, Reported::Succeeded) {
                    state.args.standing.record_latency(latency);
                }
                record(&myself, state, report);
                state.update_standing();
                if settles {
                    state.args.standing.unsettled.fetch_sub(1, Ordering::AcqRel);
                }
                if let Some(RaceRequest { exclude, reply }) = plan_race {
                    // Without a router the reply is dropped and the requester asks again.
                    state.notify_router(RouterMsg::PlanRace { exclude, reply });
                }
            }
            ProviderMsg::DeadlineReached { generation } => {
                if generation == state.generation {
                    let transition = state.health.tick(Instant::now());
                    apply(&myself, state, transition);
                    state.update_standing();
                }
            }
            ProviderMsg::SetEnabled { enabled, reply } => {
                set_enabled(state, enabled);
                state.update_standing();
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

fn record(myself: &ActorRef<ProviderMsg>, state: &mut ProviderState, report: Reported) {
    state.counters.attempts += 1;
    let was_probe = state.health.state() == HealthState::HalfOpen;
    let effect = match report {
        Reported::Succeeded => {
            state.counters.successes += 1;
            HealthEffect::Success
        }
        Reported::Cancelled => {
            state.counters.cancelled += 1;
            HealthEffect::Neutral
        }
        Reported::Failed { effect, error } => {
            if effect == HealthEffect::Neutral {
                state.counters.client_errors += 1;
            } else {
                state.counters.failures += 1;
                state.last_error = Some(error);
            }
            effect
        }
    };
    let transition = state.health.record(&effect, Instant::now());
    if transition.is_none() && was_probe {
        // A probe that proved nothing frees its slot for the next one.
        state.notify_router(RouterMsg::ProbeReleased {
            id: state.args.provider.id(),
        });
    }
    apply(myself, state, transition);
}

fn set_enabled(state: &mut ProviderState, enabled: bool) {
    if state.enabled == enabled {
        return;
    }
    let from = state.published();
    state.enabled = enabled;
    let reason = if enabled {
        "enabled by operator"
    } else {
        "disabled by operator"
    };
    state.announce(Transition {
        from,
        to: state.published(),
        reason: reason.to_owned(),
    });
}

/// Reports a health transition (if any) and arms the timer for the next deadline.
fn apply(
    myself: &ActorRef<ProviderMsg>,
    state: &mut ProviderState,
    transition: Option<Transition>,
) {
    let Some(transition) = transition else {
        return;
    };
    state.generation += 1;
    state.timer = state.health.deadline().map(|deadline| {
        let generation = state.generation;
        crate::timer::Timer::at(deadline, myself.clone(), move || {
            ProviderMsg::DeadlineReached { generation }
        })
    });
    if state.enabled {
        state.announce(transition);
    }
}

impl ProviderState {
    fn announce(&self, transition: Transition) {
        self.notify_router(RouterMsg::HealthChanged {
            id: self.args.provider.id(),
            state: transition.to,
        });
        self.args.events.publish(HealthEvent {
            provider: self.args.provider.clone(),
            from: transition.from,
            to: transition.to,
            reason: transition.reason,
            at: SystemTime::now(),
        });
    }

    fn notify_router(&self, message: RouterMsg) {
        if let Some(router) = self.args.router.borrow().as_ref() {
            // A router that is gone is being restarted; it reads every provider's state anew.
            let _ = router.cast(message);
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
