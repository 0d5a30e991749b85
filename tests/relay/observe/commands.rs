//! `relayrace status` and `relayrace watch` against a running relay.

use std::time::Duration;

use relayrace::cli::render::Style;
use relayrace::cli::view::WatchView;
use relayrace::cli::{self, Target};
use relayrace::config::Secret;

use super::{ask, fault};
use crate::{TestRelay, Upstream, header, yaml};

#[tokio::test]
async fn the_status_and_watch_commands_read_a_running_relay() {
    let primary = fault("status=529").await;
    let fallback = fault("ok").await;
    let relay = TestRelay::start(&yaml(
        &[
            Upstream::at("primary", &primary),
            Upstream::at("fallback", &fallback),
        ],
        "health:\n  failure_threshold: 1\n  probe_interval: 1m\n  max_probe_interval: 1m\n",
    ))
    .await;
    let target = Target::new(&relay.url, Some(Secret::new("unused-without-auth")));
    let (written, mut writes) = tokio::sync::mpsc::unbounded_channel();
    let watching = tokio::spawn({
        let target = target.clone();
        async move {
            let view = WatchView::new(false, Style { color: false });
            cli::watch(&target, &mut Output(written), view)
                .await
                .unwrap();
        }
    });
    // The snapshot is written once the watch has subscribed.
    let mut watched = String::from_utf8(writes.recv().await.unwrap()).unwrap();
    let response = relay
        .post(&ask("model-primary", false))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-relayrace-provider"), "fallback");

    let table = cli::status(&target, Style { color: false }).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "strategy failover, failover on");
    assert!(lines[1].starts_with("PROVIDER  STATE      SINCE  FAILS  REQUESTS  FAILOVERS"));
    let primary_row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&primary_row[..2], ["primary", "unhealthy"], "{table}");
    assert_eq!(&primary_row[3..6], ["1", "0", "1"], "{table}");
    let fallback_row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&fallback_row[..2], ["fallback", "healthy"], "{table}");
    assert_eq!(&fallback_row[4..6], ["1", "0"], "{table}");
    // Then what each serves: its name and `*`, so every model.
    assert_eq!(
        lines[4..7],
        [
            "models:",
            "  primary   model-primary, * (every model)",
            "  fallback  model-fallback, * (every model)",
        ]
    );
    // Then hedging: nothing hedged yet, each provider on its initial delays.
    assert!(
        lines[7].starts_with("hedging on: 0 of 10 allowed in the last 10.0s"),
        "{table}"
    );
    assert_eq!(
        lines[8],
        "  primary   under_32kb ~6.0s, under_256kb ~12.0s, under_1mb ~20.0s, larger ~30.0s, \
         whole ~30.0s"
    );

    relay.stop().await;
    tokio::time::timeout(Duration::from_secs(5), watching)
        .await
        .expect("watch ends with the relay")
        .unwrap();
    while let Some(bytes) = writes.recv().await {
        watched.push_str(&String::from_utf8(bytes).unwrap());
    }
    let kinds: Vec<&str> = watched
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(kinds, ["snapshot", "health", "failover"], "{watched}");
    assert!(
        watched.contains("primary healthy -> unhealthy"),
        "{watched}"
    );
    assert!(watched.contains("primary (529) -> fallback"), "{watched}");
}

/// What `watch` writes, sent on as it is written.
struct Output(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);

impl std::io::Write for Output {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
