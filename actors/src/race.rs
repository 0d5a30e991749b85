//! Race actors: a race is one short-lived [`RaceActor`] with one [`AttemptActor`] child per
//! racing provider. The first success is delivered to the requester exactly once and the
//! siblings are killed at once: their attempt futures are dropped, so the upstream sees the
//! connection close. The requester's deadline bounds the time until a winner is found; it
//! cannot cut the winner's response, which has left the race by then.
//!
//! Entry is staggered: a failover race starts with all its racers, **closed** (it ends when
//! they have all failed). A hedge race starts **open** with the hedge alone, beside the slow
//! primary that the requester keeps running: more racers may `Join` it (the others, when the
//! primary fails), and it ends without a winner only once the requester `Close`s it and every
//! racer has failed, or when the requester `Cancel`s it (the primary committed).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::hedge::RequestClass;
use crate::provider::{OutcomeGuard, Reported, Target};
use crate::report::{AttemptOutcome, AttemptRecord};
use crate::trigger::Triggers;
use crate::upstream::{AttemptError, Provider, Upstream};

/// Counts the race and attempt actors alive, so shutdown and tests can wait for none.
#[derive(Clone, Debug)]
pub(crate) struct Live(Arc<watch::Sender<usize>>);

impl Live {
    pub(crate) fn new() -> Self {
        Live(Arc::new(watch::Sender::new(0)))
    }

    pub(crate) fn enter(&self) -> LiveGuard {
        self.0.send_modify(|n| *n += 1);
        LiveGuard(self.0.clone())
    }

    pub(crate) fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until no race or attempt actor is alive.
    pub(crate) async fn none_alive(&self) {
        let mut alive = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = alive.wait_for(|n| *n == 0).await;
    }
}

/// Decrements the live count when the actor's state is dropped (also when it is killed).
#[derive(Debug)]
pub(crate) struct LiveGuard(Arc<watch::Sender<usize>>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// How a race ended: the winner's response and its index in `attempts`, if any.
pub(crate) struct Finish<R> {
    pub(crate) winner: Option<(R, usize)>,
    pub(crate) timed_out: bool,
    pub(crate) attempts: Vec<AttemptRecord>,
}

pub(crate) struct RaceArgs<U: Upstream> {
    pub(crate) kit: RacerKit<U>,
    pub(crate) targets: Vec<Target>,
    /// Whether racers may still join (a hedge race) or it ends when these have all failed.
    pub(crate) open: bool,
    pub(crate) reply: oneshot::Sender<Finish<U::Response>>,
}

/// What every racer of a race is started with.
pub(crate) struct RacerKit<U: Upstream> {
    pub(crate) upstream: Arc<U>,
    pub(crate) request: Arc<U::Request>,
    pub(crate) class: RequestClass,
    pub(crate) triggers: Triggers,
    pub(crate) probe_timeout: Duration,
    pub(crate) live: Live,
}

/// Messages of a race actor.
pub(crate) enum RaceMsg<U: Upstream> {
    /// Racer `index` finished.
    AttemptFinished {
        index: usize,
        result: Result<U::Response, AttemptError>,
        latency: Duration,
    },
    /// Start these racers too (the race is open).
    Join { targets: Vec<Target> },
    /// No racer will join any more: end once every racer has failed.
    Close,
    /// End now, cancelling every racer still running (the hedged primary committed, or
    /// failed with an error that is the request's answer).
    Cancel,
    /// The race timeout elapsed without a winner (sent by the requester, who keeps the clock).
    DeadlineElapsed,
}

pub(crate) struct RaceActor<U>(PhantomData<fn() -> U>);

impl<U> RaceActor<U> {
    pub(crate) fn new() -> Self {
        RaceActor(PhantomData)
    }
}

pub(crate) struct RaceState<U: Upstream> {
    kit: RacerKit<U>,
    reply: Option<oneshot::Sender<Finish<U::Response>>>,
    open: bool,
    providers: Vec<Provider>,
    racers: Vec<Option<ActorCell>>,
    records: Vec<Option<AttemptRecord>>,
    started: Instant,
    _live: LiveGuard,
}

impl<U: Upstream> Actor for RaceActor<U> {
    type Msg = RaceMsg<U>;
    type State = RaceState<U>;
    type Arguments = RaceArgs<U>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RaceArgs<U>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RaceState {
            _live: args.kit.live.enter(),
            kit: args.kit,
            reply: Some(args.reply),
            open: args.open,
            providers: Vec::with_capacity(args.targets.len()),
            racers: Vec::with_capacity(args.targets.len()),
            records: Vec::with_capacity(args.targets.len()),
            started: Instant::now(),
        };
        state.spawn(&myself, args.targets).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RaceMsg::AttemptFinished {
                index,
                result,
                latency,
            } => state.finished(&myself, index, result, latency),
            RaceMsg::Join { targets } => {
                if state.reply.is_some() {
                    state.spawn(&myself, targets).await?;
                }
            }
            RaceMsg::Close => {
                state.open = false;
                if state.racers.iter().all(Option::is_none) {
                    state.end(&myself, None, false);
                }
            }
            RaceMsg::Cancel => {
                state.cancel_running();
                state.end(&myself, None, false);
            }
            RaceMsg::DeadlineElapsed => {
                state.cancel_running();
                state.end(&myself, None, true);
            }
        }
        Ok(())
    }

    /// Racers come and go: never stop because one did (ractor's default), but treat a racer
    /// that panicked as a failed attempt.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, panic) = event {
            let index = state
                .racers
                .iter()
                .position(|r| r.as_ref().is_some_and(|r| r.get_id() == cell.get_id()));
            if let Some(index) = index {
                let error = AttemptError::Other {
                    message: format!("attempt panicked: {panic}"),
                };
                let latency = state.started.elapsed();
                state.finished(&myself, index, Err(error), latency);
            }
        }
        Ok(())
    }
}

