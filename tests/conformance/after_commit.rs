//! Scenarios 8–10: the primary breaks after the commit point. A stream cannot fail over any
//! more, so the client must be told: an `event: error` frame, never a truncated answer that
//! looks complete. A JSON answer commits only once its whole body is read, so it still fails
//! over.

use std::time::Duration;

use crate::fixture::{
    IDLE, MS, SECOND, ask, assert_answer, assert_bound, human, pair, shared, within,
};
use crate::harness::message;
use crate::report::{Row, record};

const DEFAULTS: &str = "fallback `ok`; suite defaults";

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

    // A JSON answer cut halfway has not committed: it fails over.
    let json = ask(&relay, &message(false)).await;
    assert_answer(&json, "fallback");
    assert_bound(json.elapsed, SECOND, "answer");
    let error = &cut.events[4].data["error"];
    record(Row {
        id: "08",
        scenario: "stream cut after some events, no `message_stop`, after commit",
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
async fn a_malformed_event_mid_stream_is_relayed_and_the_relay_stays_up() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("malformed_after=4", "").await;
    let mut slowest = Duration::ZERO;
    // The default scenario, then the broken frame first (picked by the model).
    for model in ["claude-test", "fault:malformed_after=0"] {
        let mut body = message(true);
        body["model"] = model.into();
        let reply = ask(&relay, &body).await;
        assert_eq!((reply.status, reply.provider.as_str()), (200, "primary"));
        // The broken frame reaches the client as the upstream sent it, the rest follows.
        let broken = reply
            .events
            .iter()
            .filter(|e| e.name == "content_block_delta" && e.data.is_null())
            .count();
        assert_eq!(broken, 1, "{reply:?}");
        assert_eq!(reply.event_names().last(), Some(&"message_stop"));
        assert!(!reply.broken);
        slowest = slowest.max(reply.elapsed);
    }
    // A JSON answer that is not JSON has not committed: it fails over.
    let json = ask(&relay, &message(false)).await;
    assert_answer(&json, "fallback");
    slowest = slowest.max(json.elapsed);
    primary.set_scenario("ok".parse().unwrap());
    let next = ask(&relay, &message(false)).await;
    assert_answer(&next, "primary");
    assert_bound(slowest, SECOND, "answer");
    record(Row {
        id: "10",
        scenario: "a malformed SSE event mid-stream",
        configuration: format!(
            "primary `malformed_after=4` (and `malformed_after=0`: the broken frame first); \
             {DEFAULTS}"
        ),
        expected: "relayed or ended with an error frame; the process stays up",
        outcome: "stream: relayed as sent (`data: {not json`), then on to `message_stop`; a JSON \
                  answer that is not JSON: not committed, 200 from the fallback; the next \
                  request is answered"
            .to_owned(),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}
