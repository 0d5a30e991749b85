//! Scenarios 1–7 and 11: the primary fails before the commit point, so the client gets a
//! complete answer from the fallback.

use std::time::Duration;

use relayrace_actors::HealthState;

use crate::fixture::{
    FIRST_EVENT, MS, Provider, SECOND, ask, assert_answer, assert_bound, attempts_per_request,
    config_with_timeouts, health_change, human, metric, pair, shared, status_of, within,
};
use crate::harness::message;
use crate::report::{Row, record};

/// The rest of the configuration, as the table names it (see docs/conformance.md).
const DEFAULTS: &str = "fallback `ok`; suite defaults";

#[tokio::test]
async fn a_429_with_retry_after_is_answered_by_the_fallback_and_the_primary_rests_until_then() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("status=429,retry_after=2", "").await;
    let mut health = relay.router.subscribe();
    let first = ask(&relay, &message(false)).await;
    assert_answer(&first, "fallback");
    assert_eq!(first.attempts, 2);
    assert_bound(first.elapsed, SECOND, "answer");

    // While the primary rests, requests go straight to the fallback.
    for stream in [true, false, true, false, true] {
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        assert_eq!(reply.attempts, 1, "the resting primary was tried");
    }
    assert_eq!(primary.attempt_count(), 1);
    health_change(&mut health, "primary", HealthState::Healthy, 5 * SECOND).await;
    let again = ask(&relay, &message(false)).await;
    assert_answer(&again, "fallback");
    let attempts = primary.attempts();
    assert_eq!(attempts.len(), 2, "one attempt per retry-after window");
    let rest = attempts[1].at - attempts[0].at;
    assert!(rest >= 2 * SECOND, "retried after {rest:?}");
    assert_bound(rest, 3 * SECOND, "back in rotation after the retry-after");
    record(Row {
        id: "01",
        scenario: "429 with `retry-after: 2`",
        configuration: format!("primary `status=429,retry_after=2`; {DEFAULTS}"),
        expected: "answer; the primary is not retried before 2 s; no tight loop",
        outcome: format!(
            "200 from fallback after 2 attempts; the 5 requests sent during the retry-after went \
             straight to the fallback; the primary's next attempt came {} after its 429; \
             2 primary attempts in all",
            human(rest)
        ),
        time: first.elapsed,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_429_on_every_attempt_is_answered_by_the_fallback_without_a_burst_on_the_primary() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("status=429", "").await;
    let (per_request, slowest) = attempts_per_request(&relay, &primary, 10, false).await;
    assert!(
        per_request.iter().all(|&n| n <= 1),
        "the primary was tried twice for one request: {per_request:?}"
    );
    // Five failures open its circuit (default failure_threshold); its first probe is 3-4 s off.
    assert_eq!(per_request, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_bound(slowest, SECOND, "slowest answer");
    record(Row {
        id: "02",
        scenario: "429 on every attempt, no `retry-after`",
        configuration: format!("primary `status=429`; {DEFAULTS}; 10 sequential requests"),
        expected: "answer from the fallback; the primary gets at most a few attempts, never a burst",
        outcome: format!(
            "10/10 answered by the fallback; primary attempts per request {per_request:?}: \
             one each until its circuit opened after 5 failures, none after"
        ),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_500_once_then_healthy_is_answered() {
    let _gate = shared().await;
    let (_primary, _fallback, relay) = pair("fail_first=1,status=500", "").await;
    let first = ask(&relay, &message(true)).await;
    assert!(first.is_complete_answer(), "{first:?}");
    assert_bound(first.elapsed, SECOND, "answer");
    let next = ask(&relay, &message(false)).await;
    assert_answer(&next, "primary");
    record(Row {
        id: "03",
        scenario: "500 once, then healthy",
        configuration: format!("primary `fail_first=1,status=500`; {DEFAULTS}"),
        expected: "answer",
        outcome: format!(
            "200 stream from {} after {} attempts; the next request was answered by the primary \
             in 1 attempt",
            first.provider, first.attempts
        ),
        time: first.elapsed,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_503_on_every_attempt_is_answered_with_bounded_attempts_on_the_primary() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("status=503", "").await;
    let (per_request, slowest) = attempts_per_request(&relay, &primary, 10, true).await;
    // A 503 asks for less traffic: the race does not send the request to the primary again,
    // and five failures open its circuit.
    assert_eq!(per_request, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_bound(slowest, SECOND, "slowest answer");
    record(Row {
        id: "04",
        scenario: "503 on every attempt",
        configuration: format!("primary `status=503`; {DEFAULTS}; 10 sequential requests"),
        expected: "answer; bounded attempts on the primary",
        outcome: format!(
            "10/10 answered by the fallback; primary attempts per request {per_request:?} \
             (a 503 is not sent to the primary again inside the race), none once its circuit \
             opened; \
             {} primary attempts in all",
            primary.attempt_count()
        ),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_connection_reset_before_headers_is_answered_by_the_fallback() {
    let _gate = shared().await;
    let (_primary, _fallback, relay) = pair("reset", "").await;
    let mut slowest = Duration::ZERO;
    for stream in [false, true] {
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        slowest = slowest.max(reply.elapsed);
    }
    assert_bound(slowest, SECOND, "answer");
    record(Row {
        id: "05",
        scenario: "connection reset before headers",
        configuration: format!("primary `reset` (RST after reading the request); {DEFAULTS}"),
        expected: "answer",
        outcome: "200 from the fallback, JSON and stream".to_owned(),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_silent_primary_is_answered_by_the_fallback_soon_after_the_first_event_timeout() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("silent", "").await;
    let bound = FIRST_EVENT + 500 * MS;
    let mut slowest = Duration::ZERO;
    for (i, stream) in [false, true].into_iter().enumerate() {
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        assert_eq!(reply.attempts, 2, "the silent primary was tried again");
        assert_eq!(primary.attempt_count(), i + 1);
        assert!(reply.elapsed >= FIRST_EVENT, "{:?}", reply.elapsed);
        slowest = slowest.max(reply.elapsed);
        // The relay let go of the silent connection.
        within(
            SECOND,
            "the silent attempt closed",
            primary.wait_for_disconnects(i + 1),
        )
        .await;
    }
    assert_bound(slowest, bound, "answer");
    record(Row {
        id: "06",
        scenario: "the primary accepts and never answers",
        configuration: format!("primary `silent`; first_event timeout 1 s; {DEFAULTS}"),
        expected: "answer from the fallback soon after the first-event timeout; the silent \
                   primary is not retried on the same request",
        outcome: "200 from the fallback, JSON and stream, each after 1 primary attempt \
                  (timed out, its connection closed) and 1 fallback attempt"
            .to_owned(),
        time: slowest,
        bound,
    });
    relay.stop().await;
}

#[tokio::test]
async fn headers_at_once_and_a_first_event_after_20s_are_answered_by_the_fallback_inside_15s() {
    let _gate = shared().await;
    let (primary, _fallback, relay) = pair("first_event_delay_ms=20000", "").await;
    let mut slowest = Duration::ZERO;
    for (i, stream) in [true, false].into_iter().enumerate() {
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        assert_bound(reply.elapsed, 15 * SECOND, "the issue's bound");
        slowest = slowest.max(reply.elapsed);
        within(
            SECOND,
            "the slow attempt closed",
            primary.wait_for_disconnects(i + 1),
        )
        .await;
    }
    let bound = FIRST_EVENT + 500 * MS;
    assert_bound(slowest, bound, "answer");
    record(Row {
        id: "07",
        scenario: "headers at once, first event after 20 s",
        configuration: format!(
            "primary `first_event_delay_ms=20000` (for JSON: the body after 20 s); \
             first_event timeout 1 s; {DEFAULTS}"
        ),
        expected: "answer from the fallback inside 15 s",
        outcome: "200 from the fallback, stream and JSON; the primary's connection closed"
            .to_owned(),
        time: slowest,
        bound,
    });
    relay.stop().await;
}

/// Row 07 on every default, timeouts included (first event 30 s): the hedge answers, after
/// the 6 s initial delay of a small stream, long before the timeout would.
#[tokio::test]
async fn a_first_event_after_20s_on_every_default_is_hedged_after_6s() {
    let _gate = shared().await;
    let primary =
        relayrace_fault::FaultUpstream::start("first_event_delay_ms=20000".parse().unwrap())
            .await
            .unwrap();
    let fallback = relayrace_fault::FaultUpstream::start("ok".parse().unwrap())
        .await
        .unwrap();
    let yaml = config_with_timeouts(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        "{connect: 5s, first_event: 30s, idle: 60s, total: 10m}",
        "",
    );
    let relay = crate::harness::TestRelay::start(&yaml).await;
    let reply = ask(&relay, &message(true)).await;
    assert_answer(&reply, "fallback");
    assert_eq!(reply.attempts, 2, "the primary and its hedge");
    let bound = 6 * SECOND + 500 * MS;
    assert_bound(reply.elapsed, bound, "answer");
    assert!(reply.elapsed >= 6 * SECOND, "not before the hedge delay");
    within(
        SECOND,
        "the slow attempt closed",
        primary.wait_for_disconnects(1),
    )
    .await;
    let hedges = metric(&relay, "relayrace_hedges_total{outcome=\"won_by_hedge\"}").await;
    assert_eq!(hedges, Some(1.0));
    record(Row {
        id: "07h",
        scenario: "headers at once, first event after 20 s, on every default",
        configuration: "primary `first_event_delay_ms=20000`; fallback `ok`; every default \
                        (first_event timeout 30 s, hedging on); streamed request"
            .to_owned(),
        expected: "a hedge to the fallback after the 6 s initial delay; answer from it",
        outcome: "200 stream from the fallback (2 attempts); the primary's connection closed; \
                  `relayrace_hedges_total{outcome=\"won_by_hedge\"}` 1"
            .to_owned(),
        time: reply.elapsed,
        bound,
    });
    relay.stop().await;
}

#[tokio::test]
async fn an_error_event_as_the_first_frame_of_a_200_fails_over_before_the_commit() {
    let _gate = shared().await;
    let (_primary, _fallback, relay) = pair("error_event", "").await;
    let reply = ask(&relay, &message(true)).await;
    assert_answer(&reply, "fallback");
    assert_bound(reply.elapsed, SECOND, "answer");
    let row = status_of(&relay, "primary").await;
    let why = row["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("529"), "{row}");
    record(Row {
        id: "11",
        scenario: "`event: error` (overloaded) as the first frame of a 200",
        configuration: format!("primary `error_event`; {DEFAULTS}; streamed request"),
        expected: "failover before commit → answer",
        outcome: format!(
            "200 stream from the fallback ({} attempts), no byte of the primary's; the primary's \
             health records \"{why}\"",
            reply.attempts
        ),
        time: reply.elapsed,
        bound: SECOND,
    });
    relay.stop().await;
}
