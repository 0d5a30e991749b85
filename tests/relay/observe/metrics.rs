//! `/metrics` counts what happened, and `/status` shows each provider's traffic.

use std::time::Duration;

use tokio::time::Instant;

use super::exposition::{Labels, scrape};
use super::{ask, fault};
use crate::{TestRelay, Upstream, header, yaml};

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_the_requests_made() {
    let a = fault("ok").await;
    let b = fault("ok").await;
    let c = fault("ok,headers_delay_ms=400").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("a", &a),
            Upstream::at("b", &b),
            Upstream::at("c", &c),
        ],
        "health:\n  failure_threshold: 1\n  probe_interval: 1m\n  max_probe_interval: 1m\n",
    ))
    .await;
    for stream in [false, false, false, true] {
        let response = relay.post(&ask("model-a", stream)).send().await.unwrap();
        assert_eq!(header(&response, "x-relayrace-provider"), "a");
        response.bytes().await.unwrap();
    }
    // a fails: it leaves rotation, b and c race, b wins and c is cancelled.
    a.set_scenario("status=503".parse().unwrap());
    let response = relay.post(&ask("model-a", false)).send().await.unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "b");
    // A model no provider lists, and a request rejected before routing.
    relay.post(&ask("made-up", false)).send().await.unwrap();
    let rejected = relay
        .client
        .post(format!("{}/v1/messages", relay.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);

    let mut metrics = scrape(&relay.client, &relay.url, None).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let transition = [("provider", "a"), ("from", "healthy"), ("to", "unhealthy")];
    while metrics
        .value("relayrace_health_transitions_total", &transition)
        .is_none()
    {
        assert!(Instant::now() < deadline, "no health transition counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
        metrics = scrape(&relay.client, &relay.url, None).await;
    }
    let expected: &[(&str, Labels<'_>, f64)] = &[
        (
            "relayrace_requests_total",
            &[("provider", "a"), ("model", "model-a"), ("outcome", "ok")],
            4.0,
        ),
        (
            "relayrace_requests_total",
            &[("provider", "b"), ("model", "model-a"), ("outcome", "ok")],
            1.0,
        ),
        (
            "relayrace_requests_total",
            &[("provider", "b"), ("model", "other"), ("outcome", "ok")],
            1.0,
        ),
        (
            "relayrace_requests_total",
            &[
                ("provider", "none"),
                ("model", "none"),
                ("outcome", "rejected"),
            ],
            1.0,
        ),
        ("relayrace_requests_in_flight", &[], 0.0),
        (
            "relayrace_attempts_total",
            &[("provider", "a"), ("outcome", "succeeded")],
            4.0,
        ),
        (
            "relayrace_attempts_total",
            &[("provider", "a"), ("outcome", "failed")],
            1.0,
        ),
        (
            "relayrace_attempts_total",
            &[("provider", "b"), ("outcome", "succeeded")],
            2.0,
        ),
        (
            "relayrace_attempts_total",
            &[("provider", "c"), ("outcome", "cancelled")],
            1.0,
        ),
        (
            "relayrace_attempt_failures_total",
            &[("provider", "a"), ("cause", "503")],
            1.0,
        ),
        (
            "relayrace_failovers_total",
            &[("provider", "a"), ("cause", "503")],
            1.0,
        ),
        ("relayrace_races_total", &[("result", "won")], 1.0),
        ("relayrace_race_wins_total", &[("provider", "b")], 1.0),
        (
            "relayrace_race_losers_cancelled_total",
            &[("provider", "c")],
            1.0,
        ),
        ("relayrace_health_transitions_total", &transition, 1.0),
        (
            "relayrace_provider_health",
            &[("provider", "a"), ("state", "unhealthy")],
            1.0,
        ),
        (
            "relayrace_provider_health",
            &[("provider", "a"), ("state", "healthy")],
            0.0,
        ),
        (
            "relayrace_provider_health",
            &[("provider", "b"), ("state", "healthy")],
            1.0,
        ),
        (
            "relayrace_time_to_first_event_seconds_count",
            &[("provider", "a")],
            4.0,
        ),
        (
            "relayrace_time_to_first_event_seconds_count",
            &[("provider", "b")],
            2.0,
        ),
        (
            "relayrace_request_duration_seconds_count",
            &[("provider", "a")],
            4.0,
        ),
        ("relayrace_overhead_seconds_count", &[], 6.0),
    ];
    for (name, labels, value) in expected {
        assert_eq!(
            metrics.value(name, labels),
            Some(*value),
            "{name} {labels:?}"
        );
    }
    let bucket = [("provider", "a"), ("le", "+Inf")];
    assert_eq!(
        metrics.value("relayrace_time_to_first_event_seconds_bucket", &bucket),
        Some(4.0)
    );

    let status = relay.get_json("/status").await;
    let a_row = &status["providers"][0];
    assert_eq!(
        (a_row["requests"].as_u64(), a_row["failovers"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(a_row["latency_p50_ms"].as_u64().is_some(), "{a_row}");
    assert!(a_row["first_event_p99_ms"].as_u64().is_some(), "{a_row}");
    assert_eq!(status["providers"][1]["requests"], 2);
    relay.stop().await;
}
