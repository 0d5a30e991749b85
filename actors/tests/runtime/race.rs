//! The failover race: when it starts, who wins, what gets cancelled, timeouts, exhaustion.

use std::sync::Arc;
use std::time::Duration;

use relayrace_actors::testing::Step;
use relayrace_actors::{
    AttemptError, AttemptOutcome, Cause, Failover, Provider, RaceEnd, RouteError, Runtime, Upstream,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Harness, MS, SECOND, config, fake};

fn outcomes(attempts: &[relayrace_actors::AttemptRecord]) -> Vec<(String, &'static str)> {
    attempts
        .iter()
        .map(|a| {
            let outcome = match a.outcome {
                AttemptOutcome::Succeeded => "ok",
                AttemptOutcome::Failed(_) => "failed",
                AttemptOutcome::Cancelled => "cancelled",
            };
            (a.provider.name().to_owned(), outcome)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_trigger_error_starts_a_race_that_includes_the_primary() {
    let fake = fake()
        .script("a", [Step::status(500), Step::ok().after(50 * MS)])
        .script("b", [Step::ok().after(10 * MS)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert!(routed.report.raced());
    assert_eq!(routed.response.provider, "b");
    assert_eq!(
        outcomes(&routed.report.attempts),
        [
            ("a".into(), "failed"),
            ("a".into(), "cancelled"),
            ("b".into(), "ok")
        ]
    );
    assert_eq!(routed.report.winner, 2);
    assert_eq!(routed.report.winner().name(), "b");
    assert_eq!(
        routed.report.failover,
        Some(Failover {
            cause: Cause::Status(500),
            race: Some(RaceEnd::Won)
        })
    );
    harness.fake.wait_cancelled("a", 1).await;
    assert_eq!(harness.fake.calls("a"), 2);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn every_default_trigger_fails_over() {
    let triggers = [
        Step::status(429),
        Step::status(500),
        Step::status(502),
        Step::status(503),
        Step::status(504),
        Step::status(529),
        Step::timeout(),
        Step::refused(),
    ];
    for trigger in triggers {
        let fake = fake()
            .script("a", [trigger.clone()])
            .script("b", [Step::ok()]);
        let harness = Harness::start(config(&["a", "b"]), fake).await;
        let routed = harness.handle().route("x".to_owned()).await.unwrap();
        assert_eq!(routed.response.provider, "b", "{trigger:?}");
        assert!(routed.report.raced(), "{trigger:?}");
        harness.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_timed_out_does_not_race_again_for_the_same_request() {
    let fake = fake()
        // Before its hedge delay (6 s for a small request until learned): no hedge.
        .script("a", [Step::timeout().after(5 * SECOND)])
        .script("b", [Step::ok()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(
        outcomes(&routed.report.attempts),
        [("a".into(), "failed"), ("b".into(), "ok")]
    );
    assert_eq!(harness.fake.calls("a"), 1);
    // It stays in rotation for the next request.
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_primary_does_not_race_again_for_the_same_request() {
    let fake = fake()
        .script("a", [Step::status(429), Step::ok()])
        .script("b", [Step::ok().after(10 * MS)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(
        outcomes(&routed.report.attempts),
        [("a".into(), "failed"), ("b".into(), "ok")]
    );
    assert_eq!(harness.fake.calls("a"), 1);
    // Without a retry-after it stays in rotation for the next request.
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn errors_that_match_no_trigger_are_returned_without_failover() {
    for status in [400, 401, 404] {
        let fake = fake()
            .script("a", [Step::status(status)])
            .script("b", [Step::ok()]);
        let harness = Harness::start(config(&["a", "b"]), fake).await;
        let error = harness.handle().route("x".to_owned()).await.unwrap_err();
        match &error {
            RouteError::Failed {
                provider,
                error,
                attempts,
            } => {
                assert_eq!(provider.name(), "a");
                assert_eq!(error.status_code(), Some(status));
                assert_eq!(attempts.len(), 1);
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(harness.fake.calls("b"), 0);
        harness.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_success_wins_and_slower_racers_are_cancelled() {
    let fake = fake()
        .script("a", [Step::status(503)])
        .script("b", [Step::ok().after(300 * MS)])
        .script("c", [Step::ok().after(20 * MS)]);
    let harness = Harness::start(config(&["a", "b", "c"]), fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "c");
    assert_eq!(started.elapsed(), 20 * MS);
    harness.fake.wait_cancelled("b", 1).await;
    assert_eq!(harness.fake.completed("b"), 0);
    harness.runtime.handle().races_finished().await;
    assert_eq!(harness.fake.in_flight(), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_race_timeout_fires_with_the_attempts_so_far() {
    let mut config = config(&["a", "b", "c"]);
    config.routing.race_timeout = 2 * SECOND;
    let fake = fake()
        .script("a", [Step::status(500)])
        .script("b", [Step::hang()])
        .script("c", [Step::status(500).after(100 * MS)]);
    let harness = Harness::start(config, fake).await;
    let started = Instant::now();
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    assert_eq!(started.elapsed(), 2 * SECOND);
    match &error {
        RouteError::Timeout {
            timeout,
            attempts,
            failover,
        } => {
            assert_eq!(*timeout, 2 * SECOND);
            assert_eq!(failover.race, Some(RaceEnd::TimedOut));
            assert_eq!(
                outcomes(attempts),
                [
                    ("a".into(), "failed"),
                    ("a".into(), "failed"),
                    ("b".into(), "cancelled"),
                    ("c".into(), "failed")
                ]
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    harness.fake.wait_cancelled("b", 1).await;
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn every_attempt_failing_returns_each_error_in_order() {
    let fake = fake()
        .script("a", [Step::status(500)])
        .script("b", [Step::status(529).after(10 * MS)])
        .script("c", [Step::refused().after(5 * MS)]);
    let harness = Harness::start(config(&["a", "b", "c"]), fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    let RouteError::Exhausted { attempts, failover } = &error else {
        panic!("expected Exhausted, got {error:?}");
    };
    assert_eq!(
        *failover,
        Failover {
            cause: Cause::Status(500),
            race: Some(RaceEnd::AllFailed)
        }
    );
    let errors: Vec<(String, String)> = attempts
        .iter()
        .map(|a| {
            (
                a.provider.name().to_owned(),
                a.outcome.error().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("a".into(), "upstream answered with status 500".into()),
            ("a".into(), "upstream answered with status 500".into()),
            ("b".into(), "upstream answered with status 529".into()),
            ("c".into(), "connection failed: connection refused".into()),
        ]
    );
    assert_eq!(error.last_error().unwrap().status_code(), None);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_single_healthy_provider_is_tried_once_without_a_race() {
    let fake = fake().script("a", [Step::status(503)]);
    let harness = Harness::start(config(&["a"]), fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    let RouteError::Exhausted { attempts, failover } = &error else {
        panic!("expected Exhausted, got {error:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(failover.race, None, "nobody was left to race");
    assert_eq!(harness.fake.calls("a"), 1);
    assert_eq!(harness.handle().race_actors_alive(), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failover_can_be_switched_off() {
    let mut config = config(&["a", "b"]);
    config.routing.failover = false;
    let fake = fake().script("a", [Step::status(503)]);
    let harness = Harness::start(config, fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    assert!(matches!(error, RouteError::Failed { .. }), "{error:?}");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failover_works_with_every_strategy() {
    for strategy in relayrace_actors::StrategyKind::ALL {
        let mut config = config(&["a", "b"]);
        config.routing.strategy = strategy;
        // Whichever provider the strategy picks first fails; the race then finds an answer.
        let fake = fake()
            .script("a", [Step::status(500), Step::ok()])
            .script("b", [Step::status(500), Step::ok()]);
        let harness = Harness::start(config, fake).await;
        let routed = harness.handle().route("x".to_owned()).await.unwrap();
        assert!(routed.report.raced(), "{strategy}");
        assert!(matches!(
            routed.report.attempts[0].outcome,
            AttemptOutcome::Failed(_)
        ));
        harness.shutdown().await;
    }
}

/// An upstream whose response is a stream that keeps producing long after it is delivered.
struct Ticker;

impl Upstream for Ticker {
    type Request = ();
    type Response = mpsc::Receiver<u32>;

    async fn attempt(
        &self,
        provider: &Provider,
        _request: Arc<()>,
    ) -> Result<mpsc::Receiver<u32>, AttemptError> {
        if provider.name() == "a" {
            return Err(AttemptError::status(503));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (sender, receiver) = mpsc::channel(1);
        tokio::spawn(async move {
            for tick in 0..10 {
                tokio::time::sleep(SECOND).await;
                if sender.send(tick).await.is_err() {
                    return;
                }
            }
        });
        Ok(receiver)
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_winner_is_not_cut_by_the_race_timeout() {
    let mut config = config(&["a", "b"]);
    config.routing.race_timeout = 2 * SECOND;
    let runtime = Runtime::start(config, Ticker).await.unwrap();
    let started = Instant::now();
    let mut routed = runtime.handle().route(()).await.unwrap();
    let mut ticks = Vec::new();
    while let Some(tick) = routed.response.recv().await {
        ticks.push(tick);
    }
    assert_eq!(ticks, (0..10).collect::<Vec<_>>());
    assert!(
        started.elapsed() >= 11 * SECOND,
        "consumed well past the race timeout"
    );
    runtime.shutdown(SECOND).await;
}
