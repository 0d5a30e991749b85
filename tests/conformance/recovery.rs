//! Scenario 14 and row 20, on the default health settings: the primary is down for a while,
//! then healthy. Every request is served, traffic returns to the primary within 10 s of its
//! recovery, and the outage's cost in upstream attempts per client request is measured.
//!
//! At real scale (`scripts/conformance.sh --full`) the relay runs on the defaults as they are.
//! CI runs the same timeline at a tenth of the time, with every health duration of the
//! defaults scaled by the same tenth ([`HealthConfig::scaled`]), so the ratios are the
//! defaults'. The suite's provider timeouts are the suite's (see `docs/conformance.md`).

use std::time::Duration;

use relayrace_actors::HealthConfig;
use tokio::time::{Instant, sleep_until};

use crate::fixture::{Provider, ask, assert_bound, fault, human, relay, shared};
use crate::harness::message;
use crate::report::{Row, record};

/// The relay's health settings at `scale`: nothing at real scale, the defaults scaled below.
fn health_at(scale: f64) -> String {
    if scale >= 1.0 {
        return String::new();
    }
    let health = HealthConfig::default().scaled(scale);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        "health:\n  probe_interval: {}\n  max_probe_interval: {}\n  probe_timeout: {}\n  \
         rejected_probe_interval: {}\n  max_retry_after: {}\n",
        ms(health.probe_interval),
        ms(health.max_probe_interval),
        ms(health.probe_timeout),
        ms(health.rejected_probe_interval),
        ms(health.max_retry_after),
    )
}

fn scaled_note(scale: f64) -> &'static str {
    if scale < 1.0 {
        "the default health settings, every duration and the timeline scaled to 1/10 for CI"
    } else {
        "the default health settings; real scale"
    }
}

/// The scenario at `scale` (1.0 = the figures).
struct Timeline {
    outage: Duration,
    interval: Duration,
    requests: usize,
    back_within: Duration,
}

impl Timeline {
    fn at_scale(scale: f64) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(s * scale);
        Timeline {
            outage: secs(60.0),
            interval: secs(4.0),
            requests: 20,
            back_within: secs(10.0),
        }
    }
}

