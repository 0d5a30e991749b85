//! Health through the runtime: ejection, half-open probes, 429 cooldown, recovery, events.

use relayrace_actors::testing::Step;
use std::time::Duration;

use relayrace_actors::{AttemptError, Detail, EventsError, HealthState, RouteError};

use crate::{Harness, MS, SECOND, config, fake};

#[tokio::test(start_paused = true)]
async fn recovery_resumes_priority_order_by_itself() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503), Step::ok()]);
    let mut harness = Harness::start(config, fake).await;

    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "b");
    // The primary's failure put it out of rotation: the race did not include it.
    assert_eq!(routed.report.attempts.len(), 2);
    assert_eq!(harness.fake.calls("a"), 1);
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::Unhealthy)
    );
    assert_eq!(harness.route_ok().await, "b");

    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Unhealthy, HealthState::HalfOpen)
    );
    assert_eq!(harness.route_ok().await, "a");
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::HalfOpen, HealthState::Healthy)
    );
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_the_probe_limit() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503), Step::ok().after(100 * MS)]);
    let mut harness = Harness::start(config, fake).await;
    harness.route_ok().await;
    harness.next_event().await; // unhealthy
    harness.next_event().await; // half-open, 30 s later

    let probe = tokio::spawn({
        let handle = harness.handle();
        async move {
            handle
                .route("probe".to_owned())
                .await
                .unwrap()
                .response
                .provider
        }
    });
    tokio::task::yield_now().await;
    // While the probe is in flight, a is not in rotation for anyone else.
    tokio::time::sleep(10 * MS).await;
    assert_eq!(harness.route_ok().await, "b");
    assert_eq!(harness.select().await, "b");
    assert_eq!(probe.await.unwrap(), "a");
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::HalfOpen, HealthState::Healthy)
    );
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_fails_over_at_once_and_the_next_probe_comes_within_seconds() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503), Step::status(503), Step::ok()]);
    let mut harness = Harness::start(config, fake).await;
    harness.route_ok().await;
    harness.next_event().await; // unhealthy
    harness.next_event().await; // half-open
    let probed = tokio::time::Instant::now();
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    // The probe on a failed; b answered in the same request, without waiting.
    assert_eq!(routed.response.provider, "b");
    assert_eq!(routed.report.attempts.len(), 2);
    assert_eq!(probed.elapsed(), Duration::ZERO);
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::HalfOpen, HealthState::Unhealthy)
    );
    let reopened = tokio::time::Instant::now();
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Unhealthy, HealthState::HalfOpen)
    );
    let waited = reopened.elapsed();
    assert!(waited >= 3 * SECOND && waited <= 4 * SECOND, "{waited:?}");
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}

