//! Routing by model: eligibility, per-model order, a model nobody serves, a provider whose
//! model list was wrong, and rotation kept per model.

use relayrace_actors::testing::Step;
use relayrace_actors::{
    AttemptError, Detail, ModelOrder, ProviderSettings, RouteError, RuntimeConfig, StrategyKind,
};

use crate::{Harness, fake};

fn providers(list: &[(&str, &[&str])]) -> RuntimeConfig {
    let mut config =
        RuntimeConfig::with_providers(list.iter().enumerate().map(|(i, (name, models))| {
            ProviderSettings::new(*name)
                .priority(i as u32 + 1)
                .serves(models.iter().copied())
        }));
    config.routing.seed = Some(7);
    config
}

async fn winner(harness: &Harness, model: &str) -> String {
    let routed = harness
        .handle()
        .route(format!("model:{model}"))
        .await
        .unwrap();
    routed.response.provider
}

#[tokio::test(start_paused = true)]
async fn a_request_reaches_only_providers_that_serve_its_model() {
    let config = providers(&[
        ("opus-only", &["claude-opus-4-6"]),
        ("haiku", &["claude-haiku-*"]),
        ("anything", &[]),
    ]);
    let harness = Harness::start(config, fake()).await;
    assert_eq!(winner(&harness, "claude-haiku-4-5-20251001").await, "haiku");
    assert_eq!(winner(&harness, "claude-opus-4-6").await, "opus-only");
    assert_eq!(winner(&harness, "claude-sonnet-4-5").await, "anything");
    // Without a model, every provider is eligible, as before.
    assert_eq!(harness.route_ok().await, "opus-only");
    assert_eq!(
        harness
            .handle()
            .select_model("claude-haiku-4-5")
            .await
            .unwrap()
            .name(),
        "haiku"
    );
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_race_includes_only_providers_that_serve_the_model() {
    let config = providers(&[
        ("a", &["claude-haiku-*"]),
        ("opus", &["claude-opus-*"]),
        ("b", &["claude-haiku-*"]),
    ]);
    let fake = fake().script("a", [Step::status(503)]);
    let harness = Harness::start(config, fake).await;
    let routed = harness
        .handle()
        .route("model:claude-haiku-4-5".to_owned())
        .await
        .unwrap();
    assert_eq!(routed.response.provider, "b");
    let tried: Vec<&str> = routed
        .report
        .attempts
        .iter()
        .map(|a| a.provider.name())
        .collect();
    assert_eq!(tried, ["a", "b"]);
    assert_eq!(harness.fake.calls("opus"), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_model_nobody_serves_is_an_error_naming_what_is_served_with_no_attempt() {
    let mut config = providers(&[
        ("a", &["claude-opus-4-6"]),
        ("b", &["claude-haiku-*"]),
        ("off", &["gpt-*"]),
    ]);
    config.providers[2].enabled = false;
    let harness = Harness::start(config, fake()).await;
    for model in ["gpt-5", "claude-sonnet-4-5"] {
        let error = harness
            .handle()
            .route(format!("model:{model}"))
            .await
            .unwrap_err();
        let RouteError::ModelNotServed {
            model: asked,
            served,
        } = &error
        else {
            panic!("expected ModelNotServed, got {error:?}");
        };
        assert_eq!(asked, model);
        assert_eq!(served, &["claude-opus-4-6", "claude-haiku-*"]);
        assert!(error.to_string().contains(model), "{error}");
    }
    assert_eq!(harness.fake.calls("a") + harness.fake.calls("b"), 0);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_does_not_serve_the_model_fails_over_and_keeps_its_health() {
    let config = providers(&[("wrong-list", &[]), ("right", &[])]);
    let unserved = AttemptError::NotServed {
        status: 404,
        detail: Detail::default(),
    };
    let fake = fake().script("wrong-list", [Step::fail(unserved)]);
    let harness = Harness::start(config, fake).await;
    for _ in 0..8 {
        assert_eq!(winner(&harness, "claude-opus-4-6").await, "right");
    }
    let snapshot = harness.handle().snapshot().await.unwrap();
    let status = snapshot[0].status.as_ref().unwrap();
    assert_eq!(
        status.consecutive_failures, 0,
        "not held against its health"
    );
    assert_eq!(harness.fake.calls("wrong-list"), 8);
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_per_model_order_takes_effect_and_other_models_keep_the_priorities() {
    let mut config = providers(&[("anthropic", &[]), ("cheap", &[]), ("zai", &[])]);
    config.routing.model_order = vec![
        ModelOrder {
            model: "claude-haiku-*".into(),
            providers: vec!["cheap".into()],
        },
        ModelOrder {
            model: "claude-opus-*".into(),
            providers: vec!["zai".into(), "anthropic".into()],
        },
    ];
    let fake = fake().script("zai", [Step::status(503)]);
    let harness = Harness::start(config, fake).await;
    assert_eq!(winner(&harness, "claude-haiku-4-5").await, "cheap");
    assert_eq!(winner(&harness, "claude-sonnet-4-5").await, "anthropic");
    // zai first for opus; when it fails, anthropic (second in the rule) wins the race.
    let routed = harness
        .handle()
        .route("model:claude-opus-4-6".to_owned())
        .await
        .unwrap();
    assert_eq!(routed.report.attempts[0].provider.name(), "zai");
    assert_eq!(routed.response.provider, "anthropic");
    harness.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rotation_is_kept_per_model() {
    let mut config = providers(&[("a", &[]), ("b", &[]), ("c", &[])]);
    config.routing.strategy = StrategyKind::RoundRobin;
    let harness = Harness::start(config, fake()).await;
    let mut opus = Vec::new();
    let mut haiku = Vec::new();
    for _ in 0..3 {
        opus.push(winner(&harness, "claude-opus-4-6").await);
        // Haiku traffic in between must not skew opus's turn.
        haiku.push(winner(&harness, "claude-haiku-4-5").await);
        haiku.push(winner(&harness, "claude-haiku-4-5").await);
    }
    assert_eq!(opus, ["a", "b", "c"]);
    assert_eq!(haiku, ["a", "b", "c", "a", "b", "c"]);
    harness.shutdown().await;
}
