//! What operators see and do: status through failure and recovery, model mapping, shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use relayrace_actors::HealthState;

use crate::{TestRelay, Upstream, complete_message, fault, header, message, yaml};

#[tokio::test]
async fn status_follows_a_failure_and_the_recovery() {
    let primary = fault("status=503").await;
    let fallback = fault("ok").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("fallback", &fallback),
        ],
        "health:\n  failure_threshold: 1\n  probe_interval: 300ms\n",
    ))
    .await;
    let mut events = relay.router.subscribe();
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "fallback");

    let status = relay.get_json("/status").await;
    assert_eq!(status["strategy"], "failover");
    let row = &status["providers"][0];
    assert_eq!(
        (row["name"].as_str(), row["state"].as_str()),
        (Some("primary"), Some("unhealthy"))
    );
    assert_eq!(row["circuit"], "open");
    assert!(row["last_error"].as_str().unwrap().contains("503"), "{row}");
    // What it serves, as configured: its name and a `*` that serves every other model.
    assert_eq!(row["models"], serde_json::json!(["model-primary", "*"]));
    assert_eq!(row["serves_every_model"], true);
    assert_eq!(status["providers"][1]["state"], "healthy");

    // The primary recovers; after its cool-off a probe brings it back.
    primary.set_scenario("ok".parse().unwrap());
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("no half-open transition")
            .unwrap();
        if event.to == HealthState::HalfOpen {
            break;
        }
    }
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "primary");
    let status = relay.get_json("/status").await;
    assert_eq!(status["providers"][0]["state"], "healthy");
    assert_eq!(status["providers"][0]["circuit"], "closed");
    relay.stop().await;
}

#[tokio::test]
async fn model_mapping_rewrites_only_the_model() {
    let upstream = fault("ok").await;
    let yaml = format!(
        "providers:\n  - name: zai\n    type: anthropic_compatible\n    base_url: {}\n    \
         model_mapping:\n      claude-test: glm-4.6\n",
        upstream.url()
    );
    let relay = TestRelay::start(&yaml).await;
    let body = complete_message(relay.post(&message(false)).send().await.unwrap()).await;
    assert_eq!(body["model"], "glm-4.6");
    let sent: serde_json::Value = serde_json::from_slice(&upstream.attempts()[0].body).unwrap();
    assert_eq!(sent["model"], "glm-4.6");
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["messages"][0]["content"], "Hi");
    // Without a key variable, no auth header is sent.
    assert!(upstream.attempts()[0].headers.get("x-api-key").is_none());
    relay.stop().await;
}

#[tokio::test]
async fn the_query_string_goes_upstream() {
    let upstream = fault("ok").await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("only", &upstream)], "")).await;
    let response = relay
        .client
        .post(format!("{}/v1/messages?beta=true", relay.url))
        .json(&message(false))
        .send()
        .await
        .unwrap();
    complete_message(response).await;
    relay.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let upstream = fault("words=6,event_delay_ms=100").await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("only", &upstream)], "")).await;
    let url = relay.url.clone();
    let response = relay.post(&message(true)).send().await.unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8_lossy(&body.next().await.unwrap().unwrap()).to_string();
    let stopping = tokio::spawn(relay.stop());
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.contains("event: message_stop"), "{text}");
    stopping.await.unwrap();
    // Stopped: nothing listens any more.
    let refused = reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .json(&message(false))
        .send()
        .await;
    assert!(refused.is_err());
}
