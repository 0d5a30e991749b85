//! Recovery on the default health settings, in paused time at real scale: an outage of the
//! primary with steady traffic, how soon it serves again once it recovers, and what the outage
//! costs in upstream attempts per client request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use relayrace_actors::{AttemptError, Provider, Runtime, Upstream};
use tokio::time::Instant;

use crate::{SECOND, config};

/// `primary` answers 503 until `recovers_at`, then succeeds; every other provider succeeds.
struct Outage {
    recovers_at: Instant,
    calls: HashMap<&'static str, AtomicUsize>,
}

impl Outage {
    fn new(recovers_at: Instant) -> Arc<Self> {
        let calls = ["primary", "fallback"]
            .into_iter()
            .map(|name| (name, AtomicUsize::new(0)))
            .collect();
        Arc::new(Outage { recovers_at, calls })
    }

    fn calls(&self) -> usize {
        self.calls.values().map(|n| n.load(Ordering::SeqCst)).sum()
    }
}

impl Upstream for Outage {
    type Request = ();
    type Response = String;

    async fn attempt(&self, provider: &Provider, _: Arc<()>) -> Result<String, AttemptError> {
        if let Some(calls) = self.calls.get(provider.name()) {
            calls.fetch_add(1, Ordering::SeqCst);
        }
        if provider.name() == "primary" && Instant::now() < self.recovers_at {
            return Err(AttemptError::status(503));
        }
        Ok(provider.name().to_owned())
    }
}

/// What one run saw.
struct Run {
    /// From the primary's recovery to the first request it answered.
    back_after: Duration,
    /// Upstream attempts per client request from the moment the primary left rotation until
    /// its recovery (probes included).
    outage_cost: f64,
    /// Attempts per request before the primary left rotation.
    early_cost: f64,
}

/// One request every `gap` (a 1–5 s pattern when `gap` is `None`); the primary is down for
/// `outage` from the first request on. Runs until the primary has answered after recovering.
async fn run(outage: Duration, gap: Option<Duration>, seed: u64) -> Run {
    let start = Instant::now();
    let upstream = Outage::new(start + outage);
    let mut config = config(&["primary", "fallback"]);
    config.routing.seed = Some(seed);
    let runtime = Runtime::start(config, upstream.clone()).await.unwrap();
    let handle = runtime.handle();
    let mut requests = 0usize;
    let mut early = None;
    let mut at_recovery = None;
    let gaps = [1, 4, 2, 5, 3].map(|s| s * SECOND);
    loop {
        let routed = handle.route(Arc::new(())).await.unwrap();
        requests += 1;
        let now = Instant::now();
        if early.is_none() && !handle.select().await.unwrap().name().eq("primary") {
            early = Some((requests, upstream.calls()));
        }
        if now >= start + outage && at_recovery.is_none() {
            at_recovery = Some((
                requests - 1,
                upstream.calls() - routed.report.attempts.len(),
            ));
        }
        if routed.response == "primary" && now >= start + outage {
            let (outage_requests, outage_calls) = at_recovery.unwrap();
            // A short outage at a slow pace may end before the primary leaves rotation.
            let (early_requests, early_calls) = early.unwrap_or((outage_requests, outage_calls));
            runtime.shutdown(SECOND).await;
            return Run {
                back_after: now - (start + outage),
                outage_cost: (outage_calls - early_calls) as f64
                    / (outage_requests - early_requests).max(1) as f64,
                early_cost: early_calls as f64 / early_requests as f64,
            };
        }
        let wait = gap.unwrap_or(gaps[requests % gaps.len()]);
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test(start_paused = true)]
async fn after_an_outage_of_up_to_five_minutes_the_primary_serves_within_ten_seconds() {
    for outage in [20, 60, 150, 300].map(|s| s * SECOND) {
        for gap in [Some(SECOND), Some(5 * SECOND), None] {
            for seed in 0..4 {
                let run = run(outage, gap, seed).await;
                assert!(
                    run.back_after <= 10 * SECOND,
                    "outage {outage:?}, gap {gap:?}, seed {seed}: back after {:?}",
                    run.back_after
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_thirty_minute_outage_the_primary_serves_within_a_minute() {
    for gap in [Some(SECOND), Some(5 * SECOND), None] {
        for seed in 0..3 {
            let run = run(1800 * SECOND, gap, seed).await;
            assert!(
                run.back_after <= 60 * SECOND,
                "gap {gap:?}, seed {seed}: back after {:?}",
                run.back_after
            );
        }
    }
}

/// The issue asks for at most 1.05 attempts per request during a 60 s outage at one request a
/// second. Each failed probe is one extra attempt, so 1.05 allows one probe per 20 s, while
/// serving again within 10 s of recovery with a request only every 5 s needs one per 5 s at
/// most. The defaults keep the recovery bound; this is what it costs (measured: ~1.29).
#[tokio::test(start_paused = true)]
async fn what_an_outage_costs_in_attempts_per_request() {
    let run = run(60 * SECOND, Some(SECOND), 7).await;
    assert_eq!(
        run.early_cost, 2.0,
        "while in rotation: the primary once, then the fallback"
    );
    assert!(
        run.outage_cost > 1.0 && run.outage_cost <= 1.34,
        "{}",
        run.outage_cost
    );
}
