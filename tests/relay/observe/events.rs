//! The event stream: in order to every watcher; never waiting for a slow one.

use std::time::Duration;

use axum::body::Body;
use relayrace::observe::RelayEvent;
use tokio::time::Instant;
use tower::ServiceExt;

use super::exposition::scrape;
use super::{Observed, Watcher, ask, fault, is_health_to, outline};
use crate::{TestRelay, Upstream, header, yaml};

#[tokio::test]
async fn two_watchers_see_a_failing_provider_leave_and_return_in_order() {
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
    let mut first = Watcher::connect(&relay.client, &relay.url, None).await;
    let mut second = Watcher::connect(&relay.client, &relay.url, None).await;

    let response = relay
        .post(&ask("model-primary", false))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "fallback");
    let request_id = header(&response, "x-relayrace-request-id").to_owned();
    primary.set_scenario("ok".parse().unwrap());
    let mut seen = first.until(is_health_to("primary", "half_open")).await;
    // The probe brings the primary back.
    let response = relay
        .post(&ask("model-primary", false))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "primary");
    seen.extend(first.until(is_health_to("primary", "healthy")).await);
    let also_seen = second.until(is_health_to("primary", "healthy")).await;

    let expected = [
        "snapshot primary=healthy fallback=healthy",
        "health primary healthy->unhealthy",
        "failover primary (503) -> fallback",
        "health primary unhealthy->half_open",
        "health primary half_open->healthy",
    ];
    assert_eq!(outline(&seen), expected);
    // Each takes its own snapshot; every event after it is the same, in the same order.
    assert_eq!(outline(&also_seen), expected);
    assert_eq!(
        also_seen[1..],
        seen[1..],
        "both watchers see the same events"
    );
    let RelayEvent::Failover(failover) = &seen[2] else {
        panic!("failover expected");
    };
    assert_eq!(failover.request_id, request_id);
    assert_eq!(failover.model, "model-primary");
    let attempts: Vec<(&str, &str)> = failover
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(attempts, [("primary", "failed"), ("fallback", "succeeded")]);
    let RelayEvent::Health(unhealthy) = &seen[1] else {
        panic!("health expected");
    };
    assert!(unhealthy.reason.contains("503"), "{unhealthy:?}");
    relay.stop().await;
}

#[tokio::test]
async fn a_watcher_that_never_reads_delays_no_request_and_is_told_what_it_missed() {
    let primary = fault("status=503").await;
    let fallback = fault("ok").await;
    let relay = Observed::start(
        &yaml(
            &[
                Upstream::at("primary", &primary),
                Upstream::at("fallback", &fallback),
            ],
            "health:\n  failure_threshold: 1000\nsupervision:\n  event_capacity: 4\n",
        ),
        &[],
        false,
    )
    .await;
    // One watcher whose stream is never polled, one on a socket that is never read.
    let request = http::Request::get("/v1/relay/events")
        .body(Body::empty())
        .unwrap();
    let unpolled = relay.relay_app.clone().oneshot(request).await.unwrap();
    assert_eq!(unpolled.status(), 200);
    let unread = relay
        .client
        .get(format!("{}/v1/relay/events", relay.url))
        .send()
        .await
        .unwrap();

    for n in 0..20 {
        let started = Instant::now();
        let response = relay
            .post(&ask("model-primary", false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&response, "x-relayrace-provider"),
            "fallback",
            "request {n}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {n} took {:?}",
            started.elapsed()
        );
    }

    let mut slow = Watcher::from_body(unpolled.into_body());
    let events = outline(&[slow.next().await, slow.next().await, slow.next().await]);
    assert_eq!(
        events,
        [
            "snapshot primary=healthy fallback=healthy",
            "lagged failover 16",
            "failover primary (503) -> fallback",
        ]
    );
    drop(unread);
    // At least what the unpolled watcher missed (the socket's may have missed some too).
    let metrics = scrape(&relay.client, &relay.url, None).await;
    let missed = metrics.value(
        "relayrace_watcher_missed_events_total",
        &[("stream", "failover")],
    );
    assert!(missed >= Some(16.0), "{missed:?}");
    relay.stop().await;
}
