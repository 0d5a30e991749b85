//! select, route without failures, strategies, enable/disable, every RouteError variant.

use std::collections::HashMap;

use relayrace_actors::testing::Step;
use relayrace_actors::{
    AttemptError, HealthState, RouteError, Runtime, RuntimeConfig, StrategyKind, Trigger,
};

use crate::{Harness, config, fake};

#[tokio::test(start_paused = true)]
async fn select_returns_the_highest_priority_healthy_provider() {
    let mut config = config(&["a", "b", "c"]);
    config.providers[0].priority = 3;
    config.providers[2].priority = 1;
    let harness = Harness::start(config, fake()).await;
    assert_eq!(harness.select().await, "c");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ties_in_priority_go_to_the_provider_configured_first() {
    let mut config = config(&["a", "b"]);
    config.providers[1].priority = 1;
    let harness = Harness::start(config, fake()).await;
    assert_eq!(harness.select().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn select_without_providers_is_an_error() {
    let harness = Harness::start(RuntimeConfig::default(), fake()).await;
    let error = harness.handle().select().await.unwrap_err();
    assert!(matches!(error, RouteError::NoProviders), "{error:?}");
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    assert!(matches!(error, RouteError::NoProviders), "{error:?}");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn select_with_every_provider_unhealthy_is_an_error() {
    let mut config = config(&["a", "b"]);
    config.health.failure_threshold = 1;
    let fake = fake()
        .script("a", [Step::status(503)])
        .script("b", [Step::status(503)]);
    let harness = Harness::start(config, fake).await;
    let error = harness.handle().route("x".to_owned()).await.unwrap_err();
    assert!(matches!(error, RouteError::Exhausted { .. }), "{error:?}");
    let error = harness.handle().select().await.unwrap_err();
    assert!(matches!(error, RouteError::AllUnhealthy), "{error:?}");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_successful_primary_makes_exactly_one_attempt() {
    let fake = fake().script("a", [Step::ok()]).script("b", [Step::ok()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let routed = harness.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "a");
    assert_eq!(routed.report.winner().name(), "a");
    assert_eq!(routed.report.attempts.len(), 1);
    assert!(!routed.report.raced());
    assert_eq!((harness.fake.calls("a"), harness.fake.calls("b")), (1, 0));
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn round_robin_routes_each_provider_in_turn() {
    let mut config = config(&["a", "b", "c"]);
    config.routing.strategy = StrategyKind::RoundRobin;
    let harness = Harness::start(config, fake()).await;
    let mut order = Vec::new();
    for _ in 0..9 {
        order.push(harness.route_ok().await);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn weighted_round_robin_gives_each_provider_its_exact_share() {
    let mut config = config(&["a", "b", "c"]);
    config.routing.strategy = StrategyKind::WeightedRoundRobin;
    for (provider, weight) in config.providers.iter_mut().zip([3, 2, 1]) {
        provider.weight = weight;
    }
    let harness = Harness::start(config, fake()).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut first_cycle = Vec::new();
    for i in 0..60 {
        let winner = harness.route_ok().await;
        if i < 6 {
            first_cycle.push(winner.clone());
        }
        *counts.entry(winner).or_default() += 1;
    }
    assert_eq!((counts["a"], counts["b"], counts["c"]), (30, 20, 10));
    // Smooth: the heavy provider never takes its whole share in one burst.
    assert_eq!(first_cycle, ["a", "b", "a", "c", "b", "a"]);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shuffle_deals_every_provider_once_per_deck() {
    let mut config = config(&["a", "b", "c", "d"]);
    config.routing.strategy = StrategyKind::Shuffle;
    let harness = Harness::start(config, fake()).await;
    let mut decks = Vec::new();
    for _ in 0..25 {
        let mut deck = Vec::new();
        for _ in 0..4 {
            deck.push(harness.select().await);
        }
        decks.push(deck.clone());
        deck.sort();
        assert_eq!(deck, ["a", "b", "c", "d"]);
    }
    decks.dedup();
    assert!(decks.len() > 5, "a new permutation per deck: {decks:?}");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_disabled_provider_leaves_routing_and_returns_when_enabled() {
    let mut harness = Harness::start(config(&["a", "b"]), fake()).await;
    harness.handle().set_enabled("a", false).await.unwrap();
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Healthy, HealthState::Disabled)
    );
    assert_eq!(harness.route_ok().await, "b");
    let snapshot = harness.handle().snapshot().await.unwrap();
    assert_eq!(snapshot[0].state, HealthState::Disabled);
    harness.handle().set_enabled("a", true).await.unwrap();
    assert_eq!(
        harness.next_event().await,
        ("a".into(), HealthState::Disabled, HealthState::Healthy)
    );
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_provider_configured_disabled_starts_out_of_routing() {
    let mut config = config(&["a", "b"]);
    config.providers[0].enabled = false;
    let harness = Harness::start(config, fake()).await;
    assert_eq!(harness.select().await, "b");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn enabling_an_unknown_provider_is_an_error() {
    let harness = Harness::start(config(&["a"]), fake()).await;
    let error = harness
        .handle()
        .set_enabled("zzz", false)
        .await
        .unwrap_err();
    assert!(matches!(error, RouteError::UnknownProvider(ref name) if name == "zzz"));
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn snapshot_shows_priority_weight_state_and_counters() {
    let fake = fake().script("a", [Step::status(400), Step::ok()]);
    let harness = Harness::start(config(&["a", "b"]), fake).await;
    let _ = harness.handle().route("x".to_owned()).await;
    harness.route_ok().await;
    let snapshot = harness.handle().snapshot().await.unwrap();
    let a = &snapshot[0];
    assert_eq!((a.name.as_str(), a.priority, a.weight), ("a", 1, 1));
    let status = a.status.as_ref().unwrap();
    assert_eq!(status.state, HealthState::Healthy);
    assert_eq!(status.counters.attempts, 2);
    assert_eq!(status.counters.successes, 1);
    assert_eq!(status.counters.client_errors, 1);
    assert_eq!(status.counters.failures, 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_does_not_start() {
    let mut config = config(&["a", "a"]);
    config.health.half_open_probes = 0;
    let error = Runtime::start(config, crate::fake()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("providers[1].name"), "{text}");
    assert!(text.contains("health.half_open_probes"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn routing_after_shutdown_reports_the_runtime_stopped() {
    let harness = Harness::start(config(&["a"]), fake()).await;
    let handle = harness.handle();
    harness.shutdown().await;
    let error = handle.route("x".to_owned()).await.unwrap_err();
    assert!(matches!(error, RouteError::Stopped), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn embedders_can_add_their_own_trigger() {
    struct OnForbidden;
    impl Trigger for OnForbidden {
        fn matches(&self, error: &AttemptError) -> bool {
            error.status_code() == Some(403)
        }
    }
    let fake = std::sync::Arc::new(fake().script("a", [Step::status(403)]));
    let runtime = Runtime::builder(config(&["a", "b"]), fake.clone())
        .trigger(OnForbidden)
        .start()
        .await
        .unwrap();
    let routed = runtime.handle().route("x".to_owned()).await.unwrap();
    assert_eq!(routed.response.provider, "b");
    runtime.shutdown(crate::SECOND).await;
}

#[tokio::test(start_paused = true)]
async fn a_provider_at_its_bound_on_attempts_in_flight_is_passed_over_until_one_ends() {
    let mut config = crate::config(&["a", "b"]);
    config.providers[0] = relayrace_actors::ProviderSettings::new("a")
        .priority(1)
        .max_concurrent_attempts(2);
    let fake = crate::fake().script(
        "a",
        [relayrace_actors::testing::Step::ok().after(100 * crate::MS)],
    );
    let harness = crate::Harness::start(config, fake).await;
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let handle = harness.handle();
            tokio::spawn(async move {
                handle
                    .route("x".to_owned())
                    .await
                    .unwrap()
                    .response
                    .provider
            })
        })
        .collect();
    let mut answered = Vec::new();
    for request in requests {
        answered.push(request.await.unwrap());
    }
    answered.sort();
    assert_eq!(answered, ["a", "a", "b", "b"]);
    // Once its attempts ended, a has room again.
    assert_eq!(harness.route_ok().await, "a");
    harness.shutdown().await;
}