async fn primary_down_then_recovered(id: &str, scale: f64) {
    let _gate = shared().await;
    let plan = Timeline::at_scale(scale);
    let fallback = fault("ok").await;
    // The outage is counted from the fault server's start, so start it last; it recovers
    // a little after `recovered_at`, never before.
    let recovered_at = Instant::now() + plan.outage;
    let primary = fault(&format!("down_for_ms={}", plan.outage.as_millis())).await;
    let relay = relay(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        &health_at(scale),
    )
    .await;
    let start = Instant::now();
    let mut served = Vec::with_capacity(plan.requests);
    let mut slowest = Duration::ZERO;
    for i in 0..plan.requests {
        sleep_until(start + plan.interval * i as u32).await;
        let sent = Instant::now();
        let reply = ask(&relay, &message(i % 2 == 0)).await;
        assert!(reply.is_complete_answer(), "request {i}: {reply:?}");
        slowest = slowest.max(reply.elapsed);
        served.push((sent, reply.provider));
    }
    for (sent, provider) in &served {
        if *sent < recovered_at {
            assert_eq!(provider, "fallback", "the primary answered while down");
        }
    }
    let back = served
        .iter()
        .position(|(sent, provider)| *sent >= recovered_at && provider == "primary")
        .expect("traffic never returned to the primary");
    assert!(
        served[back..]
            .iter()
            .all(|(_, provider)| provider == "primary"),
        "traffic left the primary again: {served:?}"
    );
    let returned = served[back].0 - recovered_at;
    assert_bound(
        returned,
        plan.back_within,
        "back on the primary after recovery",
    );
    let from_fallback = served.iter().filter(|(_, p)| p == "fallback").count();
    record(Row {
        id,
        scenario: "primary down (503) for 60 s, then healthy; 20 requests, one every 4 s",
        configuration: format!(
            "primary `down_for_ms={}`; one request every {}; {}",
            plan.outage.as_millis(),
            human(plan.interval),
            scaled_note(scale)
        ),
        expected: "all served (from the fallback during the outage); after recovery, requests \
                   return to the primary within 10 s",
        outcome: format!(
            "{}/{} served ({from_fallback} by the fallback, {} by the primary); back on the \
             primary {} after it recovered (bound {}); slowest answer {}",
            served.len(),
            plan.requests,
            served.len() - from_fallback,
            human(returned),
            human(plan.back_within),
            human(slowest)
        ),
        time: returned,
        bound: plan.back_within,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_primary_down_then_recovered_serves_every_request_and_gets_traffic_back() {
    primary_down_then_recovered("14", 0.1).await;
}

#[tokio::test]
#[ignore = "80 s at real scale; run by scripts/conformance.sh --full"]
async fn a_primary_down_for_60s_then_recovered_gets_traffic_back_within_10s_at_real_scale() {
    primary_down_then_recovered("14-full", 1.0).await;
}

/// Upstream attempts (both fault servers) per client request over `requests` requests, one
/// every `interval`, and the slowest answer.
async fn cost_of(
    relay: &crate::harness::TestRelay,
    upstreams: [&relayrace_fault::FaultUpstream; 2],
    requests: usize,
    interval: Duration,
) -> (f64, Duration) {
    let attempts = || upstreams.iter().map(|u| u.attempt_count()).sum::<usize>();
    let before = attempts();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..requests {
        sleep_until(start + interval * i as u32).await;
        let reply = ask(relay, &message(i % 2 == 0)).await;
        assert!(reply.is_complete_answer(), "request {i}: {reply:?}");
        slowest = slowest.max(reply.elapsed);
    }
    let cost = (attempts() - before) as f64 / requests as f64;
    (cost, slowest)
}

/// Row 20: what each situation costs in upstream attempts per client request.
async fn attempts_per_client_request(id: &str, scale: f64) {
    let _gate = shared().await;
    let second = Duration::from_secs_f64(scale);
    let primary = fault("ok").await;
    let fallback = fault("ok").await;
    let relay = relay(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        &health_at(scale),
    )
    .await;
    let both = [&primary, &fallback];
    let (healthy, slow_healthy) = cost_of(&relay, both, 20, second).await;
    // The outage: the primary answers 503 at once; five failures take it out of rotation.
    primary.set_scenario("status=503".parse().unwrap());
    let (in_rotation, slow_in_rotation) = cost_of(&relay, both, 5, second).await;
    let (outage, slow_outage) = cost_of(&relay, both, 55, second).await;
    primary.set_scenario("ok".parse().unwrap());
    let slowest = slow_healthy.max(slow_in_rotation).max(slow_outage);
    let bound = Duration::from_secs(1);
    assert_bound(slowest, bound, "the slowest answer");
    assert_eq!(healthy, 1.0, "every provider healthy");
    assert_eq!(
        in_rotation, 2.0,
        "the primary fails fast, still in rotation"
    );
    // The target for the outage is 1.05; it conflicts with recovery within 10 s at a
    // request every 5 s (each failed probe is one extra attempt: 1.05 at one request a second
    // allows a probe every 20 s, recovery needs one every 4 s). The defaults keep recovery.
    assert!(outage > 1.0 && outage <= 1.34, "{outage}");
    record(Row {
        id,
        scenario: "upstream attempts per client request (both fault servers count)",
        configuration: format!(
            "one request a second; 20 with both healthy, then the primary `status=503`: 5 \
             while it is in rotation, 55 once it is out (a 60 s outage); {}",
            scaled_note(scale)
        ),
        expected: "healthy ≤ 1.00; the primary failing fast, in rotation ≤ 2.0; a 60 s outage \
                   at one request a second once the primary is out, probes included ≤ 1.05",
        outcome: format!(
            "healthy {healthy:.2}; in rotation {in_rotation:.2} (the primary once, then the \
             fallback: a 503 is not sent to the primary again); out of rotation {outage:.2} \
             (each probe that fails costs one attempt; probes every 3–4 s keep recovery within \
             10 s, so 1.05 is not met: see the README's routing section); slowest answer {}",
            human(slowest)
        ),
        time: slowest,
        bound,
    });
    relay.stop().await;
}

#[tokio::test]
async fn what_each_situation_costs_in_upstream_attempts_per_request() {
    attempts_per_client_request("20", 0.1).await;
}
