//! The request path, top to bottom:
//!
//! 1. **eligible**: the providers of the routing table as published that serve the request's
//!    model ([`Upstream::route_key`]), in the order they are tried (a per-model rule's, then by
//!    priority); none → [`RouteError::ModelNotServed`], no attempt;
//! 2. **primary**: the first eligible in rotation under `failover`, read from the providers'
//!    views without a message; otherwise the router's strategy picks it (rotation per model);
//! 3. **attempt**: [`Upstream::attempt`] in the caller's task, never in an actor's mailbox (a
//!    probe of a half-open provider is bounded by the probe timeout);
//! 4. **hedge**: a primary that has not committed by its provider's delay for the request's
//!    class gets a hedge, budget permitting: an open race with the next eligible provider,
//!    beside the primary; whichever commits first wins and the other is cancelled;
//! 5. **verdict**: the triggers judge a failure once (fail over? health effect? may the same
//!    provider race again?), and the outcome goes to the provider;
//! 6. **race**: every other provider in rotation races (the primary too, if the verdict allows
//!    it and its failure left it in rotation); when a hedge race runs, they join it;
//! 7. **deadline**: the race timeout bounds the wait for a winner after the primary failed,
//!    never the winner's response;
//! 8. **report**: every attempt in order, the winner's index, the failover's cause (`hedge`
//!    for a hedged request) and end.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};
use tokio::sync::{oneshot, watch};

use crate::hedge::{HedgeEnd, Hedging, RequestClass};
use crate::provider::{OutcomeGuard, Reported, Target};
use crate::race::{Finish, Live, RaceActor, RaceArgs, RaceMsg, RacerKit};
use crate::report::{
    AttemptOutcome, AttemptRecord, Failover, RaceEnd, RouteError, RouteReport, Routed,
};
use crate::router::table::Table;
use crate::router::{self, RouterMsg, RouterSlot};
use crate::trigger::{Triggers, Verdict};
use crate::upstream::{AttemptError, Cause, ProviderId, Upstream};

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
    pub(crate) hedging: Hedging,
}

