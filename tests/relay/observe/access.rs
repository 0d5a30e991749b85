//! The operator endpoints on a listener of their own, behind the operator key.

use std::time::Duration;

use super::exposition::scrape;
use super::{ADMIN_KEY, Observed, RELAY_KEY, Watcher, ask, fault};
use crate::{PROVIDER_KEY, Upstream, yaml};

#[tokio::test]
async fn operator_endpoints_can_have_their_own_listener_and_key_and_show_no_secret() {
    let upstream = fault("ok").await;
    let relay = Observed::start(
        &yaml(
            &[Upstream::at("only", &upstream)],
            "clients:\n  api_key_envs: [RELAY_KEY]\n  admin_key_env: ADMIN_KEY\n",
        ),
        &[("RELAY_KEY", RELAY_KEY), ("ADMIN_KEY", ADMIN_KEY)],
        true,
    )
    .await;
    let get = |base: &str, path: &str, key: Option<&str>| {
        let mut request = relay.client.get(format!("{base}{path}"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };
    let answered = relay.post(&ask("model-only", false)).bearer_auth(RELAY_KEY);
    assert_eq!(answered.send().await.unwrap().status(), 200);
    for path in ["/status", "/metrics", "/v1/relay/events"] {
        let on_api = get(&relay.url, path, Some(ADMIN_KEY)).await.unwrap();
        assert_eq!(on_api.status(), 404, "{path} is not on the API listener");
        for key in [None, Some(RELAY_KEY), Some("ak-wrong")] {
            let refused = get(&relay.admin_url, path, key).await.unwrap();
            assert_eq!(refused.status(), 401, "{path} with {key:?}");
        }
    }
    let on_admin = relay
        .client
        .post(format!("{}/v1/messages", relay.admin_url))
        .header("x-api-key", ADMIN_KEY)
        .json(&ask("model-only", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_admin.status(),
        404,
        "the API is not on the operator listener"
    );

    let status = get(&relay.admin_url, "/status", Some(ADMIN_KEY))
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let metrics = scrape(&relay.client, &relay.admin_url, Some(ADMIN_KEY)).await;
    assert_eq!(
        metrics.value(
            "relayrace_requests_total",
            &[
                ("provider", "only"),
                ("model", "model-only"),
                ("outcome", "ok")
            ]
        ),
        Some(1.0)
    );
    let mut watcher = Watcher::connect(&relay.client, &relay.admin_url, Some(ADMIN_KEY)).await;
    let snapshot = watcher.next().await;
    let seen = format!(
        "{} {} {snapshot:?}",
        status.text().await.unwrap(),
        relay
            .client
            .get(format!("{}/metrics", relay.admin_url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    );
    for secret in [PROVIDER_KEY, RELAY_KEY, ADMIN_KEY] {
        assert!(!seen.contains(secret), "a secret leaked: {seen}");
    }
    // A connected watcher does not hold the shutdown to its grace period.
    let took = relay.stop().await;
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
}
