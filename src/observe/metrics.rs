//! The relay's Prometheus metrics: every name and label in one place, recorded through the
//! `metrics` facade into a recorder this relay owns (never the process-global one, so two relays
//! in one process — tests — count apart), rendered by `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `relayrace_requests_total` | counter | `provider`, `model`, `outcome` |
//! | `relayrace_requests_in_flight` | gauge | |
//! | `relayrace_attempts_total` | counter | `provider`, `outcome` |
//! | `relayrace_attempt_failures_total` | counter | `provider`, `cause` |
//! | `relayrace_failovers_total` | counter | `provider` (the primary), `cause` |
//! | `relayrace_races_total` | counter | `result` |
//! | `relayrace_race_wins_total` | counter | `provider` |
//! | `relayrace_race_losers_cancelled_total` | counter | `provider` |
//! | `relayrace_provider_health` | gauge | `provider`, `state` |
//! | `relayrace_health_transitions_total` | counter | `provider`, `from`, `to` |
//! | `relayrace_time_to_first_event_seconds` | histogram | `provider` |
//! | `relayrace_request_duration_seconds` | histogram | `provider` |
//! | `relayrace_overhead_seconds` | histogram | |
//! | `relayrace_watcher_missed_events_total` | counter | `stream` |
//! | `relayrace_stream_dropped_events_total` | counter | `provider` |
//! | `relayrace_stream_repaired_endings_total` | counter | `provider` |
//! | `relayrace_model_not_served_total` | counter | `provider`, `model` |
//! | `relayrace_hedges_total` | counter | `outcome` (`started`, `won_by_original`, `won_by_hedge`, `failed`, `budget_spent`) |
//! | `relayrace_hedge_budget` | gauge | `value` (`requests`, `hedges`, `allowed`, `available` in the window) |
//! | `relayrace_hedge_delay_seconds` | gauge | `provider`, `class` |
//! | `relayrace_tokio_tasks` | gauge | |
//! | `relayrace_race_actors` | gauge | |

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusRecorder};
use relayrace_actors::{AttemptOutcome, AttemptRecord, HealthState, HedgeStatus};

use super::outcome::RouteSummary;
use super::request_outcome::RequestOutcome;
use crate::upstream::StreamStats;

const REQUESTS: &str = "relayrace_requests_total";
const IN_FLIGHT: &str = "relayrace_requests_in_flight";
const ATTEMPTS: &str = "relayrace_attempts_total";
const ATTEMPT_FAILURES: &str = "relayrace_attempt_failures_total";
const FAILOVERS: &str = "relayrace_failovers_total";
const RACES: &str = "relayrace_races_total";
const RACE_WINS: &str = "relayrace_race_wins_total";
const RACE_LOSERS: &str = "relayrace_race_losers_cancelled_total";
const HEALTH: &str = "relayrace_provider_health";
const TRANSITIONS: &str = "relayrace_health_transitions_total";
const FIRST_EVENT: &str = "relayrace_time_to_first_event_seconds";
const DURATION: &str = "relayrace_request_duration_seconds";
const OVERHEAD: &str = "relayrace_overhead_seconds";
const WATCHER_MISSED: &str = "relayrace_watcher_missed_events_total";
const DROPPED_EVENTS: &str = "relayrace_stream_dropped_events_total";
const REPAIRED_ENDINGS: &str = "relayrace_stream_repaired_endings_total";
const MODEL_NOT_SERVED: &str = "relayrace_model_not_served_total";
const HEDGES: &str = "relayrace_hedges_total";
const HEDGE_BUDGET: &str = "relayrace_hedge_budget";
const HEDGE_DELAY: &str = "relayrace_hedge_delay_seconds";
const TASKS: &str = "relayrace_tokio_tasks";
const RACE_ACTORS: &str = "relayrace_race_actors";

/// Every health state, for the one-hot `relayrace_provider_health` gauge.
const STATES: [HealthState; 7] = [
    HealthState::Healthy,
    HealthState::Unhealthy,
    HealthState::HalfOpen,
    HealthState::CoolingDown,
    HealthState::Rejected,
    HealthState::Disabled,
    HealthState::Failed,
];

/// Upstream latencies, 5 ms to 10 min.
const LATENCY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The relay's own time, 50 µs to 1 s.
const OVERHEAD_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];

/// Model labels besides the known model names.
const OTHER_MODELS: [&str; 2] = ["other", "none"];