/// A probe that stays silent costs its request the hedge delay (6 s for a small request until
/// learned): the hedge answers, and the probe counts as timed out, so the provider stays out of
/// rotation. With hedging off, the probe timeout (10 s) bounds it the same way.
#[tokio::test(start_paused = true)]
async fn a_silent_probe_is_outrun_by_its_hedge_or_cut_by_the_probe_timeout() {
    for (hedging, waited) in [(true, 6 * SECOND), (false, 10 * SECOND)] {
        let mut config = config(&["a", "b"]);
        config.health.failure_threshold = 1;
        config.routing.hedge.enabled = hedging;
        let fake = fake().script("a", [Step::timeout(), Step::hang(), Step::ok()]);
        let mut harness = Harness::start(config, fake).await;
        harness.route_ok().await;
        harness.next_event().await; // unhealthy
        harness.next_event().await; // half-open
        let probed = tokio::time::Instant::now();
        let routed = harness.handle().route("x".to_owned()).await.unwrap();
        assert_eq!(routed.response.provider, "b");
        assert_eq!(probed.elapsed(), waited, "hedging {hedging}");
        let probe = &routed.report.attempts[0];
        assert_eq!(probe.provider.name(), "a");
        assert!(
            probe.outcome.error().unwrap().to_string().contains("probe"),
            "{probe:?}"
        );
        assert_eq!(harness.fake.cancelled("a"), 1, "its connection was dropped");
        assert_eq!(
            harness.next_event().await,
            ("a".into(), HealthState::HalfOpen, HealthState::Unhealthy)
        );
        harness.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_credential_fails_over_and_rejects_the_provider_for_five_minutes() {
    let refused = AttemptError::Rejected {
        status: 401,
        detail: Detail::default(),
    };
    let fake = fake().script("a", [Step::fail(refused), Step::ok()]);
    let mut harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "b");
    assert_eq!(routed.report.attempts.len(), 2);
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::Rejected)
    );
    let rejected = tokio::time::Instant::now();
    let snapshot = harness.handle().snapshot().await.unwrap();
    let status = snapshot[0].status.as_ref().unwrap();
    assert_eq!(status.state, HealthState::Rejected);
    assert!(status.until.is_some());
    for _ in 0..10 {
        assert_eq!(harness.route_ok().await, "b");
    }
    assert_eq!(harness.fake.calls("a"), 1, "not tried while rejected");
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Rejected, HealthState::HalfOpen)
    );
    assert_eq!(rejected.elapsed(), 300 * SECOND);
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_primary_is_not_asked_again_in_the_same_request() {
    for status in [503, 529] {
        let fake = fake().script("a", [Step::status(status)]);
        let harness = Harness::start(config(&["a", "b"]), fake).await;
        for request in 1..=4 {
            let routed = harness.handle().route("x".to_owned()).await.unwrap();
            assert_eq!(routed.response.provider, "b");
            assert_eq!(routed.report.attempts.len(), 2, "{status}");
            assert_eq!(harness.fake.calls("a"), request, "{status}");
        }
        harness.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_takes_the_provider_out_until_then() {
    let fake = fake().script("a", [Step::rate_limited(2 * SECOND), Step::ok()]);
    let mut harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "b");
    assert_eq!(
        harness.fake.calls("a"),
        1,
        "not retried during its cooldown"
    );
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::CoolingDown)
    );
    assert_eq!(harness.select().await, "b");
    let snapshot = harness.handle().snapshot().await.unwrap();
    assert_eq!(snapshot[0].status.as_ref().unwrap().consecutive_failures, 0);
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::CoolingDown, HealthState::Healthy)
    );
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn five_consecutive_failures_eject_a_provider_by_default() {
    let fake = fake().script("a", [Step::status(500)]);
    let mut harness = Harness::start(config(&["a", "b"]), fake).await;
    // Each route fails on a twice (primary, then its place in the race: a 500 may be a one-off).
    for _ in 0..3 {
        assert_eq!(harness.route_ok().await, "b");
    }
    assert_eq!(harness.fake.calls("a"), 5);
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::Unhealthy)
    );
    assert_eq!(harness.select().await, "b");
    let snapshot = harness.handle().snapshot().await.unwrap();
    let status = snapshot[0].status.as_ref().unwrap();
    assert_eq!(status.counters.failures, 5);
    assert_eq!(
        status.last_error.as_deref(),
        Some("upstream answered with status 500")
    );
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_success_after_failures_resets_the_count_and_later_successes_are_counted() {
    let mut config = config(&["a"]);
    config.routing.failover = false;
    let mut steps = vec![Step::status(500); 4];
    steps.push(Step::ok());
    steps.extend(vec![Step::status(500); 4]);
    steps.push(Step::ok());
    let fake = fake().script("a", steps);
    let harness = Harness::start(config, fake).await;
    for _ in 0..9 {
        let _ = harness.handle().route("x".to_owned()).await;
    }
    // Four failures, a success, four failures: never five in a row.
    assert_eq!(harness.select().await, "a");
    for _ in 0..20 {
        harness.route_ok().await;
    }
    let snapshot = harness.handle().snapshot().await.unwrap();
    let status = snapshot[0].status.as_ref().unwrap();
    assert_eq!(status.state, HealthState::Healthy);
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.counters.attempts, 29);
    assert_eq!(status.counters.successes, 21);
    assert_eq!(status.counters.failures, 8);
    assert!(status.last_success_latency.is_some());
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn client_errors_never_eject_a_provider() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(400)]);
    let harness = Harness::start(config, fake).await;
    for _ in 0..3 {
        let error = harness.handle().route("x".to_owned()).await.unwrap_err();
        assert!(matches!(error, RouteError::Failed { .. }));
    }
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn two_subscribers_see_every_transition_in_order() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503), Step::ok()]);
    let harness = Harness::start(config, fake).await;
    let mut first = harness.runtime.subscribe();
    let mut second = harness.handle().subscribe();
    harness.route_ok().await;
    tokio::time::sleep(31 * SECOND).await;
    harness.route_ok().await;
    let expected = [
        (HealthState::Healthy, HealthState::Unhealthy),
        (HealthState::Unhealthy, HealthState::HalfOpen),
        (HealthState::HalfOpen, HealthState::Healthy),
    ];
    for subscriber in [&mut first, &mut second] {
        for (from, to) in expected {
            let event = subscriber.recv().await.unwrap();
            assert_eq!(
                (event.provider.name(), event.from, event.to),
                ("a", from, to)
            );
            assert!(!event.reason.is_empty());
        }
    }
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed() {
    let mut config = config(&["a", "b"]);
    config.supervision.event_capacity = 2;
    let harness = Harness::start(config, fake()).await;
    let mut slow = harness.runtime.subscribe();
    for _ in 0..3 {
        harness.handle().set_enabled("a", false).await.unwrap();
        harness.handle().set_enabled("a", true).await.unwrap();
    }
    assert_eq!(
        slow.recv().await.unwrap_err(),
        EventsError::Lagged { missed: 4 }
    );
    // It can go on with what is still held, and resync from a snapshot.
    assert!(slow.recv().await.is_ok());
    // Routing never waited for the slow subscriber.
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}
