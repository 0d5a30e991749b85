//! Watching the relay work: what the people who run it see.
//!
//! ```text
//!   request handler ──routed/finished──▶ Observer ──▶ Metrics (counters, gauges, histograms)
//!        (never waits)                      │      ├─▶ failover broadcast ──▶ Feed (one per watcher)
//!                                           │      └─▶ Ledger (atomics) ◀── /status reads
//!   runtime health events ─────────────────────────────▶ Feed, upkeep task (health gauges)
//! ```
//!
//! Nothing on the request path awaits a watcher or a lock: metrics are atomics in a recorder
//! this relay owns, failovers go to a bounded broadcast (a slow watcher is told what it missed),
//! and per-provider latency windows are atomic rings in the ledger.

pub mod event;
mod feed;
mod ledger;
pub mod metrics;
mod outcome;
mod request_outcome;
mod samples;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relayrace_actors::{AttemptError, RouteError, RouterHandle};
use tokio::sync::{broadcast, oneshot, watch};

pub use event::RelayEvent;
pub use feed::Feed;
pub use ledger::Traffic;
pub use metrics::Metrics;

pub(crate) use metrics::InFlight;
pub(crate) use outcome::RouteSummary;
pub(crate) use request_outcome::RequestOutcome;

use event::{AttemptSummary, Failover, millis, rfc3339};
use ledger::Ledger;

use crate::upstream::{RelayUpstream, StreamStats};

/// The observers of one relay. Cheap to clone.
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

struct Inner {
    router: RouterHandle<RelayUpstream>,
    metrics: Metrics,
    failovers: broadcast::Sender<Failover>,
    ledger: Ledger,
    /// Ends the upkeep task when the observers drop.
    _upkeep: oneshot::Sender<()>,
    closing: watch::Sender<bool>,
    models: HashSet<String>,
}

/// A request as its observers know it.
pub(crate) struct RequestFacts<'a> {
    /// Its id.
    pub(crate) request_id: &'a str,
    /// Its model.
    pub(crate) model: &'a str,
}

impl Observer {
    /// Observers over `router` and its `providers`; a watcher may fall `capacity` failover
    /// events behind before it misses some. `models` are the model names metrics label as
    /// themselves (any other is `other`, so clients cannot grow the label set). Spawns the
    /// upkeep task (call within a Tokio runtime). `key_vars` name each provider's key
    /// variable, for the log line of a provider that refuses its key.
    pub fn start(
        router: RouterHandle<RelayUpstream>,
        providers: &[String],
        capacity: usize,
        models: HashSet<String>,
        key_vars: BTreeMap<String, String>,
    ) -> Self {
        let metrics = Metrics::new(providers, &models);
        let upkeep = ledger::start_upkeep(router.clone(), metrics.clone(), key_vars);
        Observer {
            inner: Arc::new(Inner {
                router,
                metrics,
                failovers: broadcast::channel(capacity.max(1)).0,
                ledger: Ledger::new(providers.iter().cloned()),
                _upkeep: upkeep,
                closing: watch::Sender::new(false),
                models,
            }),
        }
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A new watcher: a snapshot of every provider, then events as they come.
    pub async fn watch(&self) -> Result<Feed, RouteError> {
        let inner = &self.inner;
        Feed::start(
            inner.router.clone(),
            inner.failovers.subscribe(),
            inner.closing.subscribe(),
            inner.metrics.clone(),
        )
        .await
    }

    /// Ends every watcher's feed (the relay is shutting down: their streams must not hold it).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Resolves once [`Observer::close`] is called.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closing = self.inner.closing.subscribe();
        async move {
            // A dropped sender means the observers are gone: closed too.
            let _ = closing.wait_for(|closing| *closing).await;
        }
    }

    /// Every provider's traffic, by name.
    pub fn traffic(&self) -> HashMap<String, Traffic> {
        self.inner.ledger.traffic()
    }

    /// A request entered the relay; it counts as in flight until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.inner.metrics.in_flight()
    }

    /// A route ended after `elapsed`: records its attempts, failover and race, and publishes a
    /// failover event when the primary failed over. Never waits.
    pub(crate) fn routed(
        &self,
        request: &RequestFacts<'_>,
        route: &RouteSummary<'_>,
        elapsed: Duration,
    ) {
        let overhead = elapsed.saturating_sub(route.upstream_time());
        self.inner.metrics.routed(route, overhead);
        let not_serving = self.not_serving(request, route);
        let (Some(primary), Some(cause)) = (route.primary(), &route.failover) else {
            return;
        };
        self.inner.ledger.failed_over(primary);
        let failover = Failover {
            request_id: request.request_id.to_owned(),
            model: request.model.to_owned(),
            primary: primary.to_owned(),
            cause: cause.to_string(),
            winner: route.winner.map(str::to_owned),
            attempts: route.attempts.iter().map(AttemptSummary::from).collect(),
            not_serving,
            duration_ms: millis(elapsed),
            at: rfc3339(SystemTime::now()),
        };
        // No watcher is not an error.
        let _ = self.inner.failovers.send(failover);
    }

    /// The providers of `route` that said they do not serve the request's model although
    /// their configuration says they do: each is logged and counted, so the operator can fix
    /// its `models` list.
    fn not_serving(&self, request: &RequestFacts<'_>, route: &RouteSummary<'_>) -> Vec<String> {
        let mut providers = Vec::new();
        for attempt in route.attempts {
            if let Some(AttemptError::NotServed { .. }) = attempt.outcome.error() {
                let provider = attempt.provider.name();
                tracing::warn!(
                    provider,
                    model = request.model,
                    "provider does not serve a model its configuration lists; fix its models \
                     (or model_mapping)"
                );
                self.inner
                    .metrics
                    .model_not_served(provider, self.model_label(request.model));
                providers.push(provider.to_owned());
            }
        }
        providers
    }

    /// The model as metrics label it: itself when configured, `other` otherwise (clients
    /// cannot grow the label set), `none` when absent.
    fn model_label<'m>(&self, model: &'m str) -> &'m str {
        match model {
            "" => "none",
            known if self.inner.models.contains(known) => known,
            _ => "other",
        }
    }

    /// A request ended (see [`Answer`]). Never waits.
    pub(crate) fn finished(&self, answer: Answer<'_>) {
        let total = (answer.outcome == RequestOutcome::Ok).then_some(answer.total);
        let model = self.model_label(answer.model);
        self.inner.metrics.request_finished(
            answer.provider.unwrap_or("none"),
            model,
            answer.outcome,
            total,
        );
        if let Some(provider) = answer.provider.filter(|_| answer.outcome.answered()) {
            self.inner
                .ledger
                .answered(provider, total, answer.first_event);
            if answer.stream != StreamStats::default() {
                self.inner.metrics.stream_repaired(provider, answer.stream);
            }
        }
    }
}

/// How a request ended, for [`Observer::finished`].
pub(crate) struct Answer<'a> {
    /// The provider that answered (for an error, the last one tried), if any.
    pub(crate) provider: Option<&'a str>,
    /// The request's model; empty when the request was rejected before it was read.
    pub(crate) model: &'a str,
    /// How it ended.
    pub(crate) outcome: RequestOutcome,
    /// Time in the relay.
    pub(crate) total: Duration,
    /// The winner's time to its commit point.
    pub(crate) first_event: Option<Duration>,
    /// What its stream dropped or appended (nothing for an answer that was not a stream).
    pub(crate) stream: StreamStats,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(..)")
    }
}
