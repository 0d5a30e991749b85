//! One accepted connection: served by hyper, and abortable with a TCP RST from a handler.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Lets a handler abort its connection; put into every request's extensions.
#[derive(Clone, Default)]
pub(super) struct ConnectionControl(Arc<ResetSwitch>);

#[derive(Default)]
struct ResetSwitch {
    requested: AtomicBool,
    notify: Notify,
}

impl ConnectionControl {
    /// Drops the connection with `SO_LINGER` 0, so the client sees a reset. Requests in flight
    /// on it (their handler futures and bodies) are dropped too.
    pub(super) fn reset(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_one();
    }
}

/// Counts the connections a server has open.
#[derive(Clone)]
pub(super) struct OpenConnections(Arc<watch::Sender<usize>>);

impl OpenConnections {
    pub(super) fn new() -> Self {
        OpenConnections(Arc::new(watch::Sender::new(0)))
    }

    /// Counts one more connection until the guard is dropped.
    pub(super) fn enter(&self) -> ConnectionGuard {
        self.0.send_modify(|n| *n += 1);
        ConnectionGuard(Arc::clone(&self.0))
    }

    pub(super) fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves once at most `n` connections are open.
    pub(super) async fn wait_at_most(&self, n: usize) {
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = self.0.subscribe().wait_for(|open| *open <= n).await;
    }
}

/// One open connection; dropped with the task that serves it.
pub(super) struct ConnectionGuard(Arc<watch::Sender<usize>>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Serves `stream` with `app` until the client closes it or a handler calls
/// [`ConnectionControl::reset`].
pub(super) async fn serve(stream: TcpStream, app: axum::Router) {
    // SSE events are small writes; do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let control = ConnectionControl::default();
    let io = TokioIo::new(ResettableStream {
        stream,
        control: control.clone(),
    });
    let for_requests = control.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(for_requests.clone());
        app.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(io, service);
    tokio::select! {
        // A connection error means the client went away; the guards record it.
        _ = connection => {}
        () = control.0.notify.notified() => {}
    }
}

/// A `TcpStream` that closes with `SO_LINGER` 0 (an RST) when its connection was reset.
struct ResettableStream {
    stream: TcpStream,
    control: ConnectionControl,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.control.0.requested.load(Ordering::SeqCst) {
            // Best effort: a plain close is the fallback.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
