//! A client that stops reading a stream holds up its upstream: the relay keeps at most a bounded
//! buffer (the sockets' and one frame), never the rest of the stream, and the upstream is
//! cancelled when the client leaves.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::{StreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::{TestRelay, Upstream, yaml};

/// Frames of the upstream's stream, each `FRAME` bytes of text in one `content_block_delta`.
const FRAMES: usize = 4000;
const FRAME: usize = 64 * 1024;
/// What may sit in the buffers between an upstream and a client that reads nothing (the
/// sockets' on loopback, a few MB each way, and the relay's one frame): 64 MB of the 256 MB.
const BOUND: usize = 1000;

/// An upstream streaming `FRAMES` large events as fast as it is read; `pulled` counts the
/// frames the connection has taken, `dropped` says when the stream was cancelled.
async fn firehose() -> (String, watch::Receiver<usize>, watch::Receiver<bool>) {
    let (pulled, reader) = watch::channel(0usize);
    let (dropped, dropped_reader) = watch::channel(false);
    let state = (Arc::new(pulled), Arc::new(dropped));
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move || {
            let (pulled, dropped) = state.clone();
            async move {
                let text = "x".repeat(FRAME);
                let guard = DropFlag(dropped);
                let frames = stream::iter(0..=FRAMES).map(move |i| {
                    let _ = &guard;
                    pulled.send_modify(|n| *n = i + 1);
                    let frame = if i == 0 {
                        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
                            .to_owned()
                    } else {
                        format!(
                            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\
                             \"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
                        )
                    };
                    Ok::<_, Infallible>(Bytes::from(frame))
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(frames))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, reader, dropped_reader)
}

/// Says when the upstream's stream is dropped (the relay cancelled it).
struct DropFlag(Arc<watch::Sender<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_its_upstream_to_a_bounded_buffer() {
    let (url, mut pulled, mut dropped) = firehose().await;
    let relay = TestRelay::start(&yaml(&[Upstream { name: "fast", url }], "")).await;
    let address = relay.url.trim_start_matches("http://").to_owned();
    let mut client = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"model":"model-fast","max_tokens":8,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 512];
    let read = client.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..read]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..read])
    );
    // The client reads nothing more. Unbounded buffering would let the upstream push its whole
    // stream within milliseconds; back-pressure holds it far below.
    let past_bound = pulled.wait_for(|n| *n > BOUND);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), past_bound)
            .await
            .is_err(),
        "the upstream pushed {} of {FRAMES} frames to a client that reads nothing",
        *pulled.borrow()
    );
    let held = *pulled.borrow();
    assert!(held > 1, "the stream started");
    // The client leaves: the upstream's stream is cancelled.
    drop(client);
    let cancelled = dropped.wait_for(|dropped| *dropped);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cancelled)
            .await
            .is_ok(),
        "the upstream's stream outlived its client"
    );
    relay.stop().await;
}
