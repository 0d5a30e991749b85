use relayrace_actors::AttemptError;

use super::*;
use crate::config::ProviderKind;
use crate::upstream::fixtures::{data_of, drain, full, provider, request};

fn simulated(edit: impl FnOnce(&mut SimulatedConfig)) -> SimulatedProvider {
    let mut config = provider(ProviderKind::Simulated, None);
    config
        .model_mapping
        .insert("claude-test".into(), "sim-large".into());
    edit(config.simulated.as_mut().unwrap());
    SimulatedProvider::new(&config)
}

fn failure_of(error: &AttemptError) -> &UpstreamFailure {
    let AttemptError::Status { detail, .. } = error else {
        panic!("{error:?}")
    };
    detail.downcast_ref::<UpstreamFailure>().unwrap()
}

#[tokio::test(start_paused = true)]
async fn answers_a_message_in_the_anthropic_shape() {
    let response = simulated(|_| {}).attempt(&request(false)).await.unwrap();
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    assert!(
        response.headers["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_sim_")
    );
    let message: Value = serde_json::from_slice(&full(response)).unwrap();
    assert!(message["id"].as_str().unwrap().starts_with("msg_sim_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "sim-large");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(
        message["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        5
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 5);
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(start_paused = true)]
async fn streams_the_anthropic_event_sequence() {
    let response = simulated(|_| {}).attempt(&request(true)).await.unwrap();
    assert_eq!(response.headers[header::CONTENT_TYPE], "text/event-stream");
    let frames = drain(response).await;
    assert!(frames.iter().all(Result::is_ok), "{frames:?}");
    let data = data_of(&frames);
    let kinds: Vec<_> = data
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 5]);
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(kinds, expected);
    assert_eq!(data[0]["message"]["model"], "sim-large");
    let text: String = data[3..8]
        .iter()
        .map(|delta| delta["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text.split(' ').count(), 5);
    assert_eq!(data[9]["usage"]["output_tokens"], 5);
}

#[tokio::test(start_paused = true)]
async fn commits_once_the_first_event_is_ready_and_spaces_the_rest() {
    let provider = simulated(|config| config.event_delay = Duration::from_millis(50));
    let started = Instant::now();
    let response = provider.attempt(&request(true)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    let frames = drain(response).await;
    assert_eq!(frames.len(), 11);
    assert_eq!(started.elapsed(), Duration::from_millis(10 + 50 * 10));
}

#[tokio::test(start_paused = true)]
async fn counts_tokens_from_the_body_length() {
    let mut count = request(false);
    count.endpoint = Endpoint::CountTokens;
    let expected = count.body.len() / 4;
    let body = full(simulated(|_| {}).attempt(&count).await.unwrap());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"input_tokens": expected}));
}

async fn outcomes(provider: &SimulatedProvider, attempts: usize) -> Vec<bool> {
    let mut outcomes = Vec::new();
    for _ in 0..attempts {
        outcomes.push(provider.attempt(&request(false)).await.is_ok());
    }
    outcomes
}

#[tokio::test(start_paused = true)]
async fn a_seeded_failure_rate_is_reproducible() {
    let flaky = |seed| {
        simulated(move |config| {
            config.failure_rate = 0.5;
            config.seed = Some(seed);
        })
    };
    let first = outcomes(&flaky(42), 64).await;
    assert_eq!(first, outcomes(&flaky(42), 64).await);
    assert_ne!(first, outcomes(&flaky(43), 64).await);
    let failures = first.iter().filter(|ok| !**ok).count();
    assert!((16..=48).contains(&failures), "{failures} failures of 64");
}

#[tokio::test(start_paused = true)]
async fn failures_carry_an_anthropic_error_body() {
    let overloaded = simulated(|config| config.failure_rate = 1.0);
    let error = overloaded.attempt(&request(true)).await.unwrap_err();
    assert_eq!(error.status_code(), Some(529));
    let body: Value = serde_json::from_slice(&failure_of(&error).body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");

    let limited = simulated(|config| {
        config.failure_rate = 1.0;
        config.failure_status = 429;
    });
    let error = limited.attempt(&request(false)).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    let failure = failure_of(&error);
    assert_eq!(failure.headers[header::RETRY_AFTER], "1");
    let body: Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test(start_paused = true)]
async fn a_stall_ends_in_the_idle_timeout() {
    let provider = simulated(|config| config.stall_after_events = Some(4));
    let frames = drain(provider.attempt(&request(true)).await.unwrap()).await;
    assert_eq!(frames.len(), 5);
    assert!(matches!(frames[4], Err(StreamError::Idle(_))), "{frames:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_truncated() {
    let provider = simulated(|config| config.cut_after_events = Some(3));
    let frames = drain(provider.attempt(&request(true)).await.unwrap()).await;
    assert_eq!(frames.len(), 4);
    assert!(
        matches!(frames[3], Err(StreamError::Truncated)),
        "{frames:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_right_after_its_final_message_delta_gets_its_message_stop() {
    // 5 words: 11 events, the last `message_stop`.
    let provider = simulated(|config| config.cut_after_events = Some(10));
    let frames = drain(provider.attempt(&request(true)).await.unwrap()).await;
    assert!(frames.iter().all(Result::is_ok), "{frames:?}");
    let kinds: Vec<Value> = data_of(&frames).iter().map(|d| d["type"].clone()).collect();
    assert_eq!(kinds.len(), 11);
    assert_eq!(kinds[9], "message_delta");
    assert_eq!(kinds[10], "message_stop");
}

#[tokio::test(start_paused = true)]
async fn a_first_event_later_than_the_timeout_fails_the_attempt() {
    let slow = simulated(|config| config.first_event_delay = Duration::from_secs(1));
    let error = slow.attempt(&request(true)).await.unwrap_err();
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "first event"
            }
        ),
        "{error:?}"
    );
    let error = slow.attempt(&request(false)).await.unwrap_err();
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "response headers"
            }
        ),
        "{error:?}"
    );

    let stalled = simulated(|config| config.stall_after_events = Some(0));
    let error = stalled.attempt(&request(true)).await.unwrap_err();
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "first event"
            }
        ),
        "{error:?}"
    );
}
