//! Scenario 15: when the fallback answers, the client sees the fallback's `model` and `usage`,
//! and the headers say how many attempts were made and who answered.

use crate::fixture::{Provider, SECOND, ask, assert_answer, assert_bound, fault, relay, shared};
use crate::harness::message;
use crate::report::{Row, record};

#[tokio::test]
async fn the_fallbacks_model_usage_attempts_and_name_reach_the_client() {
    let _gate = shared().await;
    let mut slowest = std::time::Duration::ZERO;
    for stream in [false, true] {
        let primary = fault("status=503").await;
        let fallback = fault("words=7").await;
        let relay = relay(
            &[
                Provider::at("primary", &primary),
                Provider::at("fallback", &fallback).maps("claude-test", "fallback-model"),
            ],
            // A 503 is not sent to the primary again: the race holds the fallback alone.
            "",
        )
        .await;
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "fallback");
        let seen = &fallback.attempts()[0];
        let input_tokens = seen.body.len().div_ceil(4) as u64;
        let (model, usage_in, usage_out) = if stream {
            let start = &reply.events[0].data["message"];
            let delta = reply
                .events
                .iter()
                .find(|e| e.name == "message_delta")
                .unwrap();
            (
                start["model"].clone(),
                start["usage"]["input_tokens"].clone(),
                delta.data["usage"]["output_tokens"].clone(),
            )
        } else {
            let body = reply.json();
            (
                body["model"].clone(),
                body["usage"]["input_tokens"].clone(),
                body["usage"]["output_tokens"].clone(),
            )
        };
        assert_eq!(model, "fallback-model");
        assert_eq!(usage_in, input_tokens);
        assert_eq!(usage_out, 7);
        assert_eq!(reply.attempts, 2);
        assert_eq!(
            reply.attempts,
            primary.attempt_count() + fallback.attempt_count()
        );
        assert_eq!(reply.headers["request-id"], seen.request_id.as_str());
        assert!(!reply.headers["x-relayrace-request-id"].is_empty());
        slowest = slowest.max(reply.elapsed);
        relay.stop().await;
    }
    assert_bound(slowest, SECOND, "answer");
    record(Row {
        id: "15",
        scenario: "fallback accounting",
        configuration: "primary `status=503`; fallback `words=7` with `model_mapping: \
                        {claude-test: fallback-model}`; suite defaults"
            .to_owned(),
        expected: "the client sees the fallback's `model` and `usage`; the headers say how many \
                   attempts were made and who answered",
        outcome: "JSON and stream: `model` fallback-model, `usage` the fallback's (input tokens \
                  of what it received, 7 output tokens), `request-id` the fallback's, \
                  `x-relayrace-provider: fallback`, `x-relayrace-attempts: 2` = the attempts \
                  both upstreams saw"
            .to_owned(),
        time: slowest,
        bound: SECOND,
    });
}
