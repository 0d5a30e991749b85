//! The routing table: every provider's seat, in configured order and by priority. The router
//! owns it and publishes it whole (a request reads one table or the next, never half of each);
//! what each provider's health is, the table reads from the provider's own view.

use std::borrow::Cow;
use std::sync::Arc;

use tokio::sync::watch;

use super::eligibility::Eligibility;
use crate::config::StrategyKind;
use crate::provider::{Seat, Target};
use crate::report::RouteError;
use crate::state::HealthState;
use crate::upstream::ProviderId;

/// The table as published.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    seats: Arc<[Seat]>,
    /// Indices of `seats` by priority, ties in configured order.
    by_priority: Arc<[usize]>,
    /// Who serves which model, in which order.
    eligibility: Arc<Eligibility>,
    strategy: StrategyKind,
    closed: bool,
}

/// Where the router publishes its table; kept across restarts of the router.
pub(crate) type TableSender = Arc<watch::Sender<Arc<Table>>>;

impl Table {
    pub(crate) fn new(
        seats: Vec<Seat>,
        strategy: StrategyKind,
        eligibility: Arc<Eligibility>,
    ) -> Self {
        let mut by_priority: Vec<usize> = (0..seats.len()).collect();
        by_priority.sort_by_key(|&i| seats[i].priority);
        Table {
            seats: seats.into(),
            by_priority: by_priority.into(),
            eligibility,
            strategy,
            closed: false,
        }
    }

    /// This table, closed to new requests (shutdown began).
    pub(crate) fn closed(&self) -> Self {
        Table {
            closed: true,
            ..self.clone()
        }
    }

    /// Every seat, in configured order.
    pub(crate) fn seats(&self) -> &[Seat] {
        &self.seats
    }

    /// The seat of a provider named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&Seat> {
        self.seats.iter().find(|seat| seat.provider.name() == name)
    }

    /// Whether requests may be routed at all.
    pub(crate) fn check_open(&self) -> Result<(), RouteError> {
        if self.closed {
            Err(RouteError::Stopped)
        } else if self.seats.is_empty() {
            Err(RouteError::NoProviders)
        } else {
            Ok(())
        }
    }

    /// Whether the primary is the first provider in rotation by priority, with no strategy
    /// state: then requests pick it themselves, without a message to the router.
    pub(crate) fn by_priority_alone(&self) -> bool {
        self.strategy == StrategyKind::Failover
    }

    /// The providers eligible for a request for `model`, in the order they are tried (every
    /// provider by priority without a model). A model that no enabled provider serves is
    /// [`RouteError::ModelNotServed`], naming what the enabled providers serve.
    pub(crate) fn eligible(&self, model: Option<&str>) -> Result<Cow<'_, [usize]>, RouteError> {
        let order = self.eligibility.order(model, &self.by_priority);
        let Some(model) = model.filter(|_| self.eligibility.restricts()) else {
            // Every provider serves every model: a request finds none in rotation, not none
            // that serves it.
            return Ok(order);
        };
        let enabled = |i: &usize| self.seats[*i].view.borrow().state != HealthState::Disabled;
        if order.iter().any(enabled) {
            return Ok(order);
        }
        Err(RouteError::ModelNotServed {
            model: model.to_owned(),
            served: self
                .eligibility
                .served_by((0..self.seats.len()).filter(enabled)),
        })
    }

    /// Whether provider `index` (in configured order) serves `model`.
    pub(crate) fn serves(&self, index: usize, model: &str) -> bool {
        self.eligibility.serves(index, model)
    }

    /// The first provider of `order` that is in rotation (admits nothing).
    pub(crate) fn first_in_rotation<'a>(&'a self, order: &[usize]) -> Option<&'a Seat> {
        self.in_order(order).find(|seat| seat.in_rotation())
    }

    /// Admits the first provider of `order` that admits an attempt.
    pub(crate) fn admit_first(&self, order: &[usize]) -> Option<Target> {
        self.in_order(order).find_map(Seat::admit)
    }

    /// Admits the first provider of `order` after (or before) `primary` that admits an
    /// attempt: a hedge.
    pub(crate) fn admit_next(&self, order: &[usize], primary: ProviderId) -> Option<Target> {
        self.in_order(order)
            .filter(|seat| seat.provider.id() != primary)
            .find_map(Seat::admit)
    }

    /// Admits every provider of `order` in rotation but those in `exclude`: the racers of a
    /// failover.
    pub(crate) fn admit_all(&self, order: &[usize], exclude: &[ProviderId]) -> Vec<Target> {
        self.in_order(order)
            .filter(|seat| !exclude.contains(&seat.provider.id()))
            .filter_map(Seat::admit)
            .collect()
    }

    fn in_order<'a, 'o>(&'a self, order: &'o [usize]) -> impl Iterator<Item = &'a Seat> + 'o
    where
        'a: 'o,
    {
        order.iter().filter_map(|&i| self.seats.get(i))
    }
}
