//! Client authentication, credentials that must not travel upstream, and keys kept out of logs.

use relayrace_fault::FaultUpstream;
use serde_json::Value;

use crate::{PROVIDER_KEY, TestRelay, Upstream, complete_message, fault, message, yaml};

const RELAY_KEY: &str = "rk-relay-client-key-42";

async fn with_client_auth(upstream: &FaultUpstream) -> TestRelay {
    TestRelay::start_with_env(
        &yaml(
            &[Upstream::at("only", upstream)],
            "clients:\n  api_key_envs: [RELAY_KEY]\n",
        ),
        &[("RELAY_KEY", RELAY_KEY)],
    )
    .await
}

#[tokio::test]
async fn without_an_accepted_key_the_client_gets_401() {
    let upstream = fault("ok").await;
    let relay = with_client_auth(&upstream).await;
    let missing = relay.post(&message(false)).send().await.unwrap();
    let wrong = relay
        .post(&message(false))
        .header("x-api-key", "rk-wrong")
        .send()
        .await
        .unwrap();
    let count_tokens = relay
        .client
        .post(format!("{}/v1/messages/count_tokens", relay.url))
        .json(&message(false))
        .send()
        .await
        .unwrap();
    let status = relay
        .client
        .get(format!("{}/status", relay.url))
        .send()
        .await
        .unwrap();
    for response in [missing, wrong, count_tokens, status] {
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    assert_eq!(upstream.attempt_count(), 0);
    relay.stop().await;
}

#[tokio::test]
async fn an_accepted_key_works_on_either_header_and_never_travels_upstream() {
    let upstream = fault("ok").await;
    let relay = with_client_auth(&upstream).await;
    let by_api_key = relay
        .post(&message(false))
        .header("x-api-key", RELAY_KEY)
        .send()
        .await
        .unwrap();
    complete_message(by_api_key).await;
    let by_bearer = relay
        .post(&message(false))
        .bearer_auth(RELAY_KEY)
        .send()
        .await
        .unwrap();
    complete_message(by_bearer).await;
    for attempt in upstream.attempts() {
        assert_eq!(attempt.headers["x-api-key"], PROVIDER_KEY);
        assert!(attempt.headers.get("authorization").is_none());
        assert_eq!(attempt.headers["anthropic-version"], "2023-06-01");
        let all: Vec<_> = attempt.headers.values().collect();
        assert!(all.iter().all(|v| v.as_bytes() != RELAY_KEY.as_bytes()));
    }
    relay.stop().await;
}

#[tokio::test]
async fn passthrough_forwards_the_clients_own_credential() {
    let upstream = fault("ok").await;
    let yaml = format!(
        "providers:\n  - name: claude\n    type: anthropic\n    base_url: {}\n    auth: passthrough\n",
        upstream.url()
    );
    let relay = TestRelay::start(&yaml).await;
    let response = relay
        .post(&message(false))
        .bearer_auth("sk-ant-oat-client-token")
        .send()
        .await
        .unwrap();
    complete_message(response).await;
    let attempt = &upstream.attempts()[0];
    assert_eq!(
        attempt.headers["authorization"],
        "Bearer sk-ant-oat-client-token"
    );
    relay.stop().await;
}
