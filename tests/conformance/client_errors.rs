//! Scenarios 12 and 13: errors that are the request's or the key's, not the provider's load.

use tokio::time::Instant;

use crate::fixture::{SECOND, ask, assert_answer, assert_bound, pair, read, shared, status_of};
use crate::harness::{PROVIDER_KEY, message};
use crate::report::{Row, record};

/// The upstream's answer to `body`, asked directly (no relay).
async fn direct(url: &str, body: &serde_json::Value) -> crate::fixture::Reply {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", PROVIDER_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    read(response, started).await
}

#[tokio::test]
async fn a_400_reaches_the_client_unchanged_without_retry_or_failover() {
    let _gate = shared().await;
    let (primary, fallback, relay) = pair("ok", "").await;
    let mut slowest = std::time::Duration::ZERO;
    let cases = [
        "status=400,message=prompt is too long: 250000 tokens > 200000 maximum",
        "status=400,message=messages: at least one message is required",
    ];
    for (i, scenario) in cases.into_iter().enumerate() {
        for stream in [false, true] {
            let mut body = message(stream);
            body["model"] = format!("fault:{scenario}").into();
            let before = primary.attempt_count();
            let relayed = ask(&relay, &body).await;
            assert_eq!(primary.attempt_count(), before + 1, "retried: {scenario}");
            let upstream = direct(&primary.url(), &body).await;
            assert_eq!(relayed.status, 400);
            assert_eq!(relayed.attempts, 1);
            assert_eq!(relayed.bytes, upstream.bytes, "the body changed");
            assert_eq!(
                relayed.headers["content-type"],
                upstream.headers["content-type"]
            );
            slowest = slowest.max(relayed.elapsed);
            if i == 0 && !stream {
                assert!(relayed.is_clean_error(), "{relayed:?}");
            }
        }
    }
    assert_eq!(fallback.attempt_count(), 0, "a 400 failed over");
    assert_bound(slowest, SECOND, "error");
    record(Row {
        id: "12",
        scenario: "400 (context length, invalid request)",
        configuration:
            "primary `status=400,message=prompt is too long: …` and `…,message=messages: \
                        at least one message is required`; JSON and stream requests"
                .to_owned(),
        expected: "no retry, no failover; the provider's error reaches the client unchanged",
        outcome: "400 with the upstream's body byte for byte (compared with asking the upstream \
                  directly) and content-type; 1 attempt each; the fallback saw nothing"
            .to_owned(),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_401_or_403_fails_over_and_the_provider_is_rejected_naming_its_key_variable() {
    let _gate = shared().await;
    let mut outcomes = Vec::new();
    let mut slowest = std::time::Duration::ZERO;
    for (status, stream) in [(401, false), (403, true)] {
        let (primary, _fallback, relay) = pair(&format!("status={status}"), "").await;
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        assert_eq!(reply.attempts, 2, "retried on the primary");
        assert_eq!(primary.attempt_count(), 1);
        let again = ask(&relay, &message(stream)).await;
        assert_answer(&again, "fallback");
        assert_eq!(again.attempts, 1, "the rejected primary is out of rotation");
        let row = status_of(&relay, "primary").await;
        assert_eq!(row["state"], "rejected", "{row}");
        let why = row["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(why.contains(&status.to_string()), "{row}");
        outcomes.push(format!(
            "{status}: 200 from the fallback after 1 attempt on the primary; the next request \
             went straight to the fallback; /status state `rejected`, last_error \"{why}\", \
             until {}",
            row["until"].as_str().unwrap_or("?")
        ));
        slowest = slowest.max(reply.elapsed);
        relay.stop().await;
    }
    assert_bound(slowest, SECOND, "answer");
    record(Row {
        id: "13",
        scenario: "401/403 from a provider that uses the relay's own key",
        configuration: "primary `status=401`, then `status=403`; suite defaults (401/403 with \
                        `auth: passthrough` reach the client instead: tests/relay \
                        failover::with_passthrough_a_refused_client_credential_reaches_the_client_and_health_is_untouched; \
                        the log line that names the key variable: \
                        tests/secrets.rs, which also checks that the key itself never appears)"
            .to_owned(),
        expected: "no retry on that provider for this request; it fails over, the provider \
                   leaves rotation as `rejected` and its health says why",
        outcome: outcomes.join("; "),
        time: slowest,
        bound: SECOND,
    });
}
