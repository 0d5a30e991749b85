//! The routing table: every provider's seat, in configured order and by priority. The router
//! owns it and publishes it whole (a request reads one table or the next, never half of each);
//! what each provider's health is, the table reads from the provider's own view.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::StrategyKind;
use crate::provider::{Seat, Target};
use crate::report::RouteError;
use crate::upstream::ProviderId;

/// The table as published.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    seats: Arc<[Seat]>,
    /// Indices of `seats` by priority, ties in configured order.
    by_priority: Arc<[usize]>,
    strategy: StrategyKind,
    closed: bool,
}

/// Where the router publishes its table; kept across restarts of the router.
pub(crate) type TableSender = Arc<watch::Sender<Arc<Table>>>;

impl Table {
    pub(crate) fn new(seats: Vec<Seat>, strategy: StrategyKind) -> Self {
        let mut by_priority: Vec<usize> = (0..seats.len()).collect();
        by_priority.sort_by_key(|&i| seats[i].priority);
        Table {
            seats: seats.into(),
            by_priority: by_priority.into(),
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

    /// The first provider by priority that is in rotation (admits nothing).
    pub(crate) fn first_in_rotation(&self) -> Option<&Seat> {
        self.in_priority_order().find(|seat| seat.in_rotation())
    }

    /// Admits the first provider by priority that admits an attempt.
    pub(crate) fn admit_first(&self) -> Option<Target> {
        self.in_priority_order().find_map(Seat::admit)
    }

    /// Admits every provider in rotation but `exclude`, by priority: the racers of a failover.
    pub(crate) fn admit_all(&self, exclude: Option<ProviderId>) -> Vec<Target> {
        self.in_priority_order()
            .filter(|seat| Some(seat.provider.id()) != exclude)
            .filter_map(Seat::admit)
            .collect()
    }

    fn in_priority_order(&self) -> impl Iterator<Item = &Seat> {
        self.by_priority.iter().map(|&i| &self.seats[i])
    }
}
