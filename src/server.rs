//! Serving the app on a listener: HTTP/1.1 and HTTP/2, bounded header read time, graceful
//! shutdown that lets in-flight requests (streams included) finish within a grace period and
//! then cancels what is left.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::anthropic::error_body;
use crate::error::OVERLOADED_RETRY_AFTER;
use crate::http::App;

/// Time limits of serving.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long in-flight requests may finish after shutdown begins.
    pub grace: Duration,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// Client connections open at once; one more is answered 529 and closed.
    pub max_connections: usize,
}

/// How long a connection past the bound is given to take its 529.
const OVERLOADED_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `app` until `shutdown` resolves, then drains for up to `limits.grace`.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) {
    let grace = limits.grace;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    // Connections past the bound, being told so; as many again at most, the rest just closed.
    let mut turned_away = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Count only the connections still open: reap those that ended meanwhile.
                while connections.try_join_next().is_some() {}
                if connections.len() >= limits.max_connections {
                    // No queue: the client hears at once and may retry (Claude Code does).
                    if turned_away.len() < limits.max_connections {
                        turned_away.spawn(turn_away(stream, limits.max_connections));
                    }
                    continue;
                }
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    // A client that goes away mid-request is not the relay's error.
                    let _ = connection.await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(_) = turned_away.join_next(), if !turned_away.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        in_flight = connections.len(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "grace period elapsed: cancelling in-flight requests"
        );
    }
    connections.shutdown().await;
    turned_away.shutdown().await;
}

/// Answers a connection past `server.max_connections` with 529 `overloaded_error` and closes
/// it. It reads no more than the request's head (so that a client sees an answer to what it
/// sent), all within [`OVERLOADED_WRITE_TIMEOUT`].
async fn turn_away(mut stream: tokio::net::TcpStream, limit: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = error_body(
        "overloaded_error",
        &format!("the relay is at its limit of {limit} connections; retry shortly"),
    );
    let response = format!(
        "HTTP/1.1 529 Site Overloaded\r\ncontent-type: application/json\r\nretry-after: \
         {OVERLOADED_RETRY_AFTER}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(OVERLOADED_WRITE_TIMEOUT, async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Read what the client sent until it closes: closing with unread bytes would reset the
        // connection and could lose the answer on its way.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
