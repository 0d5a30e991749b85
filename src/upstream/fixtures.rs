//! Builders shared by the upstream tests.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;

use super::{Endpoint, RelayRequest, ResponseBody, StreamError, UpstreamResponse};
use crate::config::{AuthStyle, ProviderConfig, ProviderKind, SimulatedConfig, TimeoutsConfig};

/// Timeouts in milliseconds; connect is 200 ms.
pub(super) fn timeouts(first_event: u64, idle: u64, total: u64) -> TimeoutsConfig {
    TimeoutsConfig {
        connect: Duration::from_millis(200),
        first_event: Duration::from_millis(first_event),
        idle: Duration::from_millis(idle),
        total: Duration::from_millis(total),
    }
}

/// A fast simulated provider that never fails.
pub(super) fn simulated() -> SimulatedConfig {
    SimulatedConfig {
        first_event_delay: Duration::from_millis(10),
        event_delay: Duration::from_millis(5),
        answer_words: 5,
        failure_rate: 0.0,
        failure_status: 529,
        seed: Some(7),
        stall_after_events: None,
        cut_after_events: None,
    }
}

/// A provider of `kind` with 300 ms first-event, 300 ms idle and 2 s total timeouts.
pub(super) fn provider(kind: ProviderKind, base_url: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        name: "test".to_owned(),
        kind,
        base_url: base_url.map(|url| url.parse().unwrap()),
        api_key_env: None,
        auth: AuthStyle::XApiKey,
        priority: 1,
        weight: 1,
        enabled: true,
        models: Vec::new(),
        model_mapping: BTreeMap::new(),
        max_concurrent_attempts: None,
        timeouts: timeouts(300, 300, 2000),
        hedge: Default::default(),
        region: None,
        project: None,
        simulated: (kind == ProviderKind::Simulated).then(simulated),
    }
}

/// A Messages request for `claude-test`.
pub(super) fn request(stream: bool) -> RelayRequest {
    let body = format!(
        r#"{{"model":"claude-test","max_tokens":64,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    RelayRequest {
        endpoint: Endpoint::Messages,
        body: Bytes::from(body),
        model: "claude-test".to_owned(),
        stream,
        query: None,
        headers: HeaderMap::new(),
        client_credential: None,
    }
}

/// The full body of a non-stream answer.
pub(super) fn full(response: UpstreamResponse) -> Bytes {
    match response.body {
        ResponseBody::Full(body) => body,
        ResponseBody::Stream(_) => panic!("expected a full body"),
    }
}

/// Every item of a streamed answer.
pub(super) async fn drain(response: UpstreamResponse) -> Vec<Result<Bytes, StreamError>> {
    match response.body {
        ResponseBody::Stream(events) => events.collect().await,
        ResponseBody::Full(_) => panic!("expected a stream"),
    }
}

/// The `data:` JSON of each frame in the chunks (a chunk may hold several).
pub(super) fn data_of(chunks: &[Result<Bytes, StreamError>]) -> Vec<serde_json::Value> {
    let mut parser = super::sse::SseParser::new(super::sse::MAX_FRAME_BYTES);
    let mut data = Vec::new();
    for chunk in chunks.iter().filter_map(|chunk| chunk.as_ref().ok()) {
        parser.push(chunk);
        while let Some(frame) = parser.next_frame().unwrap() {
            data.extend(frame.data().map(|data| serde_json::from_str(data).unwrap()));
        }
    }
    data
}
