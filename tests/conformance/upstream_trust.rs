//! What the relay never does with an upstream: follow its redirects (the provider's key would
//! travel to wherever they point). Keys kept out of logs and client credentials kept from
//! upstreams are covered elsewhere (rows 19b–19d: tests/secrets.rs, tests/relay/auth.rs).

use crate::fixture::{Provider, SECOND, ask, assert_answer, assert_bound, fault, relay, shared};
use crate::harness::message;
use crate::report::{Row, record};

#[tokio::test]
async fn an_upstream_redirect_is_never_followed_and_fails_over_as_a_bad_gateway() {
    let _gate = shared().await;
    let elsewhere = fault("ok").await;
    let redirecting = fault(&format!("redirect_to={}/v1/messages", elsewhere.url())).await;
    let fallback = fault("ok").await;

    // Alone, the redirect is a clean 502 for the client, without its location.
    let alone = relay(&[Provider::at("primary", &redirecting)], "").await;
    let refused = ask(&alone, &message(false)).await;
    assert!(refused.is_clean_error(), "{refused:?}");
    assert_eq!(refused.status, 502);
    assert!(refused.headers.get("location").is_none());
    alone.stop().await;

    // With a fallback, the client is answered.
    let relay = relay(
        &[
            Provider::at("primary", &redirecting),
            Provider::at("fallback", &fallback),
        ],
        "",
    )
    .await;
    let answered = ask(&relay, &message(true)).await;
    assert_answer(&answered, "fallback");
    assert_eq!(elsewhere.attempt_count(), 0, "the redirect was followed");
    assert_bound(refused.elapsed.max(answered.elapsed), SECOND, "answer");
    record(Row {
        id: "19a",
        scenario: "the relay never follows upstream redirects",
        configuration: "primary `redirect_to=<another fault upstream>` (307 with `location`); \
                        alone, then with a fallback"
            .to_owned(),
        expected: "never follows upstream redirects",
        outcome: format!(
            "the redirect target saw no request (so no key); alone: 502 api_error \"{}\", no \
             `location`; with a fallback: 200 from the fallback",
            refused.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
        ),
        time: refused.elapsed.max(answered.elapsed),
        bound: SECOND,
    });
    relay.stop().await;
}
