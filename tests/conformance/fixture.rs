//! The conformance relay and its fault upstreams, and the measurements every scenario shares.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use relayrace_actors::{HealthEvent, HealthEvents, HealthState};
use relayrace_fault::FaultUpstream;
use serde_json::Value;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::time::Instant;

use crate::harness::{TestRelay, message};

/// The per-provider timeouts of every conformance relay (`providers[*].timeouts`).
pub(crate) const TIMEOUTS: &str = "{connect: 1s, first_event: 1s, idle: 1s, total: 30s}";
/// `timeouts.first_event` above.
pub(crate) const FIRST_EVENT: Duration = Duration::from_secs(1);
/// `timeouts.idle` above.
pub(crate) const IDLE: Duration = Duration::from_secs(1);

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// Scenarios run side by side; the load test runs alone so its CPU and memory use do not
/// disturb the others' time bounds (and theirs do not disturb its memory figures).
static GATE: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

/// Held by a scenario that may run beside others.
pub(crate) async fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().await
}

/// Held by a test that must run alone.
pub(crate) async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

pub(crate) use crate::harness::fault;

/// One provider of the conformance relay, in priority order.
pub(crate) struct Provider {
    name: String,
    url: String,
    model_mapping: Vec<(String, String)>,
}

impl Provider {
    /// A provider served by `upstream`.
    pub(crate) fn at(name: &str, upstream: &FaultUpstream) -> Self {
        Self::url(name, upstream.url())
    }

    /// A provider at `url`.
    pub(crate) fn url(name: &str, url: String) -> Self {
        Provider {
            name: name.to_owned(),
            url,
            model_mapping: Vec::new(),
        }
    }

    /// Sends `to` upstream when the client asks for `from`.
    pub(crate) fn maps(mut self, from: &str, to: &str) -> Self {
        self.model_mapping.push((from.to_owned(), to.to_owned()));
        self
    }
}

/// The YAML of a relay over `providers` (priority 1, 2, … in order, each with [`TIMEOUTS`]);
/// `extra` is appended at the top level.
pub(crate) fn config(providers: &[Provider], extra: &str) -> String {
    config_with_timeouts(providers, TIMEOUTS, extra)
}

/// [`config`] with other provider timeouts.
pub(crate) fn config_with_timeouts(providers: &[Provider], timeouts: &str, extra: &str) -> String {
    let mut yaml = String::from("providers:\n");
    for (i, provider) in providers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: {}\n    type: anthropic_compatible\n    base_url: {}\n    \
             api_key_env: TEST_PROVIDER_KEY\n    priority: {}\n    timeouts: {timeouts}\n",
            provider.name,
            provider.url,
            i + 1,
        ));
        if !provider.model_mapping.is_empty() {
            yaml.push_str("    model_mapping:\n");
            for (from, to) in &provider.model_mapping {
                yaml.push_str(&format!("      {}: {}\n", quoted(from), quoted(to)));
            }
        }
    }
    yaml.push_str(extra);
    yaml
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A relay over `providers` serving on 127.0.0.1:0.
pub(crate) async fn relay(providers: &[Provider], extra: &str) -> TestRelay {
    TestRelay::start(&config(providers, extra)).await
}

/// A primary answering `scenario` and a healthy fallback (priorities 1 and 2) behind a relay
/// configured with `extra`.
pub(crate) async fn pair(scenario: &str, extra: &str) -> (FaultUpstream, FaultUpstream, TestRelay) {
    let primary = fault(scenario).await;
    let fallback = fault("ok").await;
    let relay = relay(
        &[
            Provider::at("primary", &primary),
            Provider::at("fallback", &fallback),
        ],
        extra,
    )
    .await;
    (primary, fallback, relay)
}

/// Sends `requests` sequential requests (streamed every other one, from `first_stream`), each
/// answered by the fallback; returns the primary's attempts per request and the slowest answer.
pub(crate) async fn attempts_per_request(
    relay: &TestRelay,
    primary: &FaultUpstream,
    requests: usize,
    first_stream: bool,
) -> (Vec<usize>, Duration) {
    let mut slowest = Duration::ZERO;
    let mut per_request = Vec::with_capacity(requests);
    for i in 0..requests {
        let before = primary.attempt_count();
        let reply = ask(relay, &message((i % 2 == 0) == first_stream)).await;
        assert_answer(&reply, "fallback");
        slowest = slowest.max(reply.elapsed);
        per_request.push(primary.attempt_count() - before);
    }
    (per_request, slowest)
}

pub(crate) async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

/// Asserts a measured time is inside its bound.
pub(crate) fn assert_bound(measured: Duration, bound: Duration, what: &str) {
    assert!(
        measured < bound,
        "{what}: took {measured:?}, bound {bound:?}"
    );
}

