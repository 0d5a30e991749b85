//! The harness shared by the end-to-end tests: fault upstreams, a relay on 127.0.0.1:0.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use relayrace::Relay;
use relayrace::config::{self, Config, Resolved};
use relayrace::upstream::RelayUpstream;
use relayrace_actors::RouterHandle;
use relayrace_fault::FaultUpstream;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The key every test provider is configured with (through `TEST_PROVIDER_KEY`).
pub(crate) const PROVIDER_KEY: &str = "sk-test-provider-key-0123456789";

/// An upstream on a fault server, or at a URL nobody answers.
pub(crate) struct Upstream<'a> {
    pub(crate) name: &'a str,
    pub(crate) url: String,
}

impl<'a> Upstream<'a> {
    pub(crate) fn at(name: &'a str, fault: &FaultUpstream) -> Self {
        Upstream {
            name,
            url: fault.url(),
        }
    }
}

/// A fault upstream playing `scenario` (see `relayrace_fault`).
pub(crate) async fn fault(scenario: &str) -> FaultUpstream {
    FaultUpstream::start(scenario.parse().unwrap())
        .await
        .unwrap()
}

/// A base URL where nothing listens.
pub(crate) async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Providers in priority order with short timeouts; `extra` is YAML appended at top level.
pub(crate) fn yaml(upstreams: &[Upstream<'_>], extra: &str) -> String {
    let mut yaml = String::from("providers:\n");
    for (i, upstream) in upstreams.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: {}\n    type: anthropic_compatible\n    base_url: {}\n    \
             api_key_env: TEST_PROVIDER_KEY\n    priority: {}\n    models: [model-{}, \"*\"]\n    \
             timeouts: {{connect: 1s, first_event: 600ms, idle: 600ms, total: 20s}}\n",
            upstream.name,
            upstream.url,
            i + 1,
            upstream.name
        ));
    }
    yaml.push_str(extra);
    yaml
}

/// A relay serving on 127.0.0.1:0.
pub(crate) struct TestRelay {
    pub(crate) url: String,
    pub(crate) router: RouterHandle<RelayUpstream>,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

pub(crate) fn prepare(yaml: &str, env: &[(&str, &str)]) -> (Config, Resolved) {
    let config = config::load_from(yaml, std::iter::empty()).unwrap();
    let errors = config.validate();
    assert!(errors.is_empty(), "{errors:?}");
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.insert("TEST_PROVIDER_KEY".into(), PROVIDER_KEY.into());
    let resolved = config.resolve(|name| vars.get(name).cloned()).unwrap();
    (config, resolved)
}

impl TestRelay {
    pub(crate) async fn start(yaml: &str) -> Self {
        Self::start_with_env(yaml, &[]).await
    }

    pub(crate) async fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Self {
        let (config, resolved) = prepare(yaml, env);
        let relay = Relay::start(&config, &resolved).await.unwrap();
        let router = relay.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.serve(listener, async {
            let _ = stopped.await;
        }));
        TestRelay {
            url,
            router,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            stop: Some(stop),
            task,
        }
    }

    /// A Messages API request with the usual headers.
    pub(crate) fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/messages", self.url))
            .header("anthropic-version", "2023-06-01")
            .json(body)
    }

    pub(crate) async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The relay's `/metrics` text.
    pub(crate) async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// Asks the relay to shut down and waits until it has.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(40), &mut self.task)
            .await
            .expect("relay did not stop")
            .unwrap();
    }
}

pub(crate) fn message(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hi"}]
    })
}

pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Reads a streamed answer to its end and returns its SSE event names, in order.
pub(crate) async fn event_names(response: reqwest::Response) -> (Vec<String>, String) {
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => break,
        }
    }
    let names = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .map(str::to_owned)
        .collect();
    (names, text)
}

/// Asserts a complete, well-formed non-streamed answer and returns it.
pub(crate) async fn complete_message(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message", "{body}");
    assert!(body["usage"]["output_tokens"].as_u64().is_some(), "{body}");
    body
}

/// Collects what a tracing subscriber writes (log lines in the relay's text format).
#[derive(Clone, Default)]
pub(crate) struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
