//! Snapshot tests: `status` and `watch` output from a recorded `/status` answer and a recorded
//! event stream, compared with the expected text.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;

use super::render::{StatusView, Style, status_table};
use super::view::WatchView;
use crate::observe::RelayEvent;
use crate::upstream::sse;

/// A `/status` answer as the relay gave it (trimmed of fields the table does not show; `gone`
/// as a relay that does not say what it serves).
const STATUS: &str = r#"{
  "strategy": "failover", "failover": true, "race_timeout_ms": 5000,
  "providers": [
    {"name": "anthropic", "models": [], "serves_every_model": true,
     "state": "unhealthy", "circuit": "open", "since": "2026-03-01T12:00:00.000Z",
     "consecutive_failures": 5, "requests": 120, "failovers": 6, "latency_p50_ms": 840,
     "latency_p99_ms": 4210, "first_event_p50_ms": 310, "first_event_p99_ms": 1190},
    {"name": "zai", "models": ["claude-haiku-*", "claude-opus-4-6"], "serves_every_model": false,
     "state": "healthy", "circuit": "closed", "since": "2026-03-01T11:58:47.500Z",
     "consecutive_failures": 0, "requests": 9, "failovers": 0, "latency_p50_ms": 1020,
     "latency_p99_ms": 1300, "first_event_p50_ms": 450, "first_event_p99_ms": 600},
    {"name": "ollama", "models": ["claude-sonnet-4-5", "*"], "serves_every_model": true,
     "state": "disabled", "circuit": "disabled", "since": "2026-02-28T09:30:00.000Z",
     "consecutive_failures": 0, "requests": 0, "failovers": 0, "latency_p50_ms": null,
     "latency_p99_ms": null, "first_event_p50_ms": null, "first_event_p99_ms": null},
    {"name": "gone", "state": "failed", "circuit": "failed", "since": null,
     "consecutive_failures": null, "counters": null}
  ]
}"#;

