//! The ledger: every provider's traffic figures (requests answered, failovers, windows of recent
//! latencies) in atomics that request handlers update without waiting, allocating or waking
//! anyone, and that `/status` reads. A task beside it keeps the health gauges in step with the
//! runtime's events and runs the metrics upkeep.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use relayrace_actors::{EventsError, HealthEvents, HealthState, RouterHandle};
use serde::Serialize;
use tokio::sync::oneshot;

use super::event::millis;
use super::metrics::Metrics;
use super::samples::Samples;
use crate::upstream::RelayUpstream;

/// Samples kept per provider and series.
const WINDOW: usize = 1024;
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

/// One provider's figures.
struct Book {
    requests: AtomicU64,
    failovers: AtomicU64,
    latency: Samples,
    first_event: Samples,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            requests: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
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
            requests: self.requests.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
            latency_p50_ms: ms(latency_p50),
            latency_p99_ms: ms(latency_p99),
            first_event_p50_ms: ms(first_p50),
            first_event_p99_ms: ms(first_p99),
        }
    }
}

/// Every provider's book, by name; the set of providers is fixed when the relay starts.
pub(crate) struct Ledger(HashMap<String, Book>);

impl Ledger {
    /// An empty book for each of `providers`.
    pub(crate) fn new(providers: impl IntoIterator<Item = String>) -> Self {
        Ledger(
            providers
                .into_iter()
                .map(|p| (p, Book::default()))
                .collect(),
        )
    }

    /// `provider` answered a request; `total` when it ended well, `first_event` when it routed
    /// well.
    pub(crate) fn answered(
        &self,
        provider: &str,
        total: Option<Duration>,
        first_event: Option<Duration>,
    ) {
        if let Some(book) = self.0.get(provider) {
            book.requests.fetch_add(1, Ordering::Relaxed);
            total.into_iter().for_each(|d| book.latency.record(d));
            first_event
                .into_iter()
                .for_each(|d| book.first_event.record(d));
        }
    }

    /// A request whose primary was `primary` failed over.
    pub(crate) fn failed_over(&self, primary: &str) {
        if let Some(book) = self.0.get(primary) {
            book.failovers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every provider's traffic so far.
    pub(crate) fn traffic(&self) -> HashMap<String, Traffic> {
        self.0
            .iter()
            .map(|(name, book)| (name.clone(), book.traffic()))
            .collect()
    }
}

/// Starts the task that keeps the health gauges and runs the metrics upkeep; it ends when the
/// returned sender drops.
pub(crate) fn start_upkeep(
    router: RouterHandle<RelayUpstream>,
    metrics: Metrics,
    key_vars: BTreeMap<String, String>,
) -> oneshot::Sender<()> {
    let (alive, dropped) = oneshot::channel();
    tokio::spawn(upkeep(dropped, router, metrics, key_vars));
    alive
}

async fn upkeep(
    mut dropped: oneshot::Receiver<()>,
    router: RouterHandle<RelayUpstream>,
    metrics: Metrics,
    key_vars: BTreeMap<String, String>,
) {
    let mut health = Some(router.subscribe());
    resync(&router, &metrics).await;
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = &mut dropped => break,
            event = next_health(&mut health) => match event {
                Ok(event) => {
                    metrics.health_changed(event.provider.name(), event.from, event.to);
                    if event.to == HealthState::Rejected {
                        log_rejected(event.provider.name(), &key_vars);
                    }
                }
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

/// The one line that tells the operator which key to fix: the provider and its key variable,
/// never the key.
fn log_rejected(provider: &str, key_vars: &BTreeMap<String, String>) {
    match key_vars.get(provider) {
        Some(env_var) => tracing::warn!(
            provider,
            env_var = env_var.as_str(),
            "provider refused the relay's key or account; check the key in this variable \
             and the account's budget"
        ),
        None => tracing::warn!(
            provider,
            "provider refused the relay's credential or account (it has no api_key_env)"
        ),
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
        let ledger = Ledger::new(["a".to_owned(), "b".to_owned()]);
        for ms in [10, 20, 30] {
            let ms = Duration::from_millis(ms);
            ledger.answered("a", Some(ms * 10), Some(ms));
        }
        ledger.answered("a", None, None);
        ledger.failed_over("b");
        ledger.answered("unknown", None, None);
        let traffic = ledger.traffic();
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
        assert_eq!(traffic.len(), 2);
    }
}