/// What a route is about: its request, its class, the table it read and who is eligible.
struct Request<'a, U: Upstream> {
    request: Arc<U::Request>,
    class: RequestClass,
    table: &'a Table,
    order: &'a [usize],
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
        let class = RequestClass::of(U::shape(&request));
        let delay = if order.len() > 1 {
            primary.hedge.delay(class)
        } else {
            None
        };
        let attempt = OutcomeGuard::start(primary, class);
        self.hedging.budget.deposit(attempt.started());
        let run = attempt.run(&*self.upstream, request.clone(), self.probe_timeout);
        let route = Request {
            request,
            class,
            table: &table,
            order: &order,
        };
        let Some(delay) = delay else {
            let result = run.await;
            return self.settle(attempt, result, &route).await;
        };
        let mut run = pin!(run);
        match tokio::time::timeout(delay, run.as_mut()).await {
            Ok(result) => self.settle(attempt, result, &route).await,
            // The primary future lives in this frame: when a hedge wins, it is dropped (and
            // its upstream request cancelled) as this returns.
            Err(_) => self.hedge(attempt, run, &route).await,
        }
    }

    /// The primary's attempt ended with no hedge beside it.
    async fn settle(
        &self,
        attempt: OutcomeGuard,
        result: Result<U::Response, AttemptError>,
        route: &Request<'_, U>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let response = match result {
            Ok(response) => response,
            Err(error) => return self.fail_over(attempt, error, route).await,
        };
        let record = record(&attempt, AttemptOutcome::Succeeded);
        attempt.finish(Reported::Succeeded);
        Ok(Routed {
            response,
            report: RouteReport {
                attempts: vec![record],
                winner: 0,
                failover: None,
            },
        })
    }

    /// The primary failed: judge the error once, tell its provider, race the others.
    async fn fail_over(
        &self,
        attempt: OutcomeGuard,
        error: AttemptError,
        route: &Request<'_, U>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let provider = attempt.provider().clone();
        let verdict = self.triggers.judge(&error);
        let first = record(&attempt, AttemptOutcome::Failed(error.clone()));
        if !(verdict.failover && self.failover) {
            attempt.finish(Reported::failed(&verdict, &error));
            return Err(RouteError::Failed {
                provider,
                error,
                attempts: vec![first],
            });
        }
        let racers = racers_after(attempt, &verdict, &error, route, &[]).await;
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
        let race = self.start_race(racers, route, false).await?;
        let finish = race.finish(self.race_timeout).await?;
        self.report(first, finish, failover)
    }

    /// The primary is slow: a hedge joins it, budget permitting, and the first to commit wins.
    async fn hedge<F>(
        &self,
        attempt: OutcomeGuard,
        mut run: Pin<&mut F>,
        route: &Request<'_, U>,
    ) -> Result<Routed<U::Response>, RouteError>
    where
        F: Future<Output = Result<U::Response, AttemptError>>,
    {
        let Some(target) = self.admit_hedge(route, attempt.provider().id()) else {
            let result = run.await;
            return self.settle(attempt, result, route).await;
        };
        let hedge = target.provider.id();
        let mut race = self.start_race(vec![target], route, true).await?;
        self.hedging.counters.started();
        tokio::select! {
            result = run.as_mut() => self.primary_ended(attempt, result, race, hedge, route).await,
            end = &mut race.ended => {
                race.guard.0 = None;
                let finish = end.map_err(|_| RouteError::Stopped)?;
                let Some((response, index)) = finish.winner else {
                    // An open race ends without a winner only when told to; carry on alone.
                    let result = run.await;
                    return self.settle(attempt, result, route).await;
                };
                self.hedging.counters.ended(HedgeEnd::Hedge);
                let mut first = record(&attempt, AttemptOutcome::Cancelled);
                // The primary reports now; its future is dropped on return.
                first.outcome = attempt.outrun(&self.triggers);
                let mut attempts = vec![first];
                attempts.extend(finish.attempts);
                Ok(Routed {
                    response,
                    report: RouteReport {
                        attempts,
                        winner: index + 1,
                        failover: Some(hedged(Some(RaceEnd::Won))),
                    },
                })
            }
        }
    }

    /// The next eligible provider in rotation, when the budget allows a hedge.
    fn admit_hedge(&self, route: &Request<'_, U>, primary: ProviderId) -> Option<Target> {
        let target = route.table.admit_next(route.order, primary)?;
        if self.hedging.budget.withdraw() {
            Some(target)
        } else {
            self.hedging.counters.budget_spent();
            None
        }
    }

    /// The hedged primary ended first: a success wins (the hedge is cancelled); a failure that
    /// fails over sends the others into the hedge's race; any other failure is the answer.
    async fn primary_ended(
        &self,
        attempt: OutcomeGuard,
        result: Result<U::Response, AttemptError>,
        race: Running<U>,
        hedge: ProviderId,
        route: &Request<'_, U>,
    ) -> Result<Routed<U::Response>, RouteError> {
        let error = match result {
            Ok(response) => {
                let first = record(&attempt, AttemptOutcome::Succeeded);
                attempt.finish(Reported::Succeeded);
                let finish = race.cancel().await?;
                self.hedging.counters.ended(HedgeEnd::Original);
                let mut attempts = vec![first];
                attempts.extend(finish.attempts);
                return Ok(Routed {
                    response,
                    report: RouteReport {
                        attempts,
                        winner: 0,
                        failover: Some(hedged(Some(RaceEnd::Won))),
                    },
                });
            }
            Err(error) => error,
        };
        let provider = attempt.provider().clone();
        let verdict = self.triggers.judge(&error);
        let first = record(&attempt, AttemptOutcome::Failed(error.clone()));
        if !(verdict.failover && self.failover) {
            attempt.finish(Reported::failed(&verdict, &error));
            let finish = race.cancel().await?;
            self.hedging.counters.ended(HedgeEnd::Failed);
            let mut attempts = vec![first];
            attempts.extend(finish.attempts);
            return Err(RouteError::Failed {
                provider,
                error,
                attempts,
            });
        }
        let racers = racers_after(attempt, &verdict, &error, route, &[hedge]).await;
        race.send(RaceMsg::Join { targets: racers });
        race.send(RaceMsg::Close);
        let finish = race.finish(self.race_timeout).await?;
        let routed = self.report(first, finish, hedged);
        self.hedging.counters.ended(if routed.is_ok() {
            HedgeEnd::Hedge
        } else {
            HedgeEnd::Failed
        });
        routed
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

    /// Starts a race of `racers`: closed (a failover; it ends when they have all failed) or
    /// open (a hedge; others may join).
    async fn start_race(
        &self,
        racers: Vec<Target>,
        route: &Request<'_, U>,
        open: bool,
    ) -> Result<Running<U>, RouteError> {
        let (reply, ended) = oneshot::channel();
        let args = RaceArgs {
            kit: RacerKit {
                upstream: self.upstream.clone(),
                request: route.request.clone(),
                class: route.class,
                triggers: self.triggers.clone(),
                probe_timeout: self.probe_timeout,
                live: self.live.clone(),
            },
            targets: racers,
            open,
            reply,
        };
        let (race, _) =
            Actor::spawn_linked(None, RaceActor::<U>::new(), args, self.supervisor.clone())
                .await
                .map_err(|_| RouteError::Stopped)?;
        Ok(Running {
            // If the requester goes away, the race and its racers die.
            guard: KillOnDrop(Some(race.get_cell())),
            race,
            ended,
        })
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

/// The record of the primary's attempt, as it ends.
fn record(attempt: &OutcomeGuard, outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord {
        provider: attempt.provider().clone(),
        outcome,
        latency: attempt.elapsed(),
    }
}

fn hedged(race: Option<RaceEnd>) -> Failover {
    Failover {
        cause: Cause::Hedge,
        race,
    }
}

/// Reports the primary's failure and admits the racers of its failover: every eligible
/// provider in rotation but those in `exclude`, and but the primary unless the verdict lets
/// it race again (then its failure must have left it in rotation: wait until its provider has
/// recorded it before reading who is).
async fn racers_after<U: Upstream>(
    attempt: OutcomeGuard,
    verdict: &Verdict,
    error: &AttemptError,
    route: &Request<'_, U>,
    exclude: &[ProviderId],
) -> Vec<Target> {
    let report = Reported::failed(verdict, error);
    if verdict.retry_same {
        attempt.finish_recorded(report).await;
        return route.table.admit_all(route.order, exclude);
    }
    let mut excluded = exclude.to_vec();
    excluded.push(attempt.provider().id());
    attempt.finish(report);
    route.table.admit_all(route.order, &excluded)
}

/// A race as its requester holds it.
struct Running<U: Upstream> {
    race: ActorRef<RaceMsg<U>>,
    ended: oneshot::Receiver<Finish<U::Response>>,
    guard: KillOnDrop,
}

impl<U: Upstream> Running<U> {
    fn send(&self, message: RaceMsg<U>) {
        // A race that has ended has answered already; `ended` holds its answer.
        let _ = self.race.cast(message);
    }

    /// Waits for the race to end, for at most `timeout`; then it cancels its racers and
    /// answers with what it has.
    async fn finish(mut self, timeout: Duration) -> Result<Finish<U::Response>, RouteError> {
        let end = match tokio::time::timeout(timeout, &mut self.ended).await {
            Ok(end) => end,
            Err(_) => {
                self.send(RaceMsg::DeadlineElapsed);
                (&mut self.ended).await
            }
        };
        self.guard.0 = None;
        end.map_err(|_| RouteError::Stopped)
    }

    /// Ends the race now, its racers cancelled, and takes its records.
    async fn cancel(mut self) -> Result<Finish<U::Response>, RouteError> {
        self.send(RaceMsg::Cancel);
        let end = (&mut self.ended).await;
        self.guard.0 = None;
        end.map_err(|_| RouteError::Stopped)
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
