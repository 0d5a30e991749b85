//! Hedging, measured in real time: a primary whose first event takes 20 s on 10 % of requests
//! (one in every ten, at a seeded random place) and 1 s otherwise, a fallback at 1 s, requests arriving at 20 per second. Prints
//! the client's time to first event (p50, p99, max) and the extra attempts, with hedging on
//! (the defaults) and off.
//!
//! `cargo run --release -p relayrace-actors --example hedge_bench [REQUESTS]` (default 400;
//! about a minute).

#![expect(
    clippy::expect_used,
    reason = "a bench program: a failure ends the run with its message"
)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use relayrace_actors::{
    AttemptError, Provider, ProviderSettings, Runtime, RuntimeConfig, Upstream,
};
use tokio::time::Instant;

const FAST: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_secs(20);
const ARRIVALS_PER_SECOND: u64 = 20;

/// Requests carry whether the primary is slow for them (seeded).
struct Bench {
    attempts: AtomicU64,
}

impl Upstream for Bench {
    type Request = bool;
    type Response = ();

    async fn attempt(&self, provider: &Provider, slow: Arc<bool>) -> Result<(), AttemptError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let wait = if provider.name() == "primary" && *slow {
            SLOW
        } else {
            FAST
        };
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    extra: f64,
    learned: Option<Duration>,
}

async fn run(requests: usize, hedging_on: bool) -> Figures {
    let mut config = RuntimeConfig::with_providers([
        ProviderSettings::new("primary").priority(1),
        ProviderSettings::new("fallback").priority(2),
    ]);
    config.routing.hedge.enabled = hedging_on;
    let upstream = Arc::new(Bench {
        attempts: AtomicU64::new(0),
    });
    let runtime = Runtime::start(config, upstream.clone())
        .await
        .expect("the runtime starts");
    let mut rng = SmallRng::seed_from_u64(13);
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / ARRIVALS_PER_SECOND));
    let mut tasks = Vec::with_capacity(requests);
    let mut slow_in_block = 0;
    for i in 0..requests {
        ticker.tick().await;
        // One in every ten, at a random place in its block of ten.
        if i % 10 == 0 {
            slow_in_block = rng.random_range(0..10);
        }
        let slow = i % 10 == slow_in_block;
        let handle = runtime.handle();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            handle.route(slow).await.expect("a route answers");
            started.elapsed()
        }));
    }
    let mut times = Vec::with_capacity(requests);
    for task in tasks {
        times.push(task.await.expect("the request task"));
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let attempts = upstream.attempts.load(Ordering::Relaxed);
    let hedging = runtime.handle().hedging();
    let learned = hedging.providers[0].delays[0];
    let figures = Figures {
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
        extra: (attempts as f64 - requests as f64) / requests as f64,
        learned: (hedging_on && learned.learned).then_some(learned.delay),
    };
    runtime.shutdown(Duration::from_secs(1)).await;
    figures
}

#[tokio::main]
async fn main() {
    let requests = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{requests} requests at {ARRIVALS_PER_SECOND}/s; primary 20 s on 10 %, else 1 s; fallback 1 s"
    );
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>9} {:>9} {:>14} {:>14}",
        "hedging", "p50", "p99", "max", "extra attempts", "learned delay"
    );
    for hedging in [true, false] {
        let figures = run(requests, hedging).await;
        let learned = figures
            .learned
            .map_or("-".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "{:<8} {:>7.3} s {:>7.3} s {:>7.3} s {:>13.1} % {:>14}",
            if hedging { "on" } else { "off" },
            figures.p50.as_secs_f64(),
            figures.p99.as_secs_f64(),
            figures.max.as_secs_f64(),
            figures.extra * 100.0,
            learned
        );
    }
}
