//! One watcher's feed: a snapshot first, then the runtime's health events and the relay's
//! failover outcomes as they happen. Both come through bounded broadcast channels, so nothing
//! ever waits for a watcher; one that falls behind gets a `lagged` event with the count it
//! missed (and, for health, a fresh snapshot). The feed ends when the relay shuts down.

use std::collections::VecDeque;

use futures_util::Stream;
use relayrace_actors::{EventsError, HealthEvents, RouteError, RouterHandle};
use tokio::sync::{broadcast, watch};

use super::event::{Failover, HealthChange, Lagged, RelayEvent, Snapshot};
use super::metrics::Metrics;
use crate::upstream::RelayUpstream;

/// A watcher's subscription.
pub struct Feed {
    router: RouterHandle<RelayUpstream>,
    health: HealthEvents,
    failovers: broadcast::Receiver<Failover>,
    closing: watch::Receiver<bool>,
    metrics: Metrics,
    ready: VecDeque<RelayEvent>,
    resync: bool,
}

impl Feed {
    /// Subscribes, then takes the snapshot (so no transition falls between the two).
    pub(crate) async fn start(
        router: RouterHandle<RelayUpstream>,
        failovers: broadcast::Receiver<Failover>,
        closing: watch::Receiver<bool>,
        metrics: Metrics,
    ) -> Result<Self, RouteError> {
        let health = router.subscribe();
        let snapshot = Snapshot::of(&router.snapshot().await?);
        Ok(Feed {
            router,
            health,
            failovers,
            closing,
            metrics,
            ready: VecDeque::from([RelayEvent::Snapshot(snapshot)]),
            resync: false,
        })
    }

    /// The next event; `None` once the relay is shutting down.
    pub async fn next(&mut self) -> Option<RelayEvent> {
        if let Some(event) = self.ready.pop_front() {
            return Some(event);
        }
        if std::mem::take(&mut self.resync) {
            if let Ok(rows) = self.router.snapshot().await {
                return Some(RelayEvent::Snapshot(Snapshot::of(&rows)));
            }
        }
        tokio::select! {
            biased;
            _ = self.closing.wait_for(|closing| *closing) => None,
            event = self.health.recv() => match event {
                Ok(event) => Some(RelayEvent::Health(HealthChange::from(&event))),
                Err(EventsError::Lagged { missed }) => {
                    self.resync = true;
                    Some(lagged(&self.metrics, "health", missed))
                }
                Err(EventsError::Closed) => None,
            },
            failover = self.failovers.recv() => match failover {
                Ok(failover) => Some(RelayEvent::Failover(failover)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some(lagged(&self.metrics, "failover", missed))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }

    /// The feed as a stream of events.
    pub fn into_stream(self) -> impl Stream<Item = RelayEvent> + Send + 'static {
        futures_util::stream::unfold(self, |mut feed| async move {
            let event = feed.next().await?;
            Some((event, feed))
        })
    }
}

/// Counts what a watcher missed, and tells it.
fn lagged(metrics: &Metrics, stream: &'static str, missed: u64) -> RelayEvent {
    metrics.watcher_missed(stream, missed);
    RelayEvent::Lagged(Lagged {
        stream: stream.to_owned(),
        missed,
    })
}
