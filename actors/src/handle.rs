//! The public face of a running runtime: `route` (the path itself is [`crate::route`]), and the
//! queries and admin calls: select, snapshot, enable/disable, late failures, events. Hides every
//! actor message.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::events::{EventBus, HealthEvents};
use crate::hedge::{BudgetStatus, ClassDelay, HedgeCounts};
use crate::provider::{ProviderMsg, ProviderStatus, Reported, Seat, send_report};
use crate::report::{RouteError, Routed};
use crate::route::RoutePath;
use crate::router::table::Table;
use crate::router::{self, RouterMsg, RouterSlot, call};
use crate::state::HealthState;
use crate::upstream::{AttemptError, Provider, Upstream};

/// A cloneable handle to a running runtime.
pub struct RouterHandle<U: Upstream> {
    shared: Arc<Shared<U>>,
}

pub(crate) struct Shared<U: Upstream> {
    pub(crate) path: RoutePath<U>,
    pub(crate) table: watch::Receiver<Arc<Table>>,
    pub(crate) router: RouterSlot,
    pub(crate) events: EventBus,
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

/// Hedging as it stands, as shown by [`RouterHandle::hedging`].
#[derive(Clone, Debug, Serialize)]
pub struct HedgeStatus {
    /// Whether hedging is on (`routing.hedge.enabled`; a provider may turn it off for itself).
    pub enabled: bool,
    /// The budget over its sliding window.
    pub budget: BudgetStatus,
    /// Hedged requests since the start, by how they ended.
    pub counts: HedgeCounts,
    /// Each provider's delays, in configured order.
    pub providers: Vec<ProviderHedgeStatus>,
}

/// One provider's hedge delays.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderHedgeStatus {
    /// The provider's name.
    pub name: String,
    /// Whether a slow primary on it is hedged.
    pub enabled: bool,
    /// Its delay for each class of request.
    pub delays: Vec<ClassDelay>,
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
            .field("failover", &self.shared.path.failover)
            .field("race_timeout", &self.shared.path.race_timeout)
            .finish_non_exhaustive()
    }
}

impl<U: Upstream> RouterHandle<U> {
    pub(crate) fn new(shared: Shared<U>) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Routes a request: the strategy's primary is tried; if it fails with a failover trigger,
    /// the providers in rotation race in parallel and the first success wins.
    pub async fn route(
        &self,
        request: impl Into<Arc<U::Request>>,
    ) -> Result<Routed<U::Response>, RouteError> {
        self.shared.path.route(request.into()).await
    }

    /// The strategy's pick among providers in rotation, without performing anything.
    pub async fn select(&self) -> Result<Provider, RouteError> {
        self.select_for(None).await
    }

    /// The strategy's pick among the providers in rotation that serve `model`, without
    /// performing anything (as a request for `model` would pick its primary; it advances that
    /// model's rotation).
    pub async fn select_model(&self, model: &str) -> Result<Provider, RouteError> {
        self.select_for(Some(model)).await
    }

    async fn select_for(&self, model: Option<&str>) -> Result<Provider, RouteError> {
        let table = self.table();
        if table.by_priority_alone() {
            table.check_open()?;
            let order = table.eligible(model)?;
            let seat = table
                .first_in_rotation(&order)
                .ok_or(RouteError::AllUnhealthy)?;
            return Ok(seat.provider.clone());
        }
        let model: Option<Arc<str>> = model.map(Into::into);
        router::ask(&self.shared.router, |reply| RouterMsg::Select {
            model: model.clone(),
            reply,
        })
        .await?
    }

    /// Each provider with priority, weight, health state and counters, in configured order.
    pub async fn snapshot(&self) -> Result<Vec<ProviderSnapshot>, RouteError> {
        let table = self.table();
        let mut rows = Vec::with_capacity(table.seats().len());
        for seat in table.seats() {
            let view = seat.view.borrow().clone();
            let status = match &view.actor {
                Some(actor) => call(actor, |reply| ProviderMsg::GetStatus { reply })
                    .await
                    .ok(),
                None => None,
            };
            rows.push(ProviderSnapshot {
                name: seat.provider.name().to_owned(),
                priority: seat.priority,
                weight: seat.weight,
                state: view.state,
                probes_in_flight: view.probes_in_flight(),
                status,
            });
        }
        Ok(rows)
    }