/// An event stream as the relay sent it, keep-alive comment included.
const STREAM: &str = "\
event: snapshot
data: {\"providers\":[{\"name\":\"primary\",\"state\":\"healthy\",\"since\":\"2026-03-01T12:00:00.000Z\",\"consecutive_failures\":0},{\"name\":\"fallback\",\"state\":\"healthy\",\"since\":\"2026-03-01T12:00:00.000Z\",\"consecutive_failures\":0}],\"at\":\"2026-03-01T12:00:01.000Z\"}

event: health
data: {\"provider\":\"primary\",\"from\":\"healthy\",\"to\":\"unhealthy\",\"reason\":\"upstream answered with status 503\",\"at\":\"2026-03-01T12:00:02.250Z\"}

:

event: failover
data: {\"request_id\":\"rr_00000000000000a1\",\"model\":\"claude-sonnet-4-5\",\"primary\":\"primary\",\"cause\":\"503\",\"winner\":\"fallback\",\"attempts\":[{\"provider\":\"primary\",\"outcome\":\"failed\",\"cause\":\"503\",\"latency_ms\":12},{\"provider\":\"fallback\",\"outcome\":\"succeeded\",\"cause\":null,\"latency_ms\":40}],\"duration_ms\":55,\"at\":\"2026-03-01T12:00:02.260Z\"}

event: lagged
data: {\"stream\":\"failover\",\"missed\":3}

event: health
data: {\"provider\":\"primary\",\"from\":\"unhealthy\",\"to\":\"half_open\",\"reason\":\"cool-off elapsed\",\"at\":\"2026-03-01T12:00:32.250Z\"}

";

fn status_view() -> StatusView {
    serde_json::from_str(STATUS).unwrap()
}

fn at(rfc3339: &str) -> SystemTime {
    humantime_serde::re::humantime::parse_rfc3339(rfc3339).unwrap()
}

/// The recorded stream's events, read as `watch` reads them.
async fn recorded() -> Vec<RelayEvent> {
    let chunks = STREAM
        .as_bytes()
        .chunks(7)
        .map(|c| Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(c)));
    sse::frames(futures_util::stream::iter(chunks))
        .filter_map(|frame| async move {
            let frame = frame.ok()?;
            RelayEvent::parse(frame.event()?, frame.data()?)
        })
        .collect()
        .await
}

fn watched(events: &[RelayEvent], mut view: WatchView) -> String {
    events.iter().map(|event| view.apply(event)).collect()
}

#[test]
fn status_renders_a_table_of_the_providers() {
    let now = at("2026-03-01T12:04:12.000Z");
    let expected = "\
strategy failover, failover on
PROVIDER   STATE      SINCE  FAILS  REQUESTS  FAILOVERS  P50     P99     TTFE P50  TTFE P99
anthropic  unhealthy  4m12s  5      120       6          840ms   4210ms  310ms     1190ms
zai        healthy    5m24s  0      9         0          1020ms  1300ms  450ms     600ms
ollama     disabled   1d02h  0      0         0          -       -       -         -
gone       failed     -      -      0         0          -       -       -         -
models:
  anthropic  every model
  zai        claude-haiku-*, claude-opus-4-6
  ollama     claude-sonnet-4-5, * (every model)
  gone       -
";
    let table = status_table(&status_view(), now, Style { color: false });
    assert_eq!(table, expected, "\n{table}");
}

#[test]
fn status_shows_the_hedge_budget_counts_and_each_providers_delays() {
    let now = at("2026-03-01T12:04:12.000Z");
    let mut view = status_view();
    view.providers.truncate(2);
    view.hedging = Some(
        serde_json::from_value(serde_json::json!({
            "enabled": true,
            "budget": {"window_ms": 10000, "requests": 40, "hedges": 3, "allowed": 14, "available": 11},
            "counts": {"started": 5, "won_by_original": 1, "won_by_hedge": 4, "failed": 0, "budget_spent": 2},
            "providers": [
                {"name": "anthropic", "enabled": true, "delays": [
                    {"class": "under_32kb", "delay_ms": 1536, "learned": true, "samples": 300},
                    {"class": "whole", "delay_ms": 30000, "learned": false, "samples": 0}
                ]},
                {"name": "zai", "enabled": false, "delays": []}
            ]
        }))
        .unwrap(),
    );
    let table = status_table(&view, now, Style { color: false });
    assert!(
        table.ends_with(
            "hedging on: 3 of 14 allowed in the last 10.0s; since start 5 hedged (won by the \
             hedge 4, by the original 1, failed 0), 2 not hedged for budget\n  \
             anthropic  under_32kb 1.5s, whole ~30.0s\n  zai        not hedged\n"
        ),
        "{table}"
    );
}

#[test]
fn status_names_the_models_each_provider_serves() {
    let now = at("2026-03-01T12:04:12.000Z");
    let mut view = status_view();
    view.providers.truncate(2);
    view.providers[1].models = vec!["glm-4.6".to_owned()];
    let table = status_table(&view, now, Style { color: true });
    // Uncoloured, after the table.
    assert!(
        table.ends_with("models:\n  anthropic  every model\n  zai        glm-4.6\n"),
        "{table}"
    );
}

#[test]
fn status_colours_each_state_on_a_terminal() {
    let now = at("2026-03-01T12:04:12.000Z");
    let table = status_table(&status_view(), now, Style { color: true });
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[2].starts_with("anthropic  \x1b[31munhealthy\x1b[0m  4m12s"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("zai        \x1b[32mhealthy  \x1b[0m  5m24s"),
        "{table}"
    );
    assert!(lines[4].contains("\x1b[2mdisabled \x1b[0m"), "{table}");
    assert!(lines[5].contains("\x1b[1;31mfailed   \x1b[0m"), "{table}");
}

#[tokio::test]
async fn watch_piped_writes_one_plain_line_per_event() {
    let events = recorded().await;
    let expected = "\
12:00:01.000 snapshot  primary healthy, fallback healthy
12:00:02.250 health    primary healthy -> unhealthy: upstream answered with status 503
12:00:02.260 failover  rr_00000000000000a1 primary (503) -> fallback in 55 ms [primary 503 12ms, fallback ok 40ms]
             lagged    missed 3 failover events
12:00:32.250 health    primary unhealthy -> half_open: cool-off elapsed
";
    let text = watched(&events, WatchView::new(false, Style { color: false }));
    assert_eq!(text, expected, "\n{text}");
}

#[tokio::test]
async fn watch_on_a_terminal_keeps_the_provider_table_below_the_events() {
    let events = recorded().await;
    let text =
        watched(&events[..2], WatchView::new(true, Style { color: true })).replace('\x1b', "^");
    let expected = "\
12:00:01.000 snapshot  primary ^[32mhealthy^[0m, fallback ^[32mhealthy^[0m
PROVIDER  STATE    SINCE         FAILS
primary   ^[32mhealthy^[0m  12:00:00.000  0
fallback  ^[32mhealthy^[0m  12:00:00.000  0
^[3A^[J12:00:02.250 health    primary ^[32mhealthy^[0m -> ^[31munhealthy^[0m: upstream answered with status 503
PROVIDER  STATE      SINCE         FAILS
primary   ^[31munhealthy^[0m  12:00:02.250  -
fallback  ^[32mhealthy  ^[0m  12:00:00.000  0
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn ages_are_compact() {
    let now = at("2026-03-01T12:00:00.000Z");
    let status = |since: &str| {
        let mut view = status_view();
        view.providers.truncate(1);
        view.providers[0].since = Some(since.to_owned());
        let table = status_table(&view, now, Style { color: false });
        table
            .lines()
            .nth(2)
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(status("2026-03-01T11:59:18.000Z"), "42s");
    assert_eq!(status("2026-03-01T08:55:00.000Z"), "3h05m");
    // A clock a little ahead of this one is no negative age.
    assert_eq!(status("2026-03-01T12:00:01.000Z"), "0s");
    let _ = Duration::ZERO;
}
