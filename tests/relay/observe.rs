//! What operators watch: the live event stream, `/metrics`, the operator listener and key, and
//! the `watch` and `status` commands against a running relay. Shared here: a watcher of the
//! event stream and a relay started so a test keeps its app or splits its listeners.

mod access;
mod commands;
mod events;
mod exposition;
mod hedge;
mod metrics;

use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use futures_util::{Stream, StreamExt};
use relayrace::Relay;
use relayrace::observe::RelayEvent;
use relayrace::upstream::StreamError;
use relayrace::upstream::sse::{self, Frame};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{fault, header, prepare};

const RELAY_KEY: &str = "rk-relay-client-key-42";
const ADMIN_KEY: &str = "ak-operator-key-0042";

fn ask(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 16,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hi"}]
    })
}

/// One subscriber of `GET /v1/relay/events`.
struct Watcher {
    frames: Pin<Box<dyn Stream<Item = Result<Frame, StreamError>> + Send>>,
}

impl Watcher {
    async fn connect(client: &reqwest::Client, base: &str, key: Option<&str>) -> Self {
        let mut request = client.get(format!("{base}/v1/relay/events"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        Watcher {
            frames: Box::pin(sse::frames(Box::pin(response.bytes_stream()))),
        }
    }

    fn from_body(body: Body) -> Self {
        Watcher {
            frames: Box::pin(sse::frames(Box::pin(body.into_data_stream()))),
        }
    }

    async fn next(&mut self) -> RelayEvent {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.frames.next())
                .await
                .expect("no event within 5 s")
                .expect("the stream ended")
                .unwrap();
            if let (Some(name), Some(data)) = (frame.event(), frame.data()) {
                return RelayEvent::parse(name, data).expect("an event the relay defines");
            }
        }
    }

    /// Events up to and including the first that `last` accepts.
    async fn until(&mut self, last: impl Fn(&RelayEvent) -> bool) -> Vec<RelayEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

fn is_health_to(provider: &str, to: &str) -> impl Fn(&RelayEvent) -> bool {
    move |event| matches!(event, RelayEvent::Health(h) if h.provider == provider && h.to == to)
}

/// Each event as `kind provider detail`, for comparing sequences.
fn outline(events: &[RelayEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            RelayEvent::Snapshot(s) => {
                let states: Vec<String> = s
                    .providers
                    .iter()
                    .map(|p| format!("{}={}", p.name, p.state))
                    .collect();
                format!("snapshot {}", states.join(" "))
            }
            RelayEvent::Health(h) => format!("health {} {}->{}", h.provider, h.from, h.to),
            RelayEvent::Failover(f) => format!(
                "failover {} ({}) -> {}",
                f.primary,
                f.cause,
                f.winner.as_deref().unwrap_or("none")
            ),
            RelayEvent::Lagged(l) => format!("lagged {} {}", l.stream, l.missed),
        })
        .collect()
}

/// A relay started here, so a test keeps its app, or gives it an operator listener apart.
struct Observed {
    url: String,
    admin_url: String,
    relay_app: relayrace::http::App,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Observed {
    async fn start(yaml: &str, env: &[(&str, &str)], split: bool) -> Self {
        let (config, resolved) = prepare(yaml, env);
        let relay = Relay::start(&config, &resolved).await.unwrap();
        let relay_app = relay.app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let (admin_url, task) = if split {
            let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let admin_url = format!("http://{}", admin.local_addr().unwrap());
            let task = tokio::spawn(relay.serve_split(listener, admin, stopped));
            (admin_url, task)
        } else {
            (url.clone(), tokio::spawn(relay.serve(listener, stopped)))
        };
        Observed {
            url,
            admin_url,
            relay_app,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            stop: Some(stop),
            task,
        }
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/messages", self.url))
            .header("anthropic-version", "2023-06-01")
            .json(body)
    }

    /// Stops the relay; how long it took.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(40), &mut self.task)
            .await
            .expect("relay did not stop")
            .unwrap();
        started.elapsed()
    }
}
