//! Health events and the subscription API.
//!
//! Events go through a bounded broadcast channel: a subscriber never blocks the runtime, and one
//! that falls more than the channel's capacity behind is told how many events it missed (then
//! resyncs from [`RouterHandle::snapshot`](crate::RouterHandle::snapshot)). The router's own
//! view never depends on any subscriber.

use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::state::HealthState;
use crate::upstream::Provider;

/// A provider changed health state.
#[derive(Clone, Debug)]
pub struct HealthEvent {
    /// Which provider.
    pub provider: Provider,
    /// State before.
    pub from: HealthState,
    /// State after.
    pub to: HealthState,
    /// Why, in words.
    pub reason: String,
    /// Wall-clock time of the change.
    pub at: SystemTime,
}

/// Why [`HealthEvents::recv`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// The subscriber fell behind; this many events were dropped for it. Receiving continues
    /// with the oldest event still held.
    #[error("missed {missed} health events")]
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
    /// The runtime shut down.
    #[error("the runtime is shut down")]
    Closed,
}

/// A subscription to health events.
#[derive(Debug)]
pub struct HealthEvents(broadcast::Receiver<HealthEvent>);

impl HealthEvents {
    /// The next event, in order of occurrence.
    pub async fn recv(&mut self) -> Result<HealthEvent, EventsError> {
        self.0.recv().await.map_err(|error| match error {
            broadcast::error::RecvError::Lagged(missed) => EventsError::Lagged { missed },
            broadcast::error::RecvError::Closed => EventsError::Closed,
        })
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Result<HealthEvent, EventsError>> {
        match self.0.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(Err(EventsError::Lagged { missed }))
            }
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(EventsError::Closed)),
        }
    }
}

/// The sending side, shared by every actor that reports transitions.
#[derive(Clone, Debug)]
pub(crate) struct EventBus(broadcast::Sender<HealthEvent>);

impl EventBus {
    pub(crate) fn new(capacity: usize) -> Self {
        EventBus(broadcast::channel(capacity.max(1)).0)
    }

    pub(crate) fn subscribe(&self) -> HealthEvents {
        HealthEvents(self.0.subscribe())
    }

    pub(crate) fn publish(&self, event: HealthEvent) {
        tracing::info!(
            provider = event.provider.name(),
            health = event.to.name(),
            from = event.from.name(),
            reason = %event.reason,
            "provider health changed"
        );
        // No subscriber is not an error: the router never depends on one.
        let _ = self.0.send(event);
    }
}
