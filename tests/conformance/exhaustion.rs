//! Scenario 16: every provider down. The client gets a clean, bounded error: the last
//! upstream error (status and body), a 502 when there is none, or a 503 once no provider is
//! in rotation.

use crate::fixture::{FIRST_EVENT, MS, Provider, ask, assert_bound, fault, human, relay, shared};
use crate::harness::message;
use crate::report::{Row, record};

#[tokio::test]
async fn every_provider_down_is_a_clean_bounded_error() {
    let _gate = shared().await;
    // Both answer 503; five requests (one failure each per request) take both out of rotation.
    let primary = fault("status=503,message=primary is down").await;
    let fallback = fault("status=503,message=fallback is down").await;
    let relay_503 = relay(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        "",
    )
    .await;
    let mut both = None;
    for _ in 0..5 {
        let reply = ask(&relay_503, &message(false)).await;
        assert!(reply.is_clean_error(), "{reply:?}");
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()["error"]["message"], "fallback is down");
        assert_eq!(reply.attempts, 2);
        both = Some(reply);
    }
    let both = both.unwrap();
    let none_left = ask(&relay_503, &message(true)).await;
    assert!(none_left.is_clean_error(), "{none_left:?}");
    assert_eq!(none_left.status, 503);
    assert_eq!(none_left.attempts, 0);
    assert_eq!(primary.attempt_count() + fallback.attempt_count(), 10);
    relay_503.stop().await;

    // Both silent: each times out after the first-event timeout.
    let primary = fault("silent").await;
    let fallback = fault("silent").await;
    let relay_silent = relay(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        "",
    )
    .await;
    let silent = ask(&relay_silent, &message(true)).await;
    assert!(silent.is_clean_error(), "{silent:?}");
    assert_eq!(silent.status, 502);
    let silent_bound = 2 * FIRST_EVENT + 500 * MS;
    assert_bound(silent.elapsed, silent_bound, "both silent");
    relay_silent.stop().await;

    let fast_bound = 500 * MS;
    assert_bound(both.elapsed.max(none_left.elapsed), fast_bound, "503s");
    record(Row {
        id: "16",
        scenario: "every provider down",
        configuration: "(a) both `status=503` with their own messages, suite defaults, 6 \
                        requests; (b) both `silent`, first_event timeout 1 s; (c) every provider \
                        unreachable: tests/relay failover::every_provider_unreachable_is_a_clean_502"
            .to_owned(),
        expected: "a clean, bounded error (status and body of the last upstream error, or 503), \
                   no hang",
        outcome: format!(
            "(a) 503 with the fallback's own body after 2 attempts in {}, 5 times (the \
             primary is not asked twice); the sixth request, both out of rotation: 503 {} with 0 \
             attempts in {}; (b) 502 {} in {}",
            human(both.elapsed),
            none_left.json()["error"]["message"],
            human(none_left.elapsed),
            silent.json()["error"]["message"],
            human(silent.elapsed)
        ),
        time: silent.elapsed,
        bound: silent_bound,
    });
}
