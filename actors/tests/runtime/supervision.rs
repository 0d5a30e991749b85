//! The root supervisor: restarts, the restart limit, shutdown.

use relayrace_actors::testing::Step;
use relayrace_actors::{HealthState, RouteError};

use crate::{Harness, SECOND, config, fake};

#[tokio::test(start_paused = true)]
async fn a_provider_actor_that_panics_is_restarted_and_routing_continues() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503), Step::ok()]);
    let mut harness = Harness::start(config, fake).await;
    assert_eq!(harness.route_ok().await, "b");
    harness.next_event().await; // a unhealthy
    harness.handle().crash_provider("a").await.unwrap();
    // The restart event says what state the provider crashed in; its successor starts healthy.
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Unhealthy, HealthState::Healthy)
    );
    assert_eq!(harness.route_ok().await, "a");
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn past_the_restart_limit_a_provider_is_failed_and_left_out() {
    let mut harness = Harness::start(config(&["a", "b"]), fake()).await;
    for _ in 0..3 {
        harness.handle().crash_provider("a").await.unwrap();
        assert_eq!(harness.next_event().await.2, HealthState::Healthy);
    }
    harness.handle().crash_provider("a").await.unwrap();
    // The event names the state the provider crashed in, not "failed" twice.
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::Failed)
    );
    assert_eq!(harness.select().await, "b");
    assert_eq!(harness.route_ok().await, "b");
    let snapshot = harness.handle().snapshot().await.unwrap();
    assert_eq!(snapshot[0].state, HealthState::Failed);
    assert!(snapshot[0].status.is_none());
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_count() {
    let mut harness = Harness::start(config(&["a", "b"]), fake()).await;
    for _ in 0..6 {
        harness.handle().crash_provider("a").await.unwrap();
        assert_eq!(harness.next_event().await.2, HealthState::Healthy);
        tokio::time::sleep(4 * SECOND).await;
    }
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_router_is_restarted_and_keeps_the_providers_health() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake().script("a", [Step::status(503)]);
    let mut harness = Harness::start(config, fake).await;
    assert_eq!(harness.route_ok().await, "b");
    harness.next_event().await; // a unhealthy
    // Returns once a successor router has taken over: fails if the crash is ignored.
    harness.handle().crash_router().await.unwrap();
    // "a" would answer now if its health had been lost with the router.
    assert_eq!(harness.route_ok().await, "b");
    assert_eq!(harness.select().await, "b");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_running_race_finish_within_the_grace_period() {
    let fake = fake()
        .script("a", [Step::status(503)])
        .script("b", [Step::ok().after(500 * crate::MS)]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let handle = harness.handle();
    let request = tokio::spawn(async move { handle.route("x".to_owned()).await });
    tokio::time::sleep(100 * crate::MS).await;
    assert!(harness.handle().race_actors_alive() > 0);
    let handle = harness.handle();
    harness.runtime.shutdown(2 * SECOND).await;
    assert_eq!(request.await.unwrap().unwrap().response.provider, "b");
    assert_eq!(handle.race_actors_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_what_outlives_the_grace_period() {
    let fake = fake()
        .script("a", [Step::status(503)])
        .script("b", [Step::hang()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let handle = harness.handle();
    let request = tokio::spawn(async move { handle.route("x".to_owned()).await });
    tokio::time::sleep(100 * crate::MS).await;
    let handle = harness.handle();
    let fake = harness.fake.clone();
    let started = tokio::time::Instant::now();
    harness.runtime.shutdown(SECOND).await;
    assert!(started.elapsed() <= 2 * SECOND);
    let error = request.await.unwrap().unwrap_err();
    assert!(matches!(error, RouteError::Stopped), "{error:?}");
    fake.wait_cancelled("b", 1).await;
    assert_eq!(handle.race_actors_alive(), 0);
    assert_eq!(fake.in_flight(), 0);
}
