//! Tiny fake upstreams on 127.0.0.1:0: an axum one that records requests, and a raw TCP one
//! that writes a fixed prefix and reports when the client hangs up.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderMap, Uri, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// A request as the fake saw it.
#[derive(Debug)]
pub struct Seen {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A running fake: its base URL and what it received.
pub struct Fake {
    pub url: String,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

impl Fake {
    /// The next request it received.
    pub async fn request(&mut self) -> Seen {
        self.seen.recv().await.unwrap()
    }
}

/// Serves `reply()` for every request, on any path.
pub async fn serve(reply: impl Fn() -> Response + Send + Sync + 'static) -> Fake {
    let reply = Arc::new(reply);
    let (tx, seen) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let reply = Arc::clone(&reply);
        let tx = tx.clone();
        async move {
            let path = uri.path().to_owned();
            let query = uri.query().map(str::to_owned);
            let _ = tx.send(Seen {
                path,
                query,
                headers,
                body,
            });
            reply()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake { url, seen }
}

/// An SSE response over `chunks`.
pub fn sse(chunks: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    let body = Body::from_stream(chunks.map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

/// Chunks sent `gap` apart, then silence forever when `hang`.
pub fn paced(
    chunks: &[&'static str],
    gap: Duration,
    hang: bool,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let timed = stream::iter(chunks.to_vec()).then(move |chunk| async move {
        tokio::time::sleep(gap).await;
        Bytes::from_static(chunk.as_bytes())
    });
    let tail = if hang {
        stream::pending().left_stream()
    } else {
        stream::empty().right_stream()
    };
    timed.chain(tail)
}

/// `first` at once, then `rest` once `release` turns true.
pub fn held(
    first: &'static str,
    rest: &'static str,
    release: watch::Receiver<bool>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let rest = async move {
        let mut release = release;
        let _ = release.wait_for(|released| *released).await;
        Bytes::from_static(rest.as_bytes())
    };
    stream::iter([Bytes::from_static(first.as_bytes())]).chain(stream::once(rest))
}

/// A raw TCP fake: reads the request, writes `prefix`, then waits for the client to hang up
/// and reports it on the returned receiver.
pub async fn raw(prefix: &'static str) -> (String, oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (closed, closed_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0; 64 * 1024];
        let _ = socket.read(&mut buffer).await;
        socket.write_all(prefix.as_bytes()).await.unwrap();
        while socket.read(&mut buffer).await.is_ok_and(|read| read > 0) {}
        let _ = closed.send(());
    });
    (url, closed_rx)
}

/// The address of a port nothing listens on.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

pub const MESSAGE_START: &str =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n";
pub const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
pub const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
pub const MESSAGE_STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
pub const OVERLOADED: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
