//! Routing by model over real sockets: only providers that serve a request's model get it.

use serde_json::{Value, json};

use crate::{TestRelay, fault, header};

/// Providers with their `models` (YAML flow lists), in priority order, then `extra` YAML.
fn config(providers: &[(&str, &str, &str)], extra: &str) -> String {
    let mut yaml = String::from("providers:\n");
    for (i, (name, url, models)) in providers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: {name}\n    type: anthropic_compatible\n    base_url: {url}\n    \
             priority: {}\n    models: {models}\n    \
             timeouts: {{connect: 1s, first_event: 600ms, idle: 600ms, total: 20s}}\n",
            i + 1
        ));
    }
    yaml.push_str(extra);
    yaml
}

fn asking(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Hi"}]
    })
}

async fn answered_by(relay: &TestRelay, model: &str) -> String {
    let response = relay.post(&asking(model)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{model}");
    header(&response, "x-relayrace-provider").to_owned()
}

#[tokio::test]
async fn a_haiku_request_reaches_only_a_haiku_serving_provider_and_a_pattern_matches_a_snapshot() {
    let opus = fault("ok,name=opus").await;
    let haiku = fault("ok,name=haiku").await;
    let relay = TestRelay::start(&config(
        &[
            ("opus", &opus.url(), "[claude-opus-4-6]"),
            ("haiku", &haiku.url(), "[\"claude-haiku-*\"]"),
        ],
        "",
    ))
    .await;
    assert_eq!(
        answered_by(&relay, "claude-haiku-4-5-20251001").await,
        "haiku"
    );
    assert_eq!(answered_by(&relay, "claude-haiku-4-5").await, "haiku");
    assert_eq!(answered_by(&relay, "claude-opus-4-6").await, "opus");
    assert_eq!(opus.attempt_count(), 1);
    assert_eq!(haiku.attempt_count(), 2);
    // count_tokens is routed the same way.
    let count = relay
        .client
        .post(format!("{}/v1/messages/count_tokens", relay.url))
        .header("anthropic-version", "2023-06-01")
        .json(&asking("claude-haiku-4-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&count, "x-relayrace-provider"), "haiku");
    // `/status` shows what each serves, patterns included.
    let status = relay.get_json("/status").await;
    let served: Vec<(&Value, &Value)> = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (&row["models"], &row["serves_every_model"]))
        .collect();
    assert_eq!(
        served,
        [
            (&json!(["claude-opus-4-6"]), &json!(false)),
            (&json!(["claude-haiku-*"]), &json!(false)),
        ]
    );
    relay.stop().await;
}

#[tokio::test]
async fn an_unserved_model_gets_a_404_naming_it_and_what_is_served_with_no_attempt() {
    let opus = fault("ok").await;
    let haiku = fault("ok").await;
    let relay = TestRelay::start(&config(
        &[
            ("opus", &opus.url(), "[claude-opus-4-6]"),
            ("haiku", &haiku.url(), "[\"claude-haiku-*\"]"),
        ],
        "",
    ))
    .await;
    let response = relay.post(&asking("gpt-5")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(header(&response, "x-relayrace-attempts"), "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    let message = body["error"]["message"].as_str().unwrap();
    for named in ["gpt-5", "claude-opus-4-6", "claude-haiku-*"] {
        assert!(message.contains(named), "{message}");
    }
    assert_eq!(opus.attempt_count() + haiku.attempt_count(), 0);
    relay.stop().await;
}

#[tokio::test]
async fn a_wrong_models_list_fails_over_on_the_providers_404_and_is_reported() {
    let wrong = fault("status=404,message=model: claude-opus-4-6").await;
    let right = fault("ok,name=right").await;
    let relay = TestRelay::start(&config(
        &[
            ("wrong", &wrong.url(), "[\"claude-*\"]"),
            ("right", &right.url(), "[\"claude-*\"]"),
        ],
        "",
    ))
    .await;
    let mut events = relay
        .client
        .get(format!("{}/v1/relay/events", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answered_by(&relay, "claude-opus-4-6").await, "right");
    let event = loop {
        let chunk = events.chunk().await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&chunk).into_owned();
        if text.contains("event: failover") {
            break text;
        }
    };
    assert!(event.contains(r#""not_serving":["wrong"]"#), "{event}");
    let metrics = relay.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("relayrace_model_not_served_total")
                && line.contains(r#"provider="wrong""#)),
        "{metrics}"
    );
    // Its health is left alone: the list was wrong, not the provider.
    let status = relay.get_json("/status").await;
    assert_eq!(status["providers"][0]["state"], "healthy");
    relay.stop().await;
}

#[tokio::test]
async fn a_per_model_order_takes_effect() {
    let anthropic = fault("ok,name=anthropic").await;
    let cheap = fault("ok,name=cheap").await;
    let relay = TestRelay::start(&config(
        &[
            ("anthropic", &anthropic.url(), "[]"),
            ("cheap", &cheap.url(), "[]"),
        ],
        "routing:\n  model_order:\n    - model: \"claude-haiku-*\"\n      providers: [cheap]\n",
    ))
    .await;
    assert_eq!(answered_by(&relay, "claude-haiku-4-5").await, "cheap");
    assert_eq!(answered_by(&relay, "claude-opus-4-6").await, "anthropic");
    // No list: an empty one in `/status`, and no doubt about what it means.
    let status = relay.get_json("/status").await;
    assert_eq!(status["providers"][0]["models"], json!([]));
    assert_eq!(status["providers"][0]["serves_every_model"], true);
    relay.stop().await;
}

#[tokio::test]
async fn round_robin_rotation_is_kept_per_model() {
    let a = fault("ok,name=a").await;
    let b = fault("ok,name=b").await;
    let relay = TestRelay::start(&config(
        &[("a", &a.url(), "[]"), ("b", &b.url(), "[]")],
        "routing:\n  strategy: round_robin\n",
    ))
    .await;
    let mut opus = Vec::new();
    for _ in 0..2 {
        opus.push(answered_by(&relay, "claude-opus-4-6").await);
        // A haiku request in between does not take opus's turn.
        answered_by(&relay, "claude-haiku-4-5").await;
    }
    assert_eq!(opus, ["a", "b"]);
    relay.stop().await;
}
