//! The public face of the router: select, route (primary attempt, then the failover race),
//! snapshot, enable/disable. Hides every actor message.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;

use super::{FastPrimary, ProviderSnapshot, RouterMsg, RouterSlot, Target};
use crate::error::{AttemptError, RouteError};
use crate::events::{EventBus, HealthEvents};
use crate::provider::{OutcomeGuard, ProviderMsg, Reported};
use crate::race::{Live, RaceActor, RaceArgs, RaceEnd, RaceMsg};
use crate::report::{AttemptOutcome, AttemptRecord, RouteReport, Routed};
use crate::trigger::Triggers;
use crate::upstream::{Provider, Upstream};

/// How long a request waits for a crashed router's successor.
const ROUTER_RESTART_WAIT: Duration = Duration::from_secs(1);

/// A cloneable handle to a running runtime's router.
pub struct RouterHandle<U: Upstream> {
    shared: Arc<Shared<U>>,
}

pub(crate) struct Shared<U: Upstream> {
    pub(crate) router: RouterSlot,
    pub(crate) upstream: Arc<U>,
    pub(crate) triggers: Triggers,
    pub(crate) failover: bool,
    pub(crate) race_timeout: Duration,
    pub(crate) fast_primary: FastPrimary,
    pub(crate) supervisor: ActorCell,
    pub(crate) live: Live,
    pub(crate) events: EventBus,
}

impl<U: Upstream> Clone for RouterHandle<U> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<U: Upstream> std::fmt::Debug for RouterHandle<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterHandle")
            .field("failover", &self.shared.failover)
            .field("race_timeout", &self.shared.race_timeout)
            .finish_non_exhaustive()
    }
}

impl<U: Upstream> RouterHandle<U> {
    pub(crate) fn new(shared: Shared<U>) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The strategy's pick among providers in rotation, without performing anything.
    pub async fn select(&self) -> Result<Provider, RouteError> {
        if let Some(primary) = self.shared.fast_primary.borrow().as_ref() {
            return Ok(primary.provider.clone());
        }
        self.ask(|reply| RouterMsg::Select { reply }).await?
    }

    /// Routes a request: the strategy's primary is tried; if it fails with a failover trigger,
    /// the providers in rotation race in parallel and the first success wins.
    pub async fn route(
        &self,
        request: impl Into<Arc<U::Request>>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let request = request.into();
        let fast = self.shared.fast_primary.borrow().clone();
        let primary = match fast {
            Some(primary) => primary,
            None => self.ask(|reply| RouterMsg::PlanPrimary { reply }).await??,
        };
        let outcome = OutcomeGuard::start(&primary);
        let result = self
            .shared
            .upstream
            .attempt(&primary.provider, request.clone())
            .await;
        let latency = outcome.elapsed();
        match result {
            Ok(response) => {
                outcome.finish(Reported::Succeeded);
                let record = AttemptRecord {
                    provider: primary.provider.clone(),
                    outcome: AttemptOutcome::Succeeded,
                    latency,
                };
                Ok(Routed {
                    response,
                    report: RouteReport {
                        winner: primary.provider,
                        attempts: vec![record],
                        raced: false,
                    },
                })
            }
            Err(error) => {
                self.fail_over(primary, outcome, error, latency, request)
                    .await
            }
        }
    }

    async fn fail_over(
        &self,
        primary: Target,
        outcome: OutcomeGuard,
        error: AttemptError,
        latency: Duration,
        request: Arc<U::Request>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let verdict = self.shared.triggers.judge(&error);
        let report = Reported::Failed {
            effect: verdict.health.clone(),
            error: error.to_string(),
        };
        let first = AttemptRecord {
            provider: primary.provider.clone(),
            outcome: AttemptOutcome::Failed(error.clone()),
            latency,
        };
        if !(verdict.failover && self.shared.failover) {
            outcome.finish(report);
            return Err(RouteError::Failed {
                provider: primary.provider,
                error,
                attempts: vec![first],
            });
        }
        // The race is planned once the router knows what this failure did to the primary's
        // health, so it includes the primary only if it is still in rotation.
        let exclude = (!verdict.retry_same).then(|| primary.provider.id());
        let targets = match outcome.finish_then_plan_race(report, exclude).await {
            Some(targets) => targets,
            None => {
                self.ask(|reply| RouterMsg::PlanRace { exclude, reply })
                    .await?
            }
        };
        if targets.is_empty() || (targets.len() == 1 && targets[0].provider == primary.provider) {
            // The only provider left was just tried: no race. Release what was admitted.
            for target in targets {
                drop(OutcomeGuard::start(&target));
            }
            return Err(RouteError::Exhausted {
                attempts: vec![first],
            });
        }
        let end = self.race(targets, request).await?;
        let mut attempts = Vec::with_capacity(end.attempts.len() + 1);
        attempts.push(first);
        attempts.extend(end.attempts);
        match end.winner {
            Some((response, winner)) => Ok(Routed {
                response,
                report: RouteReport {
                    winner,
                    attempts,
                    raced: true,
                },
            }),
            None if end.timed_out => Err(RouteError::Timeout {
                timeout: self.shared.race_timeout,
                attempts,
            }),
            None => Err(RouteError::Exhausted { attempts }),
        }
    }

