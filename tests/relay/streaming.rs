//! Streams flow event by event; after the commit point a broken stream ends with an error frame,
//! a missing `message_stop` after the final `message_delta` is appended, and an event that is
//! not JSON is dropped.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use relayrace::telemetry::{TextFields, TextLine};
use relayrace_fault::FaultUpstream;
use tokio::time::Instant;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::LogCapture;
use crate::{TestRelay, Upstream, event_names, fault, header, message, yaml};

async fn single(scenario: &str) -> (FaultUpstream, TestRelay) {
    let upstream = fault(scenario).await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("only", &upstream)], "")).await;
    (upstream, relay)
}

/// What the relay logs, in its text format (info and above), from every test of this binary.
#[derive(Clone, Default)]
pub(crate) struct Capture(LogCapture);

impl Capture {
    /// The process-wide capture, installed as the global subscriber on first use. A scoped
    /// subscriber would miss events: while it is the only one in the process, tracing decides a
    /// callsite's interest on whichever thread reaches it first, from that thread's (absent)
    /// subscriber.
    pub(crate) fn global() -> &'static Capture {
        static CAPTURE: OnceLock<Capture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture = Capture::default();
            let lines = tracing_subscriber::fmt::layer()
                .with_writer(capture.0.clone())
                .with_ansi(false)
                .event_format(TextLine)
                .fmt_fields(TextFields)
                .with_filter(Targets::new().with_target("relayrace", Level::INFO));
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(lines))
                .unwrap();
            capture
        })
    }

    /// The `request finished` line of the request `request_id`, if it has been written.
    pub(crate) fn finished(&self, request_id: &str) -> Option<String> {
        let text = self.0.text();
        let id = format!("request_id={request_id} ");
        text.lines()
            .find(|line| line.contains(" request finished ") && line.contains(&id))
            .map(str::to_owned)
    }
}

#[tokio::test]
async fn each_event_reaches_the_client_while_the_upstream_holds_the_stream_open() {
    // The upstream sends message_start, then holds the stream open for longer than this test
    // waits: the client must already have the first event.
    let (_upstream, relay) = single("stall_after=1").await;
    let response = relay.post(&crate::message(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_millis(400), body.next())
        .await
        .expect("the first event was held back")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first).starts_with("event: message_start"),
        "{first:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn events_are_relayed_as_they_are_produced_not_batched() {
    let (_upstream, relay) = single("words=4,event_delay_ms=150").await;
    let response = relay.post(&crate::message(true)).send().await.unwrap();
    let started = Instant::now();
    let mut body = response.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        let text = String::from_utf8_lossy(&chunk).to_string();
        for _ in text.matches("event: content_block_delta") {
            arrivals.push(started.elapsed());
        }
    }
    assert_eq!(arrivals.len(), 4);
    // Deltas are 150 ms apart upstream; batched delivery would put them all at the end.
    assert!(
        arrivals[3] - arrivals[0] >= Duration::from_millis(300),
        "{arrivals:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_stream_cut_after_the_commit_ends_with_an_error_event() {
    let (_upstream, relay) = single("cut_after=4").await;
    let response = relay.post(&message(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (events, text) = event_names(response).await;
    assert_eq!(events.last().map(String::as_str), Some("error"), "{text}");
    assert!(!events.iter().any(|e| e == "message_stop"), "{text}");
    assert!(text.contains(r#""type":"error""#), "{text}");
    relay.stop().await;
}

#[tokio::test]
async fn a_stream_that_ends_after_its_final_message_delta_gets_its_message_stop_and_is_counted() {
    // The default answer (5 words) is 11 events: all but `message_stop`.
    let (_upstream, relay) = single("cut_after=10").await;
    let response = relay.post(&message(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (events, text) = event_names(response).await;
    assert_eq!(events.len(), 11, "{text}");
    assert_eq!(events[9..], ["message_delta", "message_stop"], "{text}");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    let metrics = relay.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"relayrace_stream_repaired_endings_total{provider="only"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l
                == r#"relayrace_requests_total{provider="only",model="other",outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"outcome="stream_failed""#), "{metrics}");
    relay.stop().await;
}

#[tokio::test]
async fn an_event_that_is_not_json_is_dropped_counted_and_noted_in_the_log_line() {
    let log = Capture::global();
    let (upstream, relay) = single("malformed_after=4").await;
    let response = relay.post(&message(true)).send().await.unwrap();
    let dropped_id = header(&response, "x-relayrace-request-id").to_owned();
    let (events, text) = event_names(response).await;
    assert!(!text.contains("not json"), "{text}");
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    let metrics = relay.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"relayrace_stream_dropped_events_total{provider="only"} 1"#),
        "{metrics}"
    );
    upstream.set_scenario("ok".parse().unwrap());
    let response = relay.post(&message(true)).send().await.unwrap();
    let clean_id = header(&response, "x-relayrace-request-id").to_owned();
    let _ = event_names(response).await;
    relay.stop().await;

    // Each line is written before its stream's last byte reaches the client.
    let dropped = log.finished(&dropped_id).expect("the request's log line");
    assert!(
        dropped.ends_with("outcome=ok dropped_events=1"),
        "{dropped}"
    );
    let clean = log.finished(&clean_id).expect("the request's log line");
    assert!(!clean.contains("dropped_events"), "{clean}");
}

#[tokio::test]
async fn a_stream_that_stalls_after_the_commit_ends_with_an_error_event_within_the_idle_timeout() {
    let (upstream, relay) = single("stall_after=3").await;
    let started = Instant::now();
    let response = relay.post(&message(true)).send().await.unwrap();
    let (events, text) = event_names(response).await;
    assert_eq!(events.last().map(String::as_str), Some("error"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The relay is fine and the stalled upstream connection was let go.
    tokio::time::timeout(Duration::from_secs(2), upstream.wait_for_disconnects(1))
        .await
        .unwrap();
    upstream.set_scenario("ok".parse().unwrap());
    let response = relay.post(&message(false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    relay.stop().await;
}

#[tokio::test]
async fn a_post_commit_failure_counts_against_the_providers_health() {
    let upstream = fault("cut_after=2").await;
    let relay = TestRelay::start(&yaml(
        &[Upstream::at("only", &upstream)],
        "health:\n  failure_threshold: 1\n",
    ))
    .await;
    let mut events = relay.router.subscribe();
    let response = relay.post(&message(true)).send().await.unwrap();
    let _ = event_names(response).await;
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("the cut stream was not recorded against the provider")
        .unwrap();
    assert_eq!(event.provider.name(), "only");
    assert_eq!(event.to, relayrace_actors::HealthState::Unhealthy);
    let status = relay.get_json("/status").await;
    assert_eq!(status["providers"][0]["circuit"], "open", "{status}");
    assert_eq!(
        status["providers"][0]["counters"]["failures"], 1,
        "{status}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_clean_stream_is_relayed_whole() {
    let (_upstream, relay) = single("words=6").await;
    let response = relay.post(&message(true)).send().await.unwrap();
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let (events, _) = event_names(response).await;
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "content_block_delta")
            .count(),
        6
    );
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    relay.stop().await;
}