/// A duration as people read it in the table: `12 ms`, `1.03 s`.
pub(crate) fn human(duration: Duration) -> String {
    if duration < 10 * MS {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    } else if duration < SECOND {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// One SSE event of a streamed answer, with when it arrived.
#[derive(Debug)]
pub(crate) struct Event {
    /// Since the request was sent.
    pub(crate) at: Duration,
    /// The `event:` name.
    pub(crate) name: String,
    /// The `data:` payload as JSON (`Null` when it is not JSON).
    pub(crate) data: Value,
}

/// An answer read to its end.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    /// `x-relayrace-provider`.
    pub(crate) provider: String,
    /// `x-relayrace-attempts`.
    pub(crate) attempts: usize,
    /// The body of a non-streamed answer (empty for streams).
    pub(crate) bytes: Bytes,
    /// The events of a streamed answer.
    pub(crate) events: Vec<Event>,
    /// The body broke off with a transport error.
    pub(crate) broken: bool,
    /// From sending the request to the end of the body.
    pub(crate) elapsed: Duration,
}

impl Reply {
    /// The non-streamed body as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub(crate) fn event_names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.name.as_str()).collect()
    }

    pub(crate) fn is_stream(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    }

    /// A complete, well-formed Anthropic answer: a JSON message with usage, or a stream from
    /// `message_start` to `message_stop` with no error event.
    pub(crate) fn is_complete_answer(&self) -> bool {
        if self.status != 200 || self.broken {
            return false;
        }
        if self.is_stream() {
            let names = self.event_names();
            names.first() == Some(&"message_start")
                && names.last() == Some(&"message_stop")
                && !names.contains(&"error")
        } else {
            let body = self.json();
            body["type"] == "message" && body["usage"]["output_tokens"].is_u64()
        }
    }

    /// A stream that ended with an Anthropic `event: error` frame and no `message_stop`.
    pub(crate) fn ends_with_error_frame(&self) -> bool {
        let names = self.event_names();
        !self.broken
            && names.last() == Some(&"error")
            && !names.contains(&"message_stop")
            && self
                .events
                .last()
                .is_some_and(|e| e.data["type"] == "error" && e.data["error"]["type"].is_string())
    }

    /// An error status with an Anthropic-shaped JSON error body.
    pub(crate) fn is_clean_error(&self) -> bool {
        let body = self.json();
        self.status >= 400
            && !self.broken
            && body["type"] == "error"
            && body["error"]["type"].is_string()
            && body["error"]["message"].is_string()
    }
}

/// Sends `body` to the relay's `/v1/messages` and reads the answer to its end.
pub(crate) async fn ask(relay: &TestRelay, body: &Value) -> Reply {
    ask_at(&relay.client, &relay.url, body).await
}

/// [`ask`] with a client of its own, for requests sent from spawned tasks.
pub(crate) async fn ask_at(client: &reqwest::Client, relay_url: &str, body: &Value) -> Reply {
    let started = Instant::now();
    let response = within(30 * SECOND, "the relay's response headers", async {
        client
            .post(format!("{relay_url}/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    })
    .await;
    within(
        30 * SECOND,
        "the relay's response body",
        read(response, started),
    )
    .await
}

/// Reads `response` to its end; `started` is when its request was sent.
pub(crate) async fn read(response: reqwest::Response, started: Instant) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text_header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let provider = text_header("x-relayrace-provider");
    let attempts = text_header("x-relayrace-attempts").parse().unwrap_or(0);
    let mut reply = Reply {
        status,
        headers,
        provider,
        attempts,
        bytes: Bytes::new(),
        events: Vec::new(),
        broken: false,
        elapsed: Duration::ZERO,
    };
    let stream = reply.is_stream();
    let mut body = response.bytes_stream();
    let mut all = Vec::new();
    let mut pending = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            reply.broken = true;
            break;
        };
        if !stream {
            all.extend_from_slice(&chunk);
            continue;
        }
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let frame: String = pending.drain(..end + 2).collect();
            reply.events.push(event(&frame, started.elapsed()));
        }
    }
    reply.bytes = Bytes::from(all);
    reply.elapsed = started.elapsed();
    reply
}

fn event(frame: &str, at: Duration) -> Event {
    let field = |prefix: &str| {
        frame
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or("")
            .to_owned()
    };
    Event {
        at,
        name: field("event: "),
        data: serde_json::from_str(&field("data: ")).unwrap_or(Value::Null),
    }
}

/// One series of the relay's `/metrics`, written as the exposition writes it
/// (`name{label="value"}`); `None` until it has been recorded.
pub(crate) async fn metric(relay: &TestRelay, series: &str) -> Option<f64> {
    let text = within(SECOND, "the relay's /metrics", relay.metrics_text()).await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Asserts a complete answer from `provider`.
pub(crate) fn assert_answer(reply: &Reply, provider: &str) {
    assert!(
        reply.is_complete_answer(),
        "not a complete answer: {reply:?}"
    );
    assert_eq!(reply.provider, provider, "{reply:?}");
}

/// Waits for `provider` to enter `to`, skipping other events.
pub(crate) async fn health_change(
    events: &mut HealthEvents,
    provider: &str,
    to: HealthState,
    limit: Duration,
) -> HealthEvent {
    within(limit, &format!("{provider} becoming {to}"), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.provider.name() == provider && event.to == to {
                return event;
            }
        }
    })
    .await
}

/// The relay's `/status` row of `provider`.
pub(crate) async fn status_of(relay: &TestRelay, provider: &str) -> Value {
    let status = relay.get_json("/status").await;
    status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == provider)
        .cloned()
        .unwrap_or_else(|| panic!("no /status row for {provider}: {status}"))
}
