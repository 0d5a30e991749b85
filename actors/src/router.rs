//! The router actor: owns the routing table (each provider's priority, weight and health as its
//! provider actor last reported it) and the strategy state. It decides and delegates; it never
//! awaits upstream I/O.

pub(crate) mod handle;
pub mod strategy;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::watch;

pub use handle::RouterHandle;

use crate::config::StrategyKind;
use crate::error::RouteError;
use crate::provider::health::HealthState;
use crate::provider::{ProviderMsg, ProviderStatus, Standing};
use crate::upstream::{Provider, ProviderId};
use strategy::{Candidate, Strategy};

/// Where the current router lives; replaced when the supervisor restarts it.
pub(crate) type RouterSlot = watch::Receiver<Option<ActorRef<RouterMsg>>>;

/// The router's published answer to "who is the primary?" when it needs no decision: under
/// `failover`, the highest-priority provider when it is healthy (not half-open, which would
/// take a probe slot). `None` sends requests through the router. Requests read it without a
/// message; the router republishes it after every change of its table.
pub(crate) type FastPrimary = Arc<watch::Sender<Option<Target>>>;

/// A provider picked for an attempt, with the actor its outcome goes to.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) provider: Provider,
    pub(crate) actor: ActorRef<ProviderMsg>,
    pub(crate) standing: Arc<Standing>,
}

/// A row of the routing table, as shown by [`RouterHandle::snapshot`].
#[derive(Clone, Debug, Serialize)]
pub struct ProviderSnapshot {
    /// The provider's name.
    pub name: String,
    /// Lower is tried first by `failover`.
    pub priority: u32,
    /// Share under `weighted_round_robin`.
    pub weight: u32,
    /// The state routing acts on.
    pub state: HealthState,
    /// Half-open probes in flight.
    pub probes_in_flight: u32,
    /// Health details and counters; `None` when the provider's actor is failed or unreachable.
    pub status: Option<ProviderStatus>,
}

/// Messages of the router actor.
pub(crate) enum RouterMsg {
    /// The strategy's pick among providers in rotation; admits nothing.
    Select {
        reply: RpcReplyPort<Result<Provider, RouteError>>,
    },
    /// The primary of a new request; a half-open pick takes a probe slot.
    PlanPrimary {
        reply: RpcReplyPort<Result<Target, RouteError>>,
    },
    /// Every provider in rotation now (but `exclude`), by priority, for a failover race;
    /// half-open ones take a probe slot.
    PlanRace {
        exclude: Option<ProviderId>,
        reply: RpcReplyPort<Vec<Target>>,
    },
    /// A provider's health changed.
    HealthChanged { id: ProviderId, state: HealthState },
    /// A half-open provider's probe ended without deciding anything.
    ProbeReleased { id: ProviderId },
    /// The supervisor restarted a provider actor.
    ProviderRestarted {
        id: ProviderId,
        actor: ActorRef<ProviderMsg>,
    },
    /// The supervisor gave up on a provider actor.
    ProviderFailed { id: ProviderId },
    /// Provider actor of a name, to enable or disable it.
    FindProvider {
        name: String,
        reply: RpcReplyPort<Option<ActorRef<ProviderMsg>>>,
    },
    /// The routing table.
    GetTable {
        reply: RpcReplyPort<Vec<(ProviderSnapshot, Option<ActorRef<ProviderMsg>>)>>,
    },
    /// Shutdown began: plan nothing more.
    Close { reply: RpcReplyPort<()> },
    /// Panics, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    Crash,
}

/// One provider as the router starts with it.
#[derive(Clone)]
pub(crate) struct Seat {
    pub(crate) provider: Provider,
    pub(crate) standing: Arc<Standing>,
    pub(crate) priority: u32,
    pub(crate) weight: u32,
    pub(crate) actor: Option<ActorRef<ProviderMsg>>,
}

#[derive(Clone)]
pub(crate) struct RouterArgs {
    pub(crate) seats: Vec<Seat>,
    pub(crate) strategy: StrategyKind,
    pub(crate) seed: u64,
    pub(crate) max_probes: u32,
    pub(crate) fast_primary: FastPrimary,
}

struct Entry {
    seat: Seat,
    state: HealthState,
    probes: u32,
}

pub(crate) struct RouterState {
    entries: Vec<Entry>,
    strategy: Strategy,
    max_probes: u32,
    closed: bool,
    candidates: Vec<Candidate>,
    fast_primary: FastPrimary,
}

