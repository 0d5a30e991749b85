//! A hedged request as operators see it: its attempts header, its failover event with cause
//! `hedge`, the hedge counters and budget in `/metrics` and `/status`, its log line.

use relayrace::observe::RelayEvent;

use super::exposition::scrape;
use super::{Watcher, ask, fault, outline};
use crate::streaming::Capture;
use crate::{TestRelay, Upstream, header, yaml};

/// The harness's providers time out after 600 ms without a first event; the hedge delay is
/// shortened to fit under it (the defaults' own timing is tested in the runtime, paused).
const HEDGE: &str =
    "routing:\n  hedge:\n    min_delay: 100ms\n    initial_delay: {under_32kb: 150ms}\n";

#[tokio::test]
async fn a_hedged_request_is_counted_announced_logged_and_shown() {
    let capture = Capture::global();
    let slow = fault("ok,first_event_delay_ms=450").await;
    let fast = fault("ok").await;
    let relay = TestRelay::start(&yaml(
        &[Upstream::at("slow", &slow), Upstream::at("fast", &fast)],
        HEDGE,
    ))
    .await;
    let mut watcher = Watcher::connect(&relay.client, &relay.url, None).await;
    let response = relay.post(&ask("model-slow", true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-relayrace-provider"), "fast");
    assert_eq!(
        header(&response, "x-relayrace-attempts"),
        "2",
        "the hedge counts"
    );
    let request_id = header(&response, "x-relayrace-request-id").to_owned();
    let (names, _) = crate::event_names(response).await;
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));

    let seen = watcher
        .until(|event| matches!(event, RelayEvent::Failover(_)))
        .await;
    assert_eq!(outline(&seen)[1..], ["failover slow (hedge) -> fast"]);
    let RelayEvent::Failover(failover) = &seen[1] else {
        panic!("failover expected");
    };
    assert_eq!(failover.request_id, request_id);
    let attempts: Vec<(&str, &str)> = failover
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(attempts, [("slow", "cancelled"), ("fast", "succeeded")]);

    let metrics = scrape(&relay.client, &relay.url, None).await;
    let hedges = |outcome| metrics.value("relayrace_hedges_total", &[("outcome", outcome)]);
    assert_eq!(hedges("started"), Some(1.0));
    assert_eq!(hedges("won_by_hedge"), Some(1.0));
    assert_eq!(hedges("won_by_original"), Some(0.0));
    assert_eq!(hedges("budget_spent"), Some(0.0));
    assert_eq!(
        metrics.value(
            "relayrace_failovers_total",
            &[("provider", "slow"), ("cause", "hedge")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.value("relayrace_hedge_budget", &[("value", "hedges")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.value(
            "relayrace_hedge_delay_seconds",
            &[("provider", "slow"), ("class", "under_32kb")]
        ),
        Some(0.15)
    );

    let status = relay.get_json("/status").await;
    let hedging = &status["hedging"];
    assert_eq!(hedging["enabled"], true);
    assert_eq!(hedging["counts"]["won_by_hedge"], 1);
    assert_eq!(hedging["budget"]["hedges"], 1);
    assert_eq!(hedging["budget"]["window_ms"], 10_000);
    assert_eq!(hedging["providers"][0]["name"], "slow");
    assert_eq!(hedging["providers"][0]["delays"][0]["class"], "under_32kb");
    assert_eq!(hedging["providers"][0]["delays"][0]["delay_ms"], 150);
    assert_eq!(hedging["providers"][0]["delays"][0]["learned"], false);

    let line = capture.finished(&request_id).expect("its log line");
    assert!(line.contains(" provider=fast "), "{line}");
    assert!(line.contains(" attempts=2 "), "{line}");
    assert!(line.contains(" failover=hedge "), "{line}");
    relay.stop().await;
}
