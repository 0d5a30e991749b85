//! The scenarios that misbehave: resets, silence, delays, broken streams, outages.

use super::*;

#[tokio::test]
async fn reset_gives_the_client_a_connection_error() {
    let upstream = upstream("reset").await;
    let error = within(send(
        &reqwest::Client::new(),
        &upstream,
        "claude-test",
        false,
    ))
    .await
    .unwrap_err();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    let reset = std::iter::from_fn(|| {
        let current = source?;
        source = current.source();
        Some(current)
    })
    .filter_map(|e| e.downcast_ref::<std::io::Error>())
    .any(|e| e.kind() == std::io::ErrorKind::ConnectionReset);
    assert!(
        reset,
        "expected a connection reset (SO_LINGER 0): {error:?}"
    );
    let attempt = &upstream.attempts()[0];
    assert!(attempt.completed && !attempt.disconnected);
}

#[tokio::test]
async fn silent_times_out_and_is_recorded_as_disconnected() {
    let upstream = upstream("silent").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let error = send(&client, &upstream, "claude-test", true)
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    within(upstream.wait_for_disconnects(1)).await;
    assert!(!upstream.attempts()[0].completed);
}

#[tokio::test]
async fn headers_delay_holds_back_the_whole_answer() {
    let upstream = upstream("headers_delay_ms=150").await;
    let start = Instant::now();
    let response = post(&upstream, "claude-test", false).await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn first_event_delay_sends_the_headers_at_once() {
    let upstream = upstream("first_event_delay_ms=250").await;
    let start = Instant::now();
    let response = post(&upstream, "claude-test", true).await;
    assert!(
        start.elapsed() < Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    let text = within(response.text()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(event_names(&text).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn cut_after_ends_the_stream_without_message_stop() {
    let upstream = upstream("cut_after=3").await;
    let text = within(post(&upstream, "claude-test", true).await.text())
        .await
        .unwrap();
    assert_eq!(event_names(&text), FULL_SEQUENCE[..3]);
    assert!(upstream.attempts()[0].completed);

    let json = post(&upstream, "claude-test", false).await;
    assert_eq!(json.status(), 200);
    assert!(
        within(json.bytes()).await.is_err(),
        "a cut JSON body fails to read"
    );
}

#[tokio::test]
async fn stall_after_holds_the_stream_until_the_client_leaves() {
    let upstream = upstream("stall_after=2").await;
    let mut body = post(&upstream, "claude-test", true).await.bytes_stream();
    let mut text = String::new();
    while event_names(&text).len() < 2 {
        let chunk = within(body.next()).await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(event_names(&text), FULL_SEQUENCE[..2]);
    assert!(
        timeout(Duration::from_millis(200), body.next())
            .await
            .is_err(),
        "stream went on"
    );
    assert!(!upstream.attempts()[0].disconnected);
    drop(body);
    within(upstream.wait_for_disconnects(1)).await;
    assert!(!upstream.attempts()[0].completed);
}

#[tokio::test]
async fn malformed_after_sends_one_broken_frame_then_finishes() {
    let upstream = upstream("malformed_after=1,words=1").await;
    let text = within(post(&upstream, "claude-test", true).await.text())
        .await
        .unwrap();
    let (before, after) = text
        .split_once(reply::MALFORMED_FRAME)
        .expect("no malformed frame");
    assert_eq!(event_names(before), ["message_start"]);
    assert_eq!(event_names(after).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn error_event_is_a_200_event_stream_with_one_error_frame() {
    let upstream = upstream("error_event").await;
    let response = post(&upstream, "claude-test", true).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let text = within(response.text()).await.unwrap();
    assert_eq!(event_names(&text), ["error"]);
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let error: Value = serde_json::from_str(data).unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn down_for_answers_503_until_the_time_is_up() {
    let upstream = upstream("down_for_ms=200,words=1").await;
    let start = Instant::now();
    let down = post(&upstream, "claude-test", false).await;
    assert_eq!(down.status(), 503);
    assert_eq!(json_of(down).await["error"]["type"], "api_error");
    tokio::time::sleep_until(start + Duration::from_millis(220)).await;
    let up = json_of(post(&upstream, "claude-test", false).await).await;
    assert_eq!(up["content"][0]["text"], "word1");
}

#[tokio::test]
async fn fail_first_fails_only_the_first_attempts() {
    let upstream = upstream("fail_first=1,status=500").await;
    let statuses = [
        post(&upstream, "claude-test", false).await.status(),
        post(&upstream, "claude-test", true).await.status(),
        post(&upstream, "claude-test", false).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [500, 200, 200]);
}

#[tokio::test]
async fn dropping_the_upstream_stops_it_and_frees_its_stalled_attempts() {
    let upstream = upstream("stall_after=1").await;
    let url = format!("{}/v1/messages", upstream.url());
    let mut body = post(&upstream, "claude-test", true).await.bytes_stream();
    within(body.next()).await.unwrap().unwrap();
    drop(upstream);
    assert!(
        within(body.next()).await.is_none_or(|chunk| chunk.is_err()),
        "stream went on"
    );
    let refused = within(
        reqwest::Client::new()
            .post(&url)
            .body(request_body("m", false))
            .send(),
    );
    assert!(refused.await.is_err());
}

#[tokio::test]
async fn redirect_to_answers_307_with_the_location() {
    let upstream = upstream("redirect_to=http://127.0.0.1:9/v1/messages").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = within(send(&client, &upstream, "claude-test", false))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        header(&response, "location"),
        "http://127.0.0.1:9/v1/messages"
    );
    within(response.bytes()).await.unwrap();
    assert!(upstream.attempts()[0].completed);
}

#[tokio::test]
async fn open_attempts_and_connections_are_counted_until_they_end() {
    let upstream = upstream("stall_after=1").await;
    assert_eq!(
        (upstream.open_attempts(), upstream.open_connections()),
        (0, 0)
    );
    let mut body = post(&upstream, "claude-test", true).await.bytes_stream();
    within(body.next()).await.unwrap().unwrap();
    assert_eq!(
        (upstream.open_attempts(), upstream.open_connections()),
        (1, 1)
    );
    drop(body);
    within(upstream.wait_for_no_open_attempts()).await;
    within(upstream.wait_for_open_connections_at_most(0)).await;
    let done = post(&upstream, "fault:ok", false).await;
    within(done.bytes()).await.unwrap();
    within(upstream.wait_for_no_open_attempts()).await;
    assert!(upstream.attempts()[1].completed);
}
