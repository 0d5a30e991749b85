//! Scenarios 8–10: the primary breaks after the commit point. A stream cannot fail over any
//! more, so the client must be told: an `event: error` frame, never a truncated answer that
//! looks complete. Only when nothing but `message_stop` is missing (the body ended cleanly
//! after the final `message_delta`) does the relay complete the answer itself; an event that is
//! not JSON is dropped. A JSON answer commits only once its whole body is read, so it still
//! fails over, and so does a stream whose first event is not JSON.

use serde_json::json;

use crate::fixture::{
    IDLE, MS, SECOND, ask, assert_answer, assert_bound, human, metric, pair, shared, status_of,
    within,
};
use crate::harness::message;
use crate::report::{Row, record};

const DEFAULTS: &str = "fallback `ok`; suite defaults";
const REPAIRED: &str = r#"relayrace_stream_repaired_endings_total{provider="primary"}"#;
const DROPPED: &str = r#"relayrace_stream_dropped_events_total{provider="primary"}"#;

#[tokio::test]
async fn a_stream_cut_after_the_commit_ends_with_an_error_frame_not_a_truncated_answer() {
    let _gate = shared().await;
    let (_primary, _fallback, relay) = pair("cut_after=4", "").await;
    let cut = ask(&relay, &message(true)).await;
    assert_eq!((cut.status, cut.provider.as_str()), (200, "primary"));
    assert_eq!(
        cut.event_names(),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert!(cut.ends_with_error_frame(), "{cut:?}");
    assert_bound(cut.elapsed, SECOND, "error frame");
    // Cut before its final `message_delta`: nothing to repair.
    assert_eq!(metric(&relay, REPAIRED).await, None);

    // A JSON answer cut halfway has not committed: it fails over.
    let json = ask(&relay, &message(false)).await;
    assert_answer(&json, "fallback");
    assert_bound(json.elapsed, SECOND, "answer");
    let error = &cut.events[4].data["error"];
    record(Row {
        id: "08",
        scenario: "stream cut after some events, before its final `message_delta`, no \
                   `message_stop`, after commit",
        configuration: format!("primary `cut_after=4`; {DEFAULTS}"),
        expected: "the client gets an `event: error` frame; never a truncated answer presented \
                   as complete",
        outcome: format!(
            "stream: 200 from the primary, 4 events then `event: error` ({}: \"{}\"), no \
             `message_stop`; JSON cut halfway: not committed, 200 from the fallback",
            error["type"].as_str().unwrap_or_default(),
            error["message"].as_str().unwrap_or_default()
        ),
        time: cut.elapsed.max(json.elapsed),
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_stream_that_stalls_ends_with_an_error_frame_inside_the_idle_timeout() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("stall_after=3", "").await;
    let stalled = ask(&relay, &message(true)).await;
    assert_eq!(
        (stalled.status, stalled.provider.as_str()),
        (200, "primary")
    );
    assert_eq!(
        stalled.event_names(),
        ["message_start", "content_block_start", "ping", "error"]
    );
    assert!(stalled.ends_with_error_frame(), "{stalled:?}");
    let silence = stalled.events[3].at - stalled.events[2].at;
    assert!(silence >= IDLE, "error frame after {silence:?}");
    let bound = IDLE + 500 * MS;
    assert_bound(silence, bound, "error frame after the last event");
    within(
        SECOND,
        "the stalled attempt closed",
        primary.wait_for_disconnects(1),
    )
    .await;

    // A JSON answer that stalls halfway has not committed: it fails over.
    let json = ask(&relay, &message(false)).await;
    assert_answer(&json, "fallback");
    assert_bound(json.elapsed, IDLE + 500 * MS, "JSON answer");

    // The relay is fine: the next request is answered (the primary has recovered).
    primary.set_scenario("ok".parse().unwrap());
    let next = ask(&relay, &message(true)).await;
    assert_answer(&next, "primary");
    let health = relay.get_json("/health").await;
    assert_eq!(health["status"], "ok");
    record(Row {
        id: "09",
        scenario: "stream stalls after some events",
        configuration: format!("primary `stall_after=3`; idle timeout 1 s; {DEFAULTS}"),
        expected: "`event: error` inside the idle timeout; the relay stays healthy and answers \
                   the next request",
        outcome: format!(
            "stream: 200 from the primary, 3 events, then `event: error` {} after the last one, \
             the stalled upstream connection closed; JSON stalled halfway: not committed, 200 \
             from the fallback in {}; next request answered",
            human(silence),
            human(json.elapsed)
        ),
        time: silence,
        bound,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_stream_that_ends_cleanly_after_its_final_message_delta_gets_its_message_stop() {
    let _gate = shared().await;
    // The default answer's 11 events (5 words) but its last: through the final `message_delta`
    // (`stop_reason: end_turn`), then the body ends between frames.
    let (primary, _fallback, relay) = pair("cut_after=10", "").await;
    let reply = ask(&relay, &message(true)).await;
    assert_answer(&reply, "primary");
    let names = reply.event_names();
    assert_eq!(names.len(), 11, "{names:?}");
    assert_eq!(names[9..], ["message_delta", "message_stop"]);
    assert_eq!(reply.events[9].data["delta"]["stop_reason"], "end_turn");
    assert_eq!(reply.events[10].data, json!({"type": "message_stop"}));
    assert!(
        primary.attempts()[0].completed,
        "the upstream played its answer out"
    );
    assert_eq!(metric(&relay, REPAIRED).await, Some(1.0));
    // A success for the provider's health, not a failure.
    let row = status_of(&relay, "primary").await;
    assert_eq!(row["counters"]["failures"], 0, "{row}");
    assert_bound(reply.elapsed, SECOND, "answer");
    record(Row {
        id: "08c",
        scenario: "stream ends cleanly after its final `message_delta`, without `message_stop`",
        configuration: format!(
            "primary `cut_after=10` (all 11 events of its answer but `message_stop`); {DEFAULTS}"
        ),
        expected: "the answer is complete but for `message_stop`: the relay appends it, the \
                   stream ends well, and the repair is counted",
        outcome: format!(
            "stream: 200 from the primary, its 10 events then `message_stop` (appended by the \
             relay), no `event: error`; `{REPAIRED}` {}; the primary's health counts no failure",
            metric(&relay, REPAIRED).await.unwrap_or_default()
        ),
        time: reply.elapsed,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_malformed_event_mid_stream_is_dropped_and_a_malformed_first_event_fails_over() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("malformed_after=4", "").await;
    // A JSON answer that is not JSON has not committed: it fails over.
    let json = ask(&relay, &message(false)).await;
    assert_answer(&json, "fallback");

    // The broken frame after 4 events: dropped, the rest relayed.
    let dropped = ask(&relay, &message(true)).await;
    assert_answer(&dropped, "primary");
    assert!(
        dropped.events.iter().all(|e| e.data.is_object()),
        "a frame that is not JSON reached the client: {dropped:?}"
    );
    let deltas = dropped
        .event_names()
        .iter()
        .filter(|name| **name == "content_block_delta")
        .count();
    assert_eq!(deltas, 5, "{dropped:?}");
    assert_eq!(metric(&relay, DROPPED).await, Some(1.0));

    // The broken frame first: the primary has not committed, it fails over (a 502).
    primary.set_scenario("malformed_after=0".parse().unwrap());
    let first = ask(&relay, &message(true)).await;
    assert_answer(&first, "fallback");
    assert!(first.events.iter().all(|e| e.data.is_object()), "{first:?}");
    let row = status_of(&relay, "primary").await;
    let why = row["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("502"), "{row}");
    assert_eq!(
        metric(&relay, DROPPED).await,
        Some(1.0),
        "only events after the commit are dropped"
    );

    // The relay is fine: the next request is answered by the primary.
    primary.set_scenario("ok".parse().unwrap());
    let next = ask(&relay, &message(false)).await;
    assert_answer(&next, "primary");
    let slowest = [&dropped, &json, &first, &next]
        .iter()
        .map(|reply| reply.elapsed)
        .max()
        .unwrap_or_default();
    assert_bound(slowest, SECOND, "answer");
    record(Row {
        id: "10",
        scenario: "a malformed SSE event mid-stream",
        configuration: format!(
            "primary `malformed_after=4` (`data: {{not json` after 4 events), then \
             `malformed_after=0` (the broken frame first); {DEFAULTS}"
        ),
        expected: "after the commit the broken event is dropped, not relayed, and counted; as \
                   the first event it fails over; the process stays up",
        outcome: format!(
            "stream: the broken event dropped, not relayed, and counted (`{DROPPED}` 1); the \
             rest relayed on to `message_stop`; the broken frame first: not committed, the \
             primary's health records \"{why}\", 200 stream from the fallback ({} attempts); a \
             JSON answer that is not JSON: not committed, 200 from the fallback; the next \
             request is answered",
            first.attempts
        ),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

/// Row 21: a client that goes away mid-stream. The relay cancels its upstream attempt: the
/// upstream sees its connection close (issue 17 asks within 10 ms).
#[tokio::test]
async fn a_client_that_leaves_mid_stream_cancels_its_upstream_attempt_at_once() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("words=200,event_delay_ms=50", "").await;
    let mut slowest = std::time::Duration::ZERO;
    for round in 1..=5 {
        let response = relay.post(&message(true)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut response = response;
        // Read the first chunks of the stream, then go away.
        let mut seen = 0;
        while seen < 3 {
            response
                .chunk()
                .await
                .unwrap()
                .expect("the stream ended early");
            seen += 1;
        }
        let left = tokio::time::Instant::now();
        drop(response);
        within(
            SECOND,
            "the upstream connection closing",
            primary.wait_for_disconnects(round),
        )
        .await;
        slowest = slowest.max(left.elapsed());
    }
    let bound = 10 * MS;
    assert_bound(slowest, bound, "upstream cancelled after the client left");
    record(Row {
        id: "21",
        scenario: "the client goes away mid-stream",
        configuration: format!(
            "primary `words=200,event_delay_ms=50` (a 10 s stream); the client reads 3 chunks, \
             then closes its connection; 5 times; {DEFAULTS}"
        ),
        expected: "the relay cancels the upstream attempt within 10 ms",
        outcome: format!(
            "each time the primary saw its connection close; slowest {} after the client left",
            human(slowest)
        ),
        time: slowest,
        bound,
    });
    relay.stop().await;
}
