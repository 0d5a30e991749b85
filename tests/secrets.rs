//! Keys never reach the logs, `/status` or error bodies, and what clients send cannot forge log
//! lines. Its own test binary: a scoped tracing subscriber only sees every event when no other
//! test in the process runs at the same time.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test"
)]

#[path = "relay/harness.rs"]
#[expect(
    dead_code,
    reason = "shared with the relay tests; not every helper is used here"
)]
mod harness;

use harness::{LogCapture, PROVIDER_KEY, TestRelay, Upstream, fault, message, yaml};
use relayrace::telemetry::{TextFields, TextLine};

const RELAY_KEY: &str = "rk-relay-client-key-42";

#[tokio::test]
async fn keys_never_appear_in_logs_status_or_error_bodies_and_clients_cannot_forge_log_lines() {
    // A provider that refuses the relay's key is logged with its key variable, never the key.
    let capture = LogCapture::default();
    // The relay's own text format, every level.
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .event_format(TextLine)
        .fmt_fields(TextFields)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let refusing = fault("status=401,message=invalid x-api-key").await;
    let failing = fault("status=503").await;
    let answering = fault("ok").await;
    let relay = TestRelay::start_with_env(
        &yaml(
            &[
                Upstream::at("refusing", &refusing),
                Upstream::at("failing", &failing),
                Upstream::at("answering", &answering),
            ],
            "clients:\n  api_key_envs: [RELAY_KEY]\n",
        ),
        &[("RELAY_KEY", RELAY_KEY)],
    )
    .await;
    let mut bodies = Vec::new();
    for (key, stream) in [(RELAY_KEY, false), (RELAY_KEY, true), ("rk-wrong", false)] {
        let response = relay
            .post(&message(stream))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        bodies.push(response.text().await.unwrap());
    }
    // A model name that tries to end the request's log line and write one of its own.
    let mut forging = message(false);
    forging["model"] = "m\nFORGED request finished outcome=ok".into();
    let response = relay
        .post(&forging)
        .header("x-api-key", RELAY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let status = relay
        .client
        .get(format!("{}/status", relay.url))
        .header("x-api-key", RELAY_KEY)
        .send()
        .await
        .unwrap();
    bodies.push(status.text().await.unwrap());
    relay.stop().await;

    let logs = capture.text();
    assert!(
        logs.contains("request finished"),
        "the capture works: {}",
        &logs[..logs.len().min(3000)]
    );
    assert!(
        logs.contains(r#"m\nFORGED"#),
        "the model is logged, escaped"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("FORGED")),
        "a client's model forged a log line"
    );
    // The provider that refused the relay's key is named once, with its key variable.
    let rejected: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("refused the relay's key"))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].contains(r#"provider="refusing""#)
            && rejected[0].contains(r#"env_var="TEST_PROVIDER_KEY""#),
        "{}",
        rejected[0]
    );
    for secret in [PROVIDER_KEY, RELAY_KEY] {
        assert!(!logs.contains(secret), "a key leaked into the logs");
        for body in &bodies {
            assert!(
                !body.contains(secret),
                "a key leaked into a response: {body}"
            );
        }
    }
}
