//! The ledger: one task owns every provider's traffic figures (requests answered, failovers,
//! windows of recent latencies) and the health gauges. Handlers feed it through a bounded
//! channel without waiting (a full channel drops the sample, never the request); `/status` asks
//! it for the figures. It also keeps the health gauges in step with the runtime's events and
//! runs the metrics upkeep.

use std::collections::HashMap;
use std::time::Duration;

use relayrace_actors::{EventsError, HealthEvents, RouterHandle};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::event::millis;
use super::metrics::Metrics;
use super::samples::Samples;
use crate::upstream::RelayUpstream;

/// Samples kept per provider and series.
const WINDOW: usize = 1024;
/// Messages the ledger may have waiting before new samples are dropped.
const BACKLOG: usize = 4096;
/// How often histogram samples are drained into buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// One provider's traffic, as `/status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Requests this provider answered.
    pub requests: u64,
    /// Requests where this provider was the primary, failed, and the request failed over.
    pub failovers: u64,
    /// Median time of whole successful requests it answered (streams to their end).
    pub latency_p50_ms: Option<u64>,
    /// 99th percentile of the same.
    pub latency_p99_ms: Option<u64>,
    /// Median time from its winning attempt's start to the commit point (first event).
    pub first_event_p50_ms: Option<u64>,
    /// 99th percentile of the same.
    pub first_event_p99_ms: Option<u64>,
}

/// Messages of the ledger task.
pub(crate) enum LedgerMsg {
    /// `provider` answered a request; `total` when it ended well, `first_event` when it routed
    /// well.
    Answered {
        provider: String,
        total: Option<Duration>,
        first_event: Option<Duration>,
    },
    /// A request whose primary was `primary` failed over.
    FailedOver { primary: String },
    /// Every provider's traffic so far.
    GetTraffic {
        reply: oneshot::Sender<HashMap<String, Traffic>>,
    },
}

/// The sending side of the ledger.
#[derive(Clone, Debug)]
pub(crate) struct LedgerHandle(mpsc::Sender<LedgerMsg>);

impl LedgerHandle {
    /// Starts the ledger task; it ends when the last handle drops.
    pub(crate) fn start(router: RouterHandle<RelayUpstream>, metrics: Metrics) -> Self {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tokio::spawn(run(receiver, router, metrics));
        LedgerHandle(sender)
    }

    /// Records without waiting; a sample that finds the ledger behind is dropped.
    pub(crate) fn tell(&self, message: LedgerMsg) {
        let _ = self.0.try_send(message);
    }

    /// Every provider's traffic; empty when the ledger cannot answer.
    pub(crate) async fn traffic(&self) -> HashMap<String, Traffic> {
        let (reply, answer) = oneshot::channel();
        if self.0.send(LedgerMsg::GetTraffic { reply }).await.is_err() {
            return HashMap::new();
        }
        answer.await.unwrap_or_default()
    }
}

/// One provider's figures.
struct Book {
    requests: u64,
    failovers: u64,
    latency: Samples,
    first_event: Samples,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            requests: 0,
            failovers: 0,
            latency: Samples::new(WINDOW),
            first_event: Samples::new(WINDOW),
        }
    }
}

impl Book {
    fn traffic(&self) -> Traffic {
        let ms = |d: Option<Duration>| d.map(millis);
        let [latency_p50, latency_p99] = self.latency.percentiles([0.5, 0.99]);
        let [first_p50, first_p99] = self.first_event.percentiles([0.5, 0.99]);
        Traffic {
            requests: self.requests,
            failovers: self.failovers,
            latency_p50_ms: ms(latency_p50),
            latency_p99_ms: ms(latency_p99),
            first_event_p50_ms: ms(first_p50),
            first_event_p99_ms: ms(first_p99),
        }
    }
}

/// Every provider's book, by name.
#[derive(Default)]
struct Ledger(HashMap<String, Book>);

impl Ledger {
    fn apply(&mut self, message: LedgerMsg) {
        match message {
            LedgerMsg::Answered {
                provider,
                total,
                first_event,
            } => {
                let book = self.0.entry(provider).or_default();
                book.requests += 1;
                total.into_iter().for_each(|d| book.latency.record(d));
                first_event
                    .into_iter()
                    .for_each(|d| book.first_event.record(d));
            }
            LedgerMsg::FailedOver { primary } => self.0.entry(primary).or_default().failovers += 1,
            LedgerMsg::GetTraffic { reply } => {
                let traffic = self.0.iter().map(|(k, b)| (k.clone(), b.traffic()));
                let _ = reply.send(traffic.collect());
            }
        }
    }
}

async fn run(
    mut messages: mpsc::Receiver<LedgerMsg>,
    router: RouterHandle<RelayUpstream>,
    metrics: Metrics,
) {
    let mut ledger = Ledger::default();
    let mut health = Some(router.subscribe());
    resync(&router, &metrics).await;
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => ledger.apply(message),
                None => break,
            },
            event = next_health(&mut health) => match event {
                Ok(event) => metrics.health_changed(event.provider.name(), event.from, event.to),
                Err(EventsError::Lagged { .. }) => resync(&router, &metrics).await,
                Err(EventsError::Closed) => health = None,
            },
            _ = upkeep.tick() => metrics.upkeep(),
        }
    }
}

async fn next_health(
    events: &mut Option<HealthEvents>,
) -> Result<relayrace_actors::HealthEvent, EventsError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Sets every provider's health gauge from the runtime's table.
async fn resync(router: &RouterHandle<RelayUpstream>, metrics: &Metrics) {
    if let Ok(rows) = router.snapshot().await {
        for row in rows {
            metrics.health_state(&row.name, row.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_counts_and_keeps_percentiles_per_provider() {
        let mut ledger = Ledger::default();
        for ms in [10, 20, 30] {
            ledger.apply(LedgerMsg::Answered {
                provider: "a".into(),
                total: Some(Duration::from_millis(ms * 10)),
                first_event: Some(Duration::from_millis(ms)),
            });
        }
        ledger.apply(LedgerMsg::Answered {
            provider: "a".into(),
            total: None,
            first_event: None,
        });
        ledger.apply(LedgerMsg::FailedOver {
            primary: "b".into(),
        });
        let (reply, mut answer) = oneshot::channel();
        ledger.apply(LedgerMsg::GetTraffic { reply });
        let traffic = answer.try_recv().unwrap();
        assert_eq!(
            traffic["a"],
            Traffic {
                requests: 4,
                failovers: 0,
                latency_p50_ms: Some(200),
                latency_p99_ms: Some(300),
                first_event_p50_ms: Some(20),
                first_event_p99_ms: Some(30),
            }
        );
        assert_eq!(
            traffic["b"],
            Traffic {
                failovers: 1,
                ..Traffic::default()
            }
        );
    }
}