pub(crate) struct RouterActor;

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RouterArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut entries = Vec::with_capacity(args.seats.len());
        for seat in args.seats {
            // On a restart the providers keep their health; read it rather than assume.
            let state = match &seat.actor {
                None => HealthState::Failed,
                Some(actor) => match actor
                    .call(|reply| ProviderMsg::GetStatus { reply }, None)
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(status)) => status.state,
                    _ => HealthState::Healthy,
                },
            };
            entries.push(Entry {
                seat,
                state,
                probes: 0,
            });
        }
        let state = RouterState {
            candidates: Vec::with_capacity(entries.len()),
            entries,
            strategy: Strategy::new(args.strategy, args.seed),
            max_probes: args.max_probes,
            closed: false,
            fast_primary: args.fast_primary,
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
            RouterMsg::Select { reply } => {
                let picked = state.pick().map(|i| state.entries[i].seat.provider.clone());
                let _ = reply.send(picked);
            }
            RouterMsg::PlanPrimary { reply } => {
                let planned = state
                    .pick()
                    .and_then(|i| state.admit(i).ok_or(RouteError::AllUnhealthy));
                let _ = reply.send(planned);
            }
            RouterMsg::PlanRace { exclude, reply } => {
                let _ = reply.send(state.plan_race(exclude));
            }
            RouterMsg::HealthChanged { id, state: health } => {
                if let Some(entry) = state.entries.get_mut(id.index()) {
                    if entry.state != HealthState::Failed {
                        entry.state = health;
                        entry.probes = 0;
                    }
                }
                state.publish();
            }
            RouterMsg::ProbeReleased { id } => {
                if let Some(entry) = state.entries.get_mut(id.index()) {
                    entry.probes = entry.probes.saturating_sub(1);
                }
            }
            RouterMsg::ProviderRestarted { id, actor } => {
                if let Some(entry) = state.entries.get_mut(id.index()) {
                    entry.seat.actor = Some(actor);
                    entry.state = HealthState::Healthy;
                    entry.probes = 0;
                }
                state.publish();
            }
            RouterMsg::ProviderFailed { id } => {
                if let Some(entry) = state.entries.get_mut(id.index()) {
                    entry.seat.actor = None;
                    entry.state = HealthState::Failed;
                }
                state.publish();
            }
            RouterMsg::FindProvider { name, reply } => {
                let found = state
                    .entries
                    .iter()
                    .find(|e| e.seat.provider.name() == name);
                let _ = reply.send(found.and_then(|e| e.seat.actor.clone()));
            }
            RouterMsg::GetTable { reply } => {
                let _ = reply.send(state.table());
            }
            RouterMsg::Close { reply } => {
                state.closed = true;
                state.publish();
                let _ = reply.send(());
            }
            #[cfg(any(test, feature = "test-util"))]
            RouterMsg::Crash => panic!("router crashed on request"),
        }
        Ok(())
    }
}

impl RouterState {
    /// Republishes the primary requests may take without asking (see [`FastPrimary`]).
    fn publish(&self) {
        let fast = if self.closed || self.strategy.kind() != StrategyKind::Failover {
            None
        } else {
            self.entries
                .iter()
                .filter(|entry| self.available(entry))
                .min_by_key(|entry| entry.seat.priority)
                .filter(|entry| entry.state == HealthState::Healthy)
                .and_then(|entry| {
                    Some(Target {
                        provider: entry.seat.provider.clone(),
                        actor: entry.seat.actor.clone()?,
                        standing: entry.seat.standing.clone(),
                    })
                })
        };
        self.fast_primary.send_replace(fast);
    }

    fn available(&self, entry: &Entry) -> bool {
        entry.seat.actor.is_some()
            && match entry.state {
                HealthState::Healthy => true,
                HealthState::HalfOpen => entry.probes < self.max_probes,
                _ => false,
            }
    }

    /// Index of the strategy's pick among providers in rotation.
    fn pick(&mut self) -> Result<usize, RouteError> {
        if self.closed {
            return Err(RouteError::Stopped);
        }
        if self.entries.is_empty() {
            return Err(RouteError::NoProviders);
        }
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(
            self.entries
                .iter()
                .filter(|entry| self.available(entry))
                .map(|entry| Candidate {
                    id: entry.seat.provider.id(),
                    priority: entry.seat.priority,
                    weight: entry.seat.weight,
                }),
        );
        let picked = self.strategy.pick(&candidates);
        self.candidates = candidates;
        picked
            .map(ProviderId::index)
            .ok_or(RouteError::AllUnhealthy)
    }

    /// Hands out entry `i` for an attempt, taking a probe slot when it is half-open.
    fn admit(&mut self, i: usize) -> Option<Target> {
        let entry = &mut self.entries[i];
        let actor = entry.seat.actor.clone()?;
        if entry.state == HealthState::HalfOpen {
            entry.probes += 1;
        }
        Some(Target {
            provider: entry.seat.provider.clone(),
            actor,
            standing: entry.seat.standing.clone(),
        })
    }

    fn plan_race(&mut self, exclude: Option<ProviderId>) -> Vec<Target> {
        if self.closed {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| Some(ProviderId(i)) != exclude && self.available(&self.entries[i]))
            .collect();
        order.sort_by_key(|&i| self.entries[i].seat.priority);
        order.into_iter().filter_map(|i| self.admit(i)).collect()
    }

    fn table(&self) -> Vec<(ProviderSnapshot, Option<ActorRef<ProviderMsg>>)> {
        self.entries
            .iter()
            .map(|entry| {
                let row = ProviderSnapshot {
                    name: entry.seat.provider.name().to_owned(),
                    priority: entry.seat.priority,
                    weight: entry.seat.weight,
                    state: entry.state,
                    probes_in_flight: entry.probes,
                    status: None,
                };
                (row, entry.seat.actor.clone())
            })
            .collect()
    }
}
