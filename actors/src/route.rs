//! The request path, top to bottom:
//!
//! 1. **eligible**: the providers of the routing table as published that serve the request's
//!    model ([`Upstream::route_key`]), in the order they are tried (a per-model rule's, then by
//!    priority); none → [`RouteError::ModelNotServed`], no attempt;
//! 2. **primary**: the first eligible in rotation under `failover`, read from the providers'
//!    views without a message; otherwise the router's strategy picks it (rotation per model);
//! 3. **attempt**: [`Upstream::attempt`] in the caller's task, never in an actor's mailbox (a
//!    probe of a half-open provider is bounded by the probe timeout);
//! 4. **verdict**: the triggers judge a failure once (fail over? health effect? may the same
//!    provider race again?), and the outcome goes to the provider;
//! 5. **race**: every other provider in rotation races (the primary too, if the verdict allows
//!    it and its failure left it in rotation);
//! 6. **deadline**: the race timeout bounds the wait for a winner, never the winner's response;
//! 7. **report**: every attempt in order, the winner's index, the failover's cause and end.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};
use tokio::sync::{oneshot, watch};

use crate::provider::{OutcomeGuard, Reported, Target};
use crate::race::{Finish, Live, RaceActor, RaceArgs, RaceMsg};
use crate::report::{
    AttemptOutcome, AttemptRecord, Failover, RaceEnd, RouteError, RouteReport, Routed,
};
use crate::router::table::Table;
use crate::router::{self, RouterMsg, RouterSlot};
use crate::trigger::Triggers;
use crate::upstream::{AttemptError, Upstream};

/// What every route needs; one per runtime.
pub(crate) struct RoutePath<U: Upstream> {
    pub(crate) upstream: Arc<U>,
    pub(crate) triggers: Triggers,
    pub(crate) failover: bool,
    pub(crate) race_timeout: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) table: watch::Receiver<Arc<Table>>,
    pub(crate) router: RouterSlot,
    pub(crate) supervisor: ActorCell,
    pub(crate) live: Live,
}

impl<U: Upstream> RoutePath<U> {
    /// Routes one request.
    pub(crate) async fn route(
        &self,
        request: Arc<U::Request>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let table = self.open()?;
        let model = U::route_key(&request);
        let order = table.eligible(model)?;
        let primary = self.primary(&table, &order, model).await?;
        let attempt = OutcomeGuard::start(primary);
        let provider = attempt.provider().clone();
        let result = attempt
            .run(&*self.upstream, request.clone(), self.probe_timeout)
            .await;
        let latency = attempt.elapsed();
        let error = match result {
            Ok(response) => {
                attempt.finish(Reported::Succeeded);
                let record = AttemptRecord {
                    provider,
                    outcome: AttemptOutcome::Succeeded,
                    latency,
                };
                return Ok(Routed {
                    response,
                    report: RouteReport {
                        attempts: vec![record],
                        winner: 0,
                        failover: None,
                    },
                });
            }
            Err(error) => error,
        };
        self.fail_over(attempt, error, request, &table, &order)
            .await
    }

    /// The primary failed: judge the error once, tell its provider, race the others.
    async fn fail_over(
        &self,
        attempt: OutcomeGuard,
        error: AttemptError,
        request: Arc<U::Request>,
        table: &Table,
        order: &[usize],
    ) -> Result<Routed<U::Response>, RouteError> {
        let provider = attempt.provider().clone();
        let verdict = self.triggers.judge(&error);
        let report = Reported::failed(&verdict, &error);
        let first = AttemptRecord {
            provider: provider.clone(),
            outcome: AttemptOutcome::Failed(error.clone()),
            latency: attempt.elapsed(),
        };
        if !(verdict.failover && self.failover) {
            attempt.finish(report);
            return Err(RouteError::Failed {
                provider,
                error,
                attempts: vec![first],
            });
        }
        let racers = if verdict.retry_same {
            // The primary races again only if its failure left it in rotation: wait until its
            // provider has recorded it before reading who is in rotation.
            attempt.finish_recorded(report).await;
            table.admit_all(order, None)
        } else {
            attempt.finish(report);
            table.admit_all(order, Some(provider.id()))
        };
        let failover = |race| Failover {
            cause: error.cause(),
            race,
        };
        if racers.iter().all(|racer| racer.provider == provider) {
            // Nobody else is left: no race. Dropping the targets frees what they admitted.
            return Err(RouteError::Exhausted {
                attempts: vec![first],
                failover: failover(None),
            });
        }
        let finish = self.race(racers, request).await?;
        self.report(first, finish, failover)
    }

    /// The routing table, when requests may be routed.
    fn open(&self) -> Result<Arc<Table>, RouteError> {
        let table = self.table.borrow().clone();
        table.check_open()?;
        Ok(table)
    }

    /// The primary among the eligible providers (`order`), admitted for its attempt.
    async fn primary(
        &self,
        table: &Table,
        order: &[usize],
        model: Option<&str>,
    ) -> Result<Target, RouteError> {
        if table.by_priority_alone() {
            return table.admit_first(order).ok_or(RouteError::AllUnhealthy);
        }
        let model: Option<Arc<str>> = model.map(Into::into);
        router::ask(&self.router, |reply| RouterMsg::Admit {
            model: model.clone(),
            reply,
        })
        .await?
    }

    /// Races `racers` until one commits, every one fails, or the race timeout elapses.
    async fn race(
        &self,
        racers: Vec<Target>,
        request: Arc<U::Request>,
    ) -> Result<Finish<U::Response>, RouteError> {
        let (reply, ended) = oneshot::channel();
        let args = RaceArgs {
            upstream: self.upstream.clone(),
            request,
            targets: racers,
            triggers: self.triggers.clone(),
            probe_timeout: self.probe_timeout,
            reply,
            live: self.live.clone(),
        };
        let (race, _) =
            Actor::spawn_linked(None, RaceActor::<U>::new(), args, self.supervisor.clone())
                .await
                .map_err(|_| RouteError::Stopped)?;
        // If this future is dropped (the requester went away), the race and its racers die.
        let mut guard = KillOnDrop(Some(race.get_cell()));
        let mut ended = ended;
        let end = match tokio::time::timeout(self.race_timeout, &mut ended).await {
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

    /// The route's story: the primary's failed attempt, then the race's.
    fn report(
        &self,
        first: AttemptRecord,
        finish: Finish<U::Response>,
        failover: impl Fn(Option<RaceEnd>) -> Failover,
    ) -> Result<Routed<U::Response>, RouteError> {
        let mut attempts = Vec::with_capacity(finish.attempts.len() + 1);
        attempts.push(first);
        attempts.extend(finish.attempts);
        match finish.winner {
            Some((response, index)) => Ok(Routed {
                response,
                report: RouteReport {
                    attempts,
                    winner: index + 1,
                    failover: Some(failover(Some(RaceEnd::Won))),
                },
            }),
            None if finish.timed_out => Err(RouteError::Timeout {
                timeout: self.race_timeout,
                attempts,
                failover: failover(Some(RaceEnd::TimedOut)),
            }),
            None => Err(RouteError::Exhausted {
                attempts,
                failover: failover(Some(RaceEnd::AllFailed)),
            }),
        }
    }
}

/// Kills a race whose requester went away.
struct KillOnDrop(Option<ActorCell>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(race) = self.0.take() {
            race.kill();
        }
    }
}