impl<U: Upstream> RaceState<U> {
    /// Starts one attempt actor per target, after those already racing.
    async fn spawn(
        &mut self,
        myself: &ActorRef<RaceMsg<U>>,
        targets: Vec<Target>,
    ) -> Result<(), ActorProcessingErr> {
        for target in targets {
            let kit = &self.kit;
            let attempt = AttemptArgs {
                index: self.racers.len(),
                upstream: kit.upstream.clone(),
                request: kit.request.clone(),
                class: kit.class,
                triggers: kit.triggers.clone(),
                probe_timeout: kit.probe_timeout,
                race: myself.clone(),
                live: kit.live.clone(),
            };
            self.providers.push(target.provider.clone());
            let (racer, _) = Actor::spawn_linked(
                None,
                AttemptActor::<U>(PhantomData),
                (attempt, target),
                myself.get_cell(),
            )
            .await?;
            self.racers.push(Some(racer.get_cell()));
            self.records.push(None);
        }
        Ok(())
    }

    fn finished(
        &mut self,
        myself: &ActorRef<RaceMsg<U>>,
        index: usize,
        result: Result<U::Response, AttemptError>,
        latency: Duration,
    ) {
        if self.reply.is_none() || self.racers.get_mut(index).and_then(Option::take).is_none() {
            // Too late: a winner was delivered already; dropping the response cancels it.
            return;
        }
        match result {
            Ok(response) => {
                self.record(index, AttemptOutcome::Succeeded, latency);
                self.cancel_running();
                self.end(myself, Some((response, index)), false);
            }
            Err(error) => {
                self.record(index, AttemptOutcome::Failed(error), latency);
                if !self.open && self.racers.iter().all(Option::is_none) {
                    self.end(myself, None, false);
                }
            }
        }
    }

    fn record(&mut self, index: usize, outcome: AttemptOutcome, latency: Duration) {
        self.records[index] = Some(AttemptRecord {
            provider: self.providers[index].clone(),
            outcome,
            latency,
        });
    }

    /// Kills every racer still running; each reports its cancellation to its provider.
    fn cancel_running(&mut self) {
        let latency = self.started.elapsed();
        for index in 0..self.racers.len() {
            if let Some(racer) = self.racers[index].take() {
                racer.kill();
                self.record(index, AttemptOutcome::Cancelled, latency);
            }
        }
    }

    fn end(
        &mut self,
        myself: &ActorRef<RaceMsg<U>>,
        winner: Option<(U::Response, usize)>,
        timed_out: bool,
    ) {
        if let Some(reply) = self.reply.take() {
            // The winner's index among the attempts that have a record.
            let winner = winner.map(|(response, index)| {
                let before = self.records[..index].iter().flatten().count();
                (response, before)
            });
            let attempts = self.records.iter_mut().filter_map(Option::take).collect();
            // A requester that gave up drops the response, which cancels it.
            let _ = reply.send(Finish {
                winner,
                timed_out,
                attempts,
            });
        }
        myself.stop(None);
    }
}

pub(crate) struct AttemptArgs<U: Upstream> {
    index: usize,
    upstream: Arc<U>,
    request: Arc<U::Request>,
    class: RequestClass,
    triggers: Triggers,
    probe_timeout: Duration,
    race: ActorRef<RaceMsg<U>>,
    live: Live,
}

/// Messages of an attempt actor.
pub(crate) enum AttemptMsg {
    /// Perform the attempt (sent to itself on start).
    Run,
}

/// One racing attempt. It awaits upstream I/O in `handle`, which is what it exists for: it is
/// short-lived, and killing it drops the attempt.
pub(crate) struct AttemptActor<U>(PhantomData<fn() -> U>);

pub(crate) struct AttemptState<U: Upstream> {
    args: Option<AttemptArgs<U>>,
    outcome: Option<OutcomeGuard>,
    _live: LiveGuard,
}

impl<U: Upstream> Actor for AttemptActor<U> {
    type Msg = AttemptMsg;
    type State = AttemptState<U>;
    type Arguments = (AttemptArgs<U>, Target);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (args, target): (AttemptArgs<U>, Target),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.cast(AttemptMsg::Run)?;
        Ok(AttemptState {
            _live: args.live.enter(),
            outcome: Some(OutcomeGuard::start(target, args.class)),
            args: Some(args),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        AttemptMsg::Run: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(args), Some(outcome)) = (state.args.take(), state.outcome.as_ref()) else {
            return Ok(());
        };
        let result = outcome
            .run(&*args.upstream, args.request.clone(), args.probe_timeout)
            .await;
        if let Some(outcome) = state.outcome.take() {
            let latency = outcome.elapsed();
            outcome.finish(Reported::judge(&result, &args.triggers));
            let _ = args.race.cast(RaceMsg::AttemptFinished {
                index: args.index,
                result,
                latency,
            });
        }
        myself.stop(None);
        Ok(())
    }
}
