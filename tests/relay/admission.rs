//! Admission at the edge: past its bounds on requests in flight and on connections, the relay
//! answers 529 `overloaded_error` with a short `retry-after` at once, queues nothing, and keeps
//! serving the requests within its bounds. The bounds are set small here to flood past them
//! cheaply; the defaults (2048 requests, 4096 connections) work the same way.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::{TestRelay, Upstream, complete_message, fault, message, yaml};

const LIMITS: &str = "server:\n  max_in_flight: 8\n  max_connections: 16\n";
/// The request bound alone (enough connections for every request of the flood).
const REQUEST_LIMIT: &str = "server:\n  max_in_flight: 8\n  max_connections: 64\n";

/// The resident memory of this test process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn past_its_request_bound_the_relay_answers_529_at_once_and_serves_the_rest() {
    let slow = fault("ok,first_event_delay_ms=400").await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("slow", &slow)], REQUEST_LIMIT)).await;
    let mut baseline = None;
    for round in 0..3 {
        let started = Instant::now();
        let requests: Vec<_> = (0..40)
            .map(|i| {
                let request = relay.post(&message(i % 2 == 0));
                tokio::spawn(async move {
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let body = response.bytes().await.unwrap();
                    (status, retry_after, body, started.elapsed())
                })
            })
            .collect();
        let mut served = 0;
        let mut turned_away = 0;
        for request in requests {
            let (status, retry_after, body, elapsed) = request.await.unwrap();
            match status {
                200 => served += 1,
                529 => {
                    turned_away += 1;
                    assert_eq!(retry_after.as_deref(), Some("1"));
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(body["error"]["type"], "overloaded_error");
                    assert!(elapsed < Duration::from_millis(300), "queued: {elapsed:?}");
                }
                other => panic!("round {round}: unexpected status {other}"),
            }
        }
        assert!(served >= 8, "round {round}: {served} served");
        assert!(turned_away > 0, "round {round}: nothing was turned away");
        assert_eq!(served + turned_away, 40);
        // After the flood the bound has freed: the next request is served.
        let response = relay.post(&message(false)).send().await.unwrap();
        complete_message(response).await;
        let rss = rss_kib();
        let baseline = *baseline.get_or_insert(rss);
        assert!(
            rss < baseline + 64 * 1024,
            "round {round}: memory grew from {baseline} to {rss} KiB"
        );
    }
    // Nothing of the turned-away requests reached the upstream.
    assert!(slow.attempt_count() <= 3 * 32 + 3);
    relay.stop().await;
}

#[tokio::test]
async fn past_its_connection_bound_the_relay_answers_529_and_closes() {
    let slow = fault("ok,first_event_delay_ms=500").await;
    let relay = TestRelay::start(&yaml(&[Upstream::at("slow", &slow)], LIMITS)).await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    // Sixteen idle connections fill the bound.
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // The accept loop has counted them once it answers the next one.
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nhost: relay\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), extra.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 529"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("overloaded_error"), "{answer}");
    // The held connections each ask once and are closed after their answer: then the bound
    // has room again, and a new client is served.
    for mut connection in held {
        connection
            .write_all(b"GET /health HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        connection.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let response = relay
        .client
        .get(format!("{}/health", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    relay.stop().await;
}