/// The relay's metrics. Cheap to clone; recording never blocks on anything but atomics.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    hot: Arc<Hot>,
}

/// Handles of the series every answered request touches, registered on first use and kept, so
/// the request path neither allocates labels nor looks series up. Rarer series (failures,
/// failovers, races) go through the registry.
struct Hot {
    in_flight: Gauge,
    overhead: Histogram,
    providers: HashMap<String, ProviderSeries>,
    /// Each model label's index into [`ProviderSeries::requests_ok`].
    models: HashMap<String, usize>,
}

/// One provider's hot series.
struct ProviderSeries {
    attempts_ok: OnceLock<Counter>,
    first_event: OnceLock<Histogram>,
    duration: OnceLock<Histogram>,
    /// `relayrace_requests_total{outcome="ok"}`, by model label.
    requests_ok: Box<[OnceLock<Counter>]>,
}

impl Metrics {
    /// A fresh set of metrics, every one described, for `providers` and the `models` labelled
    /// as themselves.
    pub fn new(providers: &[String], models: &HashSet<String>) -> Self {
        let builder = with_buckets().unwrap_or_else(|error| {
            tracing::warn!(error = %error, "metrics: histograms fall back to summaries");
            PrometheusBuilder::new()
        });
        let recorder = Arc::new(builder.build_recorder());
        let hot = metrics::with_local_recorder(recorder.as_ref(), || {
            describe();
            Hot::new(providers, models)
        });
        Metrics {
            recorder,
            hot: Arc::new(hot),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Drains histogram samples into their buckets; run it now and then so memory stays flat
    /// when nobody scrapes.
    pub(crate) fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// A request is in the relay until the returned guard drops.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.hot.in_flight.increment(1.0);
        InFlight(self.hot.clone())
    }

    /// A request ended: answered by `provider` (`none` when nobody answered) with `outcome`,
    /// after `total` in the relay.
    pub(crate) fn request_finished(
        &self,
        provider: &str,
        model: &str,
        outcome: RequestOutcome,
        total: Option<Duration>,
    ) {
        if let (Some(series), RequestOutcome::Ok) = (self.hot.providers.get(provider), outcome) {
            if let Some(total) = total {
                let duration = series.duration.get_or_init(|| {
                    self.record(|| histogram!(DURATION, "provider" => provider.to_owned()))
                });
                duration.record(total.as_secs_f64());
            }
            let requests = self
                .hot
                .models
                .get(model)
                .and_then(|&i| series.requests_ok.get(i));
            if let Some(requests) = requests {
                requests
                    .get_or_init(|| self.record(|| requests_counter(provider, model, outcome)))
                    .increment(1);
                return;
            }
        }
        self.record(|| {
            if let Some(total) = total {
                histogram!(DURATION, "provider" => provider.to_owned()).record(total.as_secs_f64());
            }
            requests_counter(provider, model, outcome).increment(1);
        });
    }

    /// A route ended: its attempts, failover, race, the winner's time to first event and the
    /// relay's `overhead`.
    pub(crate) fn routed(&self, route: &RouteSummary<'_>, overhead: Duration) {
        self.hot.overhead.record(overhead.as_secs_f64());
        let winner = route
            .winner
            .and_then(|w| Some((w, self.hot.providers.get(w)?)));
        if let (Some(first_event), Some((winner, series))) = (route.first_event, winner) {
            let histogram = series.first_event.get_or_init(|| {
                self.record(|| histogram!(FIRST_EVENT, "provider" => winner.to_owned()))
            });
            histogram.record(first_event.as_secs_f64());
        }
        if let ([only], None, None, Some((winner, series))) =
            (route.attempts, route.race, &route.failover, winner)
            && matches!(only.outcome, AttemptOutcome::Succeeded)
        {
            // The common case: one attempt, answered.
            let attempts = series.attempts_ok.get_or_init(|| {
                self.record(|| {
                    let outcome = only.outcome.name();
                    counter!(ATTEMPTS, "provider" => winner.to_owned(), "outcome" => outcome)
                })
            });
            attempts.increment(1);
            return;
        }
        self.record(|| {
            for attempt in route.attempts {
                record_attempt(attempt, route.race.is_some());
            }
            if let (Some(primary), Some(cause)) = (route.primary(), &route.failover) {
                counter!(FAILOVERS, "provider" => primary.to_owned(), "cause" => cause.to_string())
                    .increment(1);
            }
            if let Some(race) = route.race {
                counter!(RACES, "result" => race.name()).increment(1);
                if let Some(winner) = route.winner {
                    counter!(RACE_WINS, "provider" => winner.to_owned()).increment(1);
                }
            }
            if let (Some(first_event), Some(winner)) = (route.first_event, route.winner)
                && !self.hot.providers.contains_key(winner)
            {
                histogram!(FIRST_EVENT, "provider" => winner.to_owned())
                    .record(first_event.as_secs_f64());
            }
        });
    }

    /// `provider` is now in `state` (the one-hot health gauge).
    pub(crate) fn health_state(&self, provider: &str, state: HealthState) {
        self.record(|| {
            for each in STATES {
                let value = if each == state { 1.0 } else { 0.0 };
                gauge!(HEALTH, "provider" => provider.to_owned(), "state" => each.name())
                    .set(value);
            }
        });
    }

    /// `provider` went from `from` to `to`.
    pub(crate) fn health_changed(&self, provider: &str, from: HealthState, to: HealthState) {
        self.record(|| {
            counter!(TRANSITIONS, "provider" => provider.to_owned(), "from" => from.name(), "to" => to.name())
                .increment(1);
        });
        self.health_state(provider, to);
    }

    /// A committed stream from `provider` dropped events that were not JSON, or got the
    /// `message_stop` it lacked after its final `message_delta` (see [`StreamStats`]).
    pub(crate) fn stream_repaired(&self, provider: &str, stats: StreamStats) {
        self.record(|| {
            if stats.dropped_events > 0 {
                counter!(DROPPED_EVENTS, "provider" => provider.to_owned())
                    .increment(stats.dropped_events);
            }
            if stats.repaired_ending {
                counter!(REPAIRED_ENDINGS, "provider" => provider.to_owned()).increment(1);
            }
        });
    }

    /// `provider` answered that it does not serve `model` (a 404 `not_found_error`), though
    /// its configuration says it does.
    pub(crate) fn model_not_served(&self, provider: &str, model: &str) {
        self.record(|| {
            counter!(MODEL_NOT_SERVED, "provider" => provider.to_owned(), "model" => model.to_owned())
                .increment(1);
        });
    }

    /// A watcher of `GET /v1/relay/events` missed `missed` events of `stream`.
    /// Hedging as the runtime counts it, copied in before a scrape.
    pub(crate) fn hedging(&self, hedging: &HedgeStatus) {
        self.record(|| {
            let counts = hedging.counts;
            for (outcome, count) in [
                ("started", counts.started),
                ("won_by_original", counts.won_by_original),
                ("won_by_hedge", counts.won_by_hedge),
                ("failed", counts.failed),
                ("budget_spent", counts.budget_spent),
            ] {
                counter!(HEDGES, "outcome" => outcome).absolute(count);
            }
            let budget = hedging.budget;
            for (value, count) in [
                ("requests", budget.requests),
                ("hedges", budget.hedges),
                ("allowed", budget.allowed),
                ("available", budget.available),
            ] {
                gauge!(HEDGE_BUDGET, "value" => value).set(count as f64);
            }
            for provider in &hedging.providers {
                for delay in &provider.delays {
                    let labels = [
                        ("provider", provider.name.clone()),
                        ("class", delay.class.name().to_owned()),
                    ];
                    gauge!(HEDGE_DELAY, &labels).set(delay.delay.as_secs_f64());
                }
            }
        });
    }

    /// The relay's live tasks and race actors, copied in before a scrape (for leak watching).
    pub(crate) fn runtime(&self, tasks: usize, race_actors: usize) {
        self.record(|| {
            gauge!(TASKS).set(tasks as f64);
            gauge!(RACE_ACTORS).set(race_actors as f64);
        });
    }

    pub(crate) fn watcher_missed(&self, stream: &'static str, missed: u64) {
        self.record(|| counter!(WATCHER_MISSED, "stream" => stream).increment(missed));
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

/// One attempt's counters (inside [`Metrics::record`]); a cancelled attempt of a race is a
/// cancelled loser.
fn record_attempt(attempt: &AttemptRecord, raced: bool) {
    let provider = attempt.provider.name().to_owned();
    let outcome = attempt.outcome.name();
    counter!(ATTEMPTS, "provider" => provider.clone(), "outcome" => outcome).increment(1);
    match &attempt.outcome {
        AttemptOutcome::Failed(error) => {
            counter!(ATTEMPT_FAILURES, "provider" => provider, "cause" => error.cause().to_string())
                .increment(1);
        }
        AttemptOutcome::Cancelled if raced => {
            counter!(RACE_LOSERS, "provider" => provider).increment(1);
        }
        _ => {}
    }
}

impl Hot {
    /// Call within the recorder.
    fn new(providers: &[String], models: &HashSet<String>) -> Self {
        let labels = models.iter().map(String::as_str).chain(OTHER_MODELS);
        let models: HashMap<String, usize> = labels
            .enumerate()
            .map(|(index, model)| (model.to_owned(), index))
            .collect();
        let series = || ProviderSeries {
            attempts_ok: OnceLock::new(),
            first_event: OnceLock::new(),
            duration: OnceLock::new(),
            requests_ok: models.iter().map(|_| OnceLock::new()).collect(),
        };
        Hot {
            in_flight: gauge!(IN_FLIGHT),
            overhead: histogram!(OVERHEAD),
            providers: providers.iter().map(|p| (p.clone(), series())).collect(),
            models,
        }
    }
}

fn requests_counter(provider: &str, model: &str, outcome: RequestOutcome) -> Counter {
    counter!(
        REQUESTS,
        "provider" => provider.to_owned(),
        "model" => model.to_owned(),
        "outcome" => outcome.as_str()
    )
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlight(Arc<Hot>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.decrement(1.0);
    }
}

fn with_buckets() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(OVERHEAD.to_owned()), &OVERHEAD_BUCKETS)
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests by the provider that answered (`none`: nobody), model (`other`: one no provider \
         lists) and outcome (ok, error, stream_failed, client_closed, rejected)"
    );
    describe_gauge!(IN_FLIGHT, "Requests in the relay now, streams included");
    describe_counter!(ATTEMPTS, "Upstream attempts by provider and outcome");
    describe_counter!(
        ATTEMPT_FAILURES,
        "Failed upstream attempts by cause: status code, timeout, connection or other"
    );
    describe_counter!(
        FAILOVERS,
        "Requests whose primary failed with a failover trigger (or was hedged: cause `hedge`), \
         by primary and cause"
    );
    describe_counter!(
        HEDGES,
        "Slow primaries hedged (started) and how those ended, and those not hedged because the \
         budget was spent"
    );
    describe_gauge!(
        HEDGE_BUDGET,
        "The hedge budget over its window: requests, hedges, hedges allowed and available"
    );
    describe_gauge!(
        TASKS,
        "Tokio tasks alive in the relay (connections, streams, timers)"
    );
    describe_gauge!(
        RACE_ACTORS,
        "Race and attempt actors alive: zero between races; growth is a leak"
    );
    describe_gauge!(
        HEDGE_DELAY,
        "How long a primary waits for its commit before a hedge joins, by provider and class"
    );
    describe_counter!(
        RACES,
        "Failover races by result: won, all_failed, timed_out"
    );
    describe_counter!(RACE_WINS, "Failover races won, by provider");
    describe_counter!(
        RACE_LOSERS,
        "Race attempts cancelled because another won or time ran out"
    );
    describe_gauge!(
        HEALTH,
        "1 for each provider's current health state, 0 for the others"
    );
    describe_counter!(TRANSITIONS, "Health state changes by provider, from and to");
    describe_histogram!(
        FIRST_EVENT,
        metrics::Unit::Seconds,
        "The winning attempt's time to its commit point (for a stream, its first event)"
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Whole requests answered with success, stream included, by the provider that answered"
    );
    describe_histogram!(
        OVERHEAD,
        metrics::Unit::Seconds,
        "Time in the relay per routed request, less the upstream time on its critical path"
    );
    describe_counter!(
        WATCHER_MISSED,
        "Events a slow watcher of /v1/relay/events missed, by stream"
    );
    describe_counter!(
        DROPPED_EVENTS,
        "Events of committed streams dropped, not relayed, because their data was not valid \
         JSON, by provider"
    );
    describe_counter!(
        REPAIRED_ENDINGS,
        "Committed streams that ended cleanly after their final message_delta without \
         message_stop, which the relay appended, by provider"
    );
    describe_counter!(
        MODEL_NOT_SERVED,
        "Attempts a provider answered with a 404 not_found_error for a model its configuration \
         says it serves (its models list is wrong), by provider and model"
    );
}
