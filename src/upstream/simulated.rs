//! The `simulated` provider: answers the Messages API in process, like Anthropic would, with
//! configurable latency and faults (error statuses, stalls, cut streams).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relayrace_actors::AttemptError;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, sleep_until};

use super::failure::UpstreamFailure;
use super::mapping::ModelMapping;
use super::sse::Frame;
use super::stream::{PendingStream, StreamError};
use super::{Endpoint, RelayRequest, ResponseBody, UpstreamResponse};
use crate::anthropic::{self, error_body};
use crate::config::{ProviderConfig, SimulatedConfig, TimeoutsConfig};

#[cfg(test)]
mod tests;

const WORDS: [&str; 12] = [
    "relayed",
    "tokens",
    "arrive",
    "from",
    "a",
    "simulated",
    "provider",
    "that",
    "answers",
    "like",
    "the",
    "real",
];

/// An in-process provider.
pub(super) struct SimulatedProvider {
    config: SimulatedConfig,
    model_mapping: ModelMapping,
    timeouts: TimeoutsConfig,
    seed: u64,
    /// Attempts so far; with the seed, it decides each attempt's dice.
    attempts: AtomicU64,
}

/// What one attempt rolled.
struct Dice {
    fails: bool,
    id: u64,
}

impl SimulatedProvider {
    pub(super) fn new(config: &ProviderConfig) -> Self {
        let simulated = config.simulated.clone().unwrap_or_default();
        let seed = simulated
            .seed
            .unwrap_or_else(|| RandomState::new().hash_one(&config.name));
        SimulatedProvider {
            config: simulated,
            model_mapping: ModelMapping::new(&config.model_mapping),
            timeouts: config.timeouts,
            seed,
            attempts: AtomicU64::new(0),
        }
    }

    pub(super) async fn attempt(
        &self,
        request: &RelayRequest,
    ) -> Result<UpstreamResponse, AttemptError> {
        let started = Instant::now();
        let deadline = started + self.timeouts.total;
        let first_event_by = deadline.min(started + self.timeouts.first_event);
        let dice = self.roll();
        let streams = request.stream && request.endpoint == Endpoint::Messages;
        if dice.fails || !streams {
            let ready = started + self.config.first_event_delay;
            if ready > first_event_by {
                sleep_until(first_event_by).await;
                return Err(AttemptError::Timeout {
                    phase: "response headers",
                });
            }
            sleep_until(ready).await;
        }
        if dice.fails {
            return Err(self.failure(dice.id));
        }
        let answer = Answer::new(self, request, dice.id);
        if !streams {
            let body = match request.endpoint {
                Endpoint::Messages => answer.message(),
                Endpoint::CountTokens => json!({"input_tokens": answer.input_tokens}),
            };
            return Ok(UpstreamResponse {
                status: StatusCode::OK,
                headers: headers(dice.id, "application/json"),
                body: ResponseBody::Full(Bytes::from(body.to_string())),
            });
        }
        let pending = PendingStream {
            status: StatusCode::OK,
            headers: headers(dice.id, "text/event-stream"),
            first_event_by,
            deadline,
            idle: self.timeouts.idle,
        };
        pending.commit(self.frames(answer.events())).await
    }

    fn roll(&self) -> Dice {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let bits = splitmix64(self.seed.wrapping_add(attempt.wrapping_mul(GOLDEN_GAMMA)));
        // The top 53 bits as a float in [0, 1).
        let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
        Dice {
            fails: unit < self.config.failure_rate,
            id: splitmix64(bits),
        }
    }

    fn failure(&self, id: u64) -> AttemptError {
        let status = StatusCode::from_u16(self.config.failure_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let error_type = anthropic::error_type_for_status(status.as_u16());
        let message = match status.as_u16() {
            529 => "Overloaded",
            429 => "Rate limited (simulated)",
            _ => "Internal server error (simulated)",
        };
        let mut headers = headers(id, "application/json");
        let mut retry_after = None;
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            retry_after = Some(Duration::from_secs(1));
        }
        let body = Bytes::from(error_body(error_type, message));
        UpstreamFailure::from_upstream(status, headers, body).into_attempt_error(retry_after)
    }

    /// The events as a stream: the first after `first_event_delay`, the next ones
    /// `event_delay` apart, then silence (`stall_after_events`) or an early end
    /// (`cut_after_events`).
    fn frames(
        &self,
        events: Vec<Bytes>,
    ) -> impl Stream<Item = Result<Frame, StreamError>> + Send + 'static {
        let (first, gap) = (self.config.first_event_delay, self.config.event_delay);
        let count = events.len();
        let stall = self.config.stall_after_events.filter(|n| *n < count);
        let cut = self.config.cut_after_events.filter(|n| *n < count);
        let (shown, stalls) = match (stall, cut) {
            (Some(stall), cut) if cut.is_none_or(|cut| stall <= cut) => (stall, true),
            (_, Some(cut)) => (cut, false),
            _ => (count, false),
        };
        let timed = stream::iter(events.into_iter().take(shown).enumerate()).then(
            move |(index, event)| async move {
                sleep(if index == 0 { first } else { gap }).await;
                Ok(Frame::parse(event))
            },
        );
        let tail = if stalls {
            stream::pending().left_stream()
        } else {
            stream::empty().right_stream()
        };
        timed.chain(tail)
    }
}

/// The content of one successful answer.
struct Answer {
    id: String,
    model: String,
    words: Vec<&'static str>,
    input_tokens: usize,
}

impl Answer {
    fn new(provider: &SimulatedProvider, request: &RelayRequest, id: u64) -> Self {
        let model = provider
            .model_mapping
            .get(&request.model)
            .unwrap_or(&request.model)
            .to_owned();
        Answer {
            id: format!("msg_sim_{id:016x}"),
            model: model.clone(),
            words: WORDS
                .iter()
                .copied()
                .cycle()
                .take(provider.config.answer_words)
                .collect(),
            input_tokens: (request.body.len() / 4).max(1),
        }
    }

    fn message(&self) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": self.words.join(" ")}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.words.len()},
        })
    }

    fn events(&self) -> Vec<Bytes> {
        let mut start = self.message();
        start["content"] = json!([]);
        start["stop_reason"] = Value::Null;
        start["usage"]["output_tokens"] = json!(1);
        let mut events = vec![
            event(json!({"type": "message_start", "message": start})),
            event(json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}})),
            event(json!({"type": "ping"})),
        ];
        for (index, word) in self.words.iter().enumerate() {
            let text = if index == 0 {
                (*word).to_owned()
            } else {
                format!(" {word}")
            };
            events.push(event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})));
        }
        events.extend([
            event(json!({"type": "content_block_stop", "index": 0})),
            event(json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": self.words.len()}})),
            event(json!({"type": "message_stop"})),
        ]);
        events
    }
}

/// One SSE frame named after its data's `type`.
fn event(data: Value) -> Bytes {
    let kind = data["type"].as_str().unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

fn headers(id: u64, content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(request_id) = HeaderValue::from_str(&format!("req_sim_{id:016x}")) {
        headers.insert("request-id", request_id);
    }
    headers
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function over its state plus one gamma.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