    /// Hedging's budget, counts and every provider's learned delays (read in place, no
    /// message).
    pub fn hedging(&self) -> HedgeStatus {
        let hedging = &self.shared.path.hedging;
        let providers = self
            .table()
            .seats()
            .iter()
            .map(|seat| ProviderHedgeStatus {
                name: seat.provider.name().to_owned(),
                enabled: seat.hedge.config.enabled,
                delays: seat.hedge.delays(),
            })
            .collect();
        HedgeStatus {
            enabled: hedging.enabled,
            budget: hedging.budget.status(),
            counts: hedging.counters.counts(),
            providers,
        }
    }

    /// Takes a provider out of routing (`false`) or puts it back (`true`) without a restart.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), RouteError> {
        let actor = self.seat(name, Seat::actor)?;
        call(&actor, |reply| ProviderMsg::SetEnabled { enabled, reply }).await
    }

    /// Records a failure of `provider` found after its response was delivered (a stream cut
    /// or stalled after the commit point), so its health sees it.
    pub async fn report_failure(
        &self,
        provider: &Provider,
        error: &AttemptError,
    ) -> Result<(), RouteError> {
        let (actor, standing) = self.seat(provider.name(), |seat| {
            Some((seat.actor()?, seat.standing.clone()))
        })?;
        let verdict = self.shared.path.triggers.judge(error);
        send_report(
            &actor,
            &standing,
            Reported::failed(&verdict, error),
            Duration::ZERO,
        );
        Ok(())
    }

    /// A new subscription to health events.
    pub fn subscribe(&self) -> HealthEvents {
        self.shared.events.subscribe()
    }

    /// Race and attempt actors alive right now (zero when no race is running): for tests, and
    /// for an embedder's gauge (a count that only grows is a leak).
    pub fn race_actors_alive(&self) -> usize {
        self.shared.path.live.count()
    }

    /// Waits until no race or attempt actor is alive.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn races_finished(&self) {
        self.shared.path.live.none_alive().await;
    }

    /// Panics a provider actor, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn crash_provider(&self, name: &str) -> Result<(), RouteError> {
        self.seat(name, Seat::actor)?
            .cast(ProviderMsg::Crash)
            .map_err(|_| RouteError::Stopped)
    }

    /// Panics the router actor and waits for the supervisor to start its successor;
    /// `Err(Stopped)` when none took over within a second.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn crash_router(&self) -> Result<(), RouteError> {
        let mut slot = self.shared.router.clone();
        let router = slot
            .borrow_and_update()
            .clone()
            .ok_or(RouteError::Stopped)?;
        router
            .cast(RouterMsg::Crash)
            .map_err(|_| RouteError::Stopped)?;
        let successor = slot.wait_for(|next| {
            next.as_ref()
                .is_some_and(|next| next.get_id() != router.get_id())
        });
        match tokio::time::timeout(Duration::from_secs(1), successor).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RouteError::Stopped),
        }
    }

    pub(crate) fn router_ref(&self) -> Option<ractor::ActorRef<RouterMsg>> {
        self.shared.router.borrow().clone()
    }

    fn table(&self) -> Arc<Table> {
        self.shared.table.borrow().clone()
    }

    /// What `read` takes from the seat of the provider named `name`; none for a provider that
    /// is not configured, or whose actor the supervisor gave up on.
    fn seat<T>(&self, name: &str, read: impl FnOnce(&Seat) -> Option<T>) -> Result<T, RouteError> {
        self.table()
            .find(name)
            .and_then(read)
            .ok_or_else(|| RouteError::UnknownProvider(name.to_owned()))
    }
}