    async fn race(
        &self,
        targets: Vec<Target>,
        request: Arc<U::Request>,
    ) -> Result<RaceEnd<U::Response>, RouteError> {
        let (reply, ended) = oneshot::channel();
        let args = RaceArgs {
            upstream: self.shared.upstream.clone(),
            request,
            targets,
            triggers: self.shared.triggers.clone(),
            reply,
            live: self.shared.live.clone(),
        };
        let (race, _) = Actor::spawn_linked(
            None,
            RaceActor::<U>::new(),
            args,
            self.shared.supervisor.clone(),
        )
        .await
        .map_err(|_| RouteError::Stopped)?;
        // If this future is dropped (the requester went away), the race and its racers die.
        let mut guard = KillOnDrop(Some(race.get_cell()));
        let mut ended = ended;
        let end = match tokio::time::timeout(self.shared.race_timeout, &mut ended).await {
            Ok(end) => end,
            Err(_) => {
                // Time is up: the race cancels its racers and answers with what it has.
                let _ = race.cast(RaceMsg::DeadlineElapsed);
                ended.await
            }
        };
        guard.0 = None;
        end.map_err(|_| RouteError::Stopped)
    }

    /// Each provider with priority, weight, health state and counters, in configured order.
    pub async fn snapshot(&self) -> Result<Vec<ProviderSnapshot>, RouteError> {
        let table = self.ask(|reply| RouterMsg::GetTable { reply }).await?;
        let mut rows = Vec::with_capacity(table.len());
        for (mut row, actor) in table {
            if let Some(actor) = actor {
                row.status = call(&actor, |reply| ProviderMsg::GetStatus { reply })
                    .await
                    .ok();
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// Takes a provider out of routing (`false`) or puts it back (`true`) without a restart.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), RouteError> {
        let actor = self.provider_actor(name).await?;
        call(&actor, |reply| ProviderMsg::SetEnabled { enabled, reply }).await
    }

    /// Records a failure of `provider` found after its response was delivered (a stream cut
    /// or stalled after the commit point), so its health sees it.
    pub async fn report_failure(
        &self,
        provider: &Provider,
        error: &AttemptError,
    ) -> Result<(), RouteError> {
        let actor = self.provider_actor(provider.name()).await?;
        let report = Reported::Failed {
            effect: self.shared.triggers.judge(error).health,
            error: error.to_string(),
        };
        actor
            .cast(ProviderMsg::AttemptFinished {
                report,
                latency: Duration::ZERO,
                settles: false,
                plan_race: None,
            })
            .map_err(|_| RouteError::Stopped)
    }

    /// A new subscription to health events.
    pub fn subscribe(&self) -> HealthEvents {
        self.shared.events.subscribe()
    }

    /// Race and attempt actors alive right now (zero when no race is running).
    pub fn race_actors_alive(&self) -> usize {
        self.shared.live.count()
    }

    /// Waits until no race or attempt actor is alive.
    pub async fn races_finished(&self) {
        self.shared.live.none_alive().await;
    }

    /// Panics a provider actor, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub async fn crash_provider(&self, name: &str) -> Result<(), RouteError> {
        let actor = self.provider_actor(name).await?;
        actor
            .cast(ProviderMsg::Crash)
            .map_err(|_| RouteError::Stopped)
    }

    /// Panics the router actor, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn crash_router(&self) -> Result<(), RouteError> {
        self.router()?
            .cast(RouterMsg::Crash)
            .map_err(|_| RouteError::Stopped)
    }

    async fn provider_actor(&self, name: &str) -> Result<ActorRef<ProviderMsg>, RouteError> {
        self.ask(|reply| RouterMsg::FindProvider {
            name: name.to_owned(),
            reply,
        })
        .await?
        .ok_or_else(|| RouteError::UnknownProvider(name.to_owned()))
    }

    pub(crate) fn router_ref(&self) -> Option<ActorRef<RouterMsg>> {
        self.shared.router.borrow().clone()
    }

    fn router(&self) -> Result<ActorRef<RouterMsg>, RouteError> {
        self.shared
            .router
            .borrow()
            .clone()
            .ok_or(RouteError::Stopped)
    }

    /// Asks the router; if it died (the supervisor is restarting it), waits briefly for its
    /// successor and asks once more.
    async fn ask<T: Send + 'static>(
        &self,
        message: impl Fn(RpcReplyPort<T>) -> RouterMsg,
    ) -> Result<T, RouteError> {
        let mut slot = self.shared.router.clone();
        let router = slot
            .borrow_and_update()
            .clone()
            .ok_or(RouteError::Stopped)?;
        match call(&router, &message).await {
            Err(RouteError::Stopped) => {
                let restarted = tokio::time::timeout(ROUTER_RESTART_WAIT, slot.changed()).await;
                if !matches!(restarted, Ok(Ok(()))) {
                    return Err(RouteError::Stopped);
                }
                call(&self.router()?, message).await
            }
            answered => answered,
        }
    }
}

async fn call<M: ractor::Message, T: Send + 'static>(
    actor: &ActorRef<M>,
    message: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, RouteError> {
    match actor.call(message, None).await {
        Ok(CallResult::Success(value)) => Ok(value),
        _ => Err(RouteError::Stopped),
    }
}

struct KillOnDrop(Option<ActorCell>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(race) = self.0.take() {
            race.kill();
        }
    }
}
