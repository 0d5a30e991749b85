//! Hedging on the default configuration: a primary slower than its delay (6 s for a small
//! request until learned) gets the next provider racing beside it; the first to commit wins.

use relayrace_actors::testing::Step;
use relayrace_actors::{AttemptRecord, Cause, HedgeOverride, InitialDelays, RaceEnd, RouteError};
use tokio::time::Instant;

use super::{Harness, MS, SECOND, config, fake};

fn outcomes(attempts: &[AttemptRecord]) -> Vec<(String, &'static str)> {
    attempts
        .iter()
        .map(|a| (a.provider.name().to_owned(), a.outcome.name()))
        .collect()
}

fn named(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(n, o)| ((*n).to_owned(), *o)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_is_hedged_and_the_hedge_wins() {
    let fake = fake()
        .script("a", [Step::ok().after(20 * SECOND)])
        .script("b", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(started.elapsed(), 7 * SECOND, "6 s delay + 1 s for b");
    assert_eq!(routed.response.provider, "b");
    let report = &routed.report;
    assert_eq!(
        outcomes(&report.attempts),
        named(&[("a", "cancelled"), ("b", "succeeded")])
    );
    assert_eq!(report.winner, 1);
    let failover = report.failover.unwrap();
    assert_eq!(
        (failover.cause, failover.race),
        (Cause::Hedge, Some(RaceEnd::Won))
    );
    assert_eq!(failover.cause.to_string(), "hedge");
    harness.fake.wait_cancelled("a", 1).await;
    harness.handle().races_finished().await;
    let counts = harness.handle().hedging().counts;
    assert_eq!((counts.started, counts.won_by_hedge), (1, 1));
    // The primary was slow once, not failed: still the primary.
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_original_wins_when_it_commits_after_the_hedge_started() {
    let fake = fake()
        .script("a", [Step::ok().after(8 * SECOND)])
        .script("b", [Step::ok().after(5 * SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(started.elapsed(), 8 * SECOND, "the slow attempt is not cut");
    assert_eq!(routed.response.provider, "a");
    assert_eq!(
        outcomes(&routed.report.attempts),
        named(&[("a", "succeeded"), ("b", "cancelled")])
    );
    assert_eq!(routed.report.winner, 0);
    assert_eq!(routed.report.failover.unwrap().cause, Cause::Hedge);
    harness.fake.wait_cancelled("b", 1).await;
    assert_eq!(harness.handle().hedging().counts.won_by_original, 1);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn when_both_fail_the_route_fails_with_both_attempts() {
    let fake = fake()
        .script("a", [Step::status(503).after(8 * SECOND)])
        .script("b", [Step::status(503).after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    let RouteError::Exhausted { attempts, failover } = error else {
        panic!("{error:?}");
    };
    assert_eq!(
        outcomes(&attempts),
        named(&[("a", "failed"), ("b", "failed")])
    );
    assert_eq!(
        (failover.cause, failover.race),
        (Cause::Hedge, Some(RaceEnd::AllFailed))
    );
    assert_eq!(harness.handle().hedging().counts.failed, 1);
    harness.handle().races_finished().await;
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_primary_failing_during_its_hedge_sends_the_others_into_the_race() {
    let fake = fake()
        .script("a", [Step::status(503).after(8 * SECOND)])
        .script("b", [Step::hang()])
        .script("c", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b", "c"]), fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(
        started.elapsed(),
        9 * SECOND,
        "c joined when a failed at 8 s"
    );
    assert_eq!(
        outcomes(&routed.report.attempts),
        named(&[("a", "failed"), ("b", "cancelled"), ("c", "succeeded")])
    );
    assert_eq!(routed.report.winner, 2);
    assert_eq!(harness.fake.calls("b"), 1, "the hedge is not started twice");
    harness.fake.wait_cancelled("b", 1).await;
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_primary_error_that_is_the_answer_cancels_the_hedge() {
    let fake = fake()
        .script("a", [Step::status(400).after(8 * SECOND)])
        .script("b", [Step::hang()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    let RouteError::Failed { attempts, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!(
        outcomes(&attempts),
        named(&[("a", "failed"), ("b", "cancelled")])
    );
    harness.fake.wait_cancelled("b", 1).await;
    harness.shutdown().await;
}

/// The default budget allows 10 % of the requests in 10 s plus one per second: with twelve
/// slow requests at once, 1.2 + 10 = 11 hedges. The twelfth waits for its primary.
#[tokio::test(start_paused = true)]
async fn past_the_budget_a_slow_primary_is_not_hedged() {
    let fake = fake()
        .script("a", [Step::ok().after(20 * SECOND)])
        .script("b", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let handle = harness.handle();
            tokio::spawn(async move {
                let started = Instant::now();
                let routed = handle.route("x".to_owned()).await.unwrap();
                (routed.response.provider, started.elapsed())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers.sort();
    let mut expected = vec![("a".to_owned(), 20 * SECOND)];
    expected.extend(std::iter::repeat_n(("b".to_owned(), 7 * SECOND), 11));
    assert_eq!(answers, expected);
    let hedging = harness.handle().hedging();
    assert_eq!(hedging.counts.started, 11);
    assert_eq!(hedging.counts.budget_spent, 1);
    assert_eq!(harness.fake.calls("b"), 11);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_during_the_hedge_cancels_both_attempts() {
    let fake = fake()
        .script("a", [Step::hang()])
        .script("b", [Step::hang()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let handle = harness.handle();
    let route = handle.route("x".to_owned());
    let gone = tokio::time::timeout(6 * SECOND + 500 * MS, route).await;
    assert!(gone.is_err(), "the client gave up first");
    harness.fake.wait_cancelled("a", 1).await;
    harness.fake.wait_cancelled("b", 1).await;
    harness.handle().races_finished().await;
    assert_eq!(harness.fake.in_flight(), 0);
    assert_eq!(harness.handle().race_actors_alive(), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_only_one_provider_is_eligible() {
    let fake = fake().script("a", [Step::ok().after(20 * SECOND)]);
    let harness = Harness::start(config(&["a"]), fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(started.elapsed(), 20 * SECOND);
    assert_eq!(routed.report.attempts.len(), 1);
    harness.shutdown().await;

    // Two providers, but only `a` serves the model.
    let mut config = config(&["a", "b"]);
    config.providers[0].models = vec!["m".into()];
    config.providers[1].models = vec!["other".into()];
    let fake = super::fake().script("a", [Step::ok().after(20 * SECOND)]);
    let harness = Harness::start(config, fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("model:m".to_owned()).await.unwrap();
    assert_eq!(started.elapsed(), 20 * SECOND);
    assert_eq!(routed.report.attempts.len(), 1);
    assert_eq!(harness.fake.calls("b"), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_that_already_raced_is_not_hedged() {
    let fake = fake()
        .script("a", [Step::status(503)])
        .script("b", [Step::ok().after(4 * SECOND)]);
    let mut config = config(&["a", "b"]);
    // b would be hedged after 1 s as a primary.
    config.providers[1].hedge = HedgeOverride {
        min_delay: Some(SECOND),
        initial_delay: Some(InitialDelays {
            under_32kb: SECOND,
            ..InitialDelays::default()
        }),
        ..HedgeOverride::default()
    };
    let harness = Harness::start(config, fake).await;
    let started = Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(started.elapsed(), 4 * SECOND, "the race's b is not hedged");
    assert_eq!(
        outcomes(&routed.report.attempts),
        named(&[("a", "failed"), ("b", "succeeded")])
    );
    assert_eq!(routed.report.failover.unwrap().cause, Cause::Status(503));
    assert_eq!(harness.fake.calls("a"), 1, "a 503 is not sent to a again");
    assert_eq!(harness.handle().hedging().counts.started, 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_delay_is_learned_from_recent_commits() {
    let fake = fake()
        .script(
            "a",
            std::iter::repeat_n(Step::ok().after(SECOND), 20).chain([Step::hang()]),
        )
        .script("b", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    for _ in 0..20 {
        assert_eq!(harness.route_ok().await, "a");
    }
    let delay = harness.handle().hedging().providers[0].delays[0];
    assert!(delay.learned);
    assert_eq!(delay.samples, 20);
    let started = Instant::now();
    assert_eq!(harness.route_ok().await, "b");
    // p95 of 1 s (its bucket's upper edge, within 9 %) times 1.5, then b's second.
    let waited = started.elapsed();
    assert_eq!(waited, delay.delay + SECOND);
    assert!(waited > 2500 * MS && waited < 2700 * MS, "{waited:?}");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_large_request_waits_longer_before_it_is_hedged() {
    let fake = fake()
        .cycle("a", [Step::ok().after(15 * SECOND)])
        .script("b", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let large = harness
        .handle()
        .route("bytes:500000".to_owned())
        .await
        .unwrap();
    assert_eq!(
        large.response.provider, "a",
        "20 s initial delay for 256 KB–1 MB"
    );
    assert_eq!(large.report.attempts.len(), 1);
    let small = harness
        .handle()
        .route("bytes:2000".to_owned())
        .await
        .unwrap();
    assert_eq!(small.response.provider, "b", "6 s for a small one");
    harness.shutdown().await;
}

/// Two hundred requests at once, every tenth primary attempt slow: each request gets exactly
/// one answer, the hedges stay within the budget, and nothing is left running.
#[tokio::test(start_paused = true)]
async fn many_hedged_requests_at_once_leak_nothing() {
    let slow_tenth = std::iter::once(Step::ok().after(20 * SECOND))
        .chain(std::iter::repeat_n(Step::ok().after(SECOND), 9));
    let fake = fake()
        .cycle("a", slow_tenth)
        .script("b", [Step::ok().after(SECOND)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let requests: Vec<_> = (0..200)
        .map(|_| {
            let handle = harness.handle();
            tokio::spawn(async move { handle.route("x".to_owned()).await.unwrap() })
        })
        .collect();
    let mut hedged = 0;
    for request in requests {
        let routed = request.await.unwrap();
        hedged += usize::from(routed.report.raced());
    }
    let hedging = harness.handle().hedging();
    assert_eq!(hedging.counts.started as usize, hedged);
    assert!(hedged <= 200 / 10 + 10, "{hedged} hedges");
    assert_eq!(harness.fake.calls("a"), 200);
    assert_eq!(harness.fake.calls("b"), hedged);
    harness.handle().races_finished().await;
    assert_eq!(harness.fake.in_flight(), 0);
    harness.shutdown().await;
}
