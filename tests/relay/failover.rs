//! Failover before the commit point, and its absence for non-trigger errors.

use std::time::Duration;

use serde_json::Value;

use crate::{
    TestRelay, Upstream, closed_port, complete_message, event_names, fault, header, message, yaml,
};

/// Primary misbehaves as `scenario`, fallback answers; the client gets the fallback's answer.
async fn fails_over(scenario: &str, stream: bool) {
    let primary = fault(scenario).await;
    let fallback = fault("ok,name=fallback").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("fallback", &fallback),
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(stream)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{scenario}");
    assert_eq!(
        header(&response, "x-relayrace-provider"),
        "fallback",
        "{scenario}"
    );
    let attempts: usize = header(&response, "x-relayrace-attempts").parse().unwrap();
    assert!(attempts >= 2, "{scenario}: {attempts} attempts");
    if stream {
        let (events, _) = event_names(response).await;
        assert_eq!(
            events.first().map(String::as_str),
            Some("message_start"),
            "{scenario}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("message_stop"),
            "{scenario}"
        );
    } else {
        complete_message(response).await;
    }
    assert!(
        primary.attempt_count() >= 1,
        "{scenario}: the primary was tried"
    );
    relay.stop().await;
}

#[tokio::test]
async fn fails_over_on_rate_limit_server_errors_and_overload() {
    for scenario in ["status=429", "status=500", "status=503", "status=529"] {
        fails_over(scenario, false).await;
        fails_over(scenario, true).await;
    }
}

#[tokio::test]
async fn fails_over_when_the_primary_resets_the_connection() {
    fails_over("reset", false).await;
}

#[tokio::test]
async fn fails_over_on_an_error_event_as_the_first_frame_of_a_200() {
    fails_over("error_event", true).await;
}

#[tokio::test]
async fn fails_over_when_the_first_event_does_not_come_in_time() {
    fails_over("first_event_delay_ms=5000", true).await;
}

#[tokio::test]
async fn fails_over_when_the_primary_never_answers() {
    fails_over("silent", false).await;
}

#[tokio::test]
async fn fails_over_when_the_primary_refuses_connections() {
    let fallback = fault("ok,name=fallback").await;
    let refused = closed_port().await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream {
                name: "primary",
                url: refused,
            },
            Upstream::at("fallback", &fallback),
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "fallback");
    complete_message(response).await;
    relay.stop().await;
}

#[tokio::test]
async fn client_errors_reach_the_client_unchanged_without_failover() {
    let primary = fault("status=400,message=prompt is too long").await;
    let fallback = fault("ok").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("fallback", &fallback),
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(header(&response, "x-relayrace-attempts"), "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["message"], "prompt is too long");
    assert_eq!(fallback.attempt_count(), 0, "a 400 must not fail over");
    relay.stop().await;
}

#[tokio::test]
async fn a_refused_relay_key_fails_over_and_rejects_the_provider() {
    for status in [401, 403, 402] {
        let scenario = format!("status={status},message=invalid x-api-key");
        let primary = fault(&scenario).await;
        let fallback = fault("ok,name=fallback").await;
        let relay = TestRelay::start(&yaml(
            &[
                Upstream::at("primary", &primary),
                Upstream::at("fallback", &fallback),
            ],
            "",
        ))
        .await;
        for _ in 0..3 {
            let response = relay.post(&message(false)).send().await.unwrap();
            assert_eq!(header(&response, "x-relayrace-provider"), "fallback");
            complete_message(response).await;
        }
        assert_eq!(
            primary.attempt_count(),
            1,
            "{status}: out of rotation at once"
        );
        let status_page = relay.get_json("/status").await;
        let row = &status_page["providers"][0];
        assert_eq!(row["name"], "primary");
        assert_eq!(row["state"], "rejected", "{status}: {row}");
        relay.stop().await;
    }
}

#[tokio::test]
async fn a_refused_relay_key_alone_is_a_502_that_says_so_not_a_401() {
    let primary = fault("status=401,message=invalid x-api-key").await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("primary", &primary)], "")).await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(text.contains("refused the relay's credential"), "{text}");
    relay.stop().await;
}

#[tokio::test]
async fn with_passthrough_a_refused_client_credential_reaches_the_client_and_health_is_untouched() {
    for status in [401, 403] {
        let primary = fault(&format!("status={status},message=invalid x-api-key")).await;
        let fallback = fault("ok").await;
        let yaml = format!(
            "providers:\n  - name: primary\n    type: anthropic\n    base_url: {}\n    \
             auth: passthrough\n    priority: 1\n  - name: fallback\n    type: \
             anthropic_compatible\n    base_url: {}\n    priority: 2\n",
            primary.url(),
            fallback.url()
        );
        let relay = TestRelay::start(&yaml).await;
        for _ in 0..6 {
            let response = relay
                .post(&message(false))
                .header("x-api-key", "sk-ant-client-own-key")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["message"], "invalid x-api-key");
        }
        assert_eq!(fallback.attempt_count(), 0, "{status} must not fail over");
        let status_page = relay.get_json("/status").await;
        let row = &status_page["providers"][0];
        assert_eq!(row["state"], "healthy", "{row}");
        assert_eq!(row["consecutive_failures"], 0, "{row}");
        relay.stop().await;
    }
}

#[tokio::test]
async fn the_losers_upstream_connections_are_closed() {
    let primary = fault("status=503").await;
    let slow = fault("headers_delay_ms=3000,name=slow").await;
    let fast = fault("ok,name=fast").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("slow", &slow),
            Upstream::at("fast", &fast),
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "fast");
    complete_message(response).await;
    tokio::time::timeout(Duration::from_secs(2), slow.wait_for_disconnects(1))
        .await
        .expect("the slow loser's connection was not closed");
    relay.stop().await;
}

#[tokio::test]
async fn every_provider_failing_returns_the_last_upstream_error_with_its_retry_after() {
    let primary = fault("status=503").await;
    let fallback = fault("status=429,retry_after=7").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("fallback", &fallback),
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after"), "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    relay.stop().await;
}

#[tokio::test]
async fn every_provider_unreachable_is_a_clean_502() {
    let relay = TestRelay::start(&yaml(
        &[
            Upstream {
                name: "a",
                url: closed_port().await,
            },
            Upstream {
                name: "b",
                url: closed_port().await,
            },
        ],
        "",
    ))
    .await;
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    relay.stop().await;
}
