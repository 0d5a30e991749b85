//! The body of a streamed answer: the winner's SSE frames, piped one by one as they arrive.
//! If the upstream fails after the commit point (cut, silent past the idle timeout, total
//! timeout), the client gets an Anthropic `event: error` frame and the stream ends — never a
//! truncated answer that looks complete — and the provider's health records the failure. What
//! the stream repaired on the way (events that were not JSON dropped, a missing `message_stop`
//! appended) goes into the request's log line and metrics.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::Stream;
use relayrace_actors::{Cause, Provider, RouterHandle};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::anthropic::error_body;
use crate::observe::{Answer, InFlight, Observer, RequestOutcome};
use crate::upstream::{EventStream, RelayUpstream, StreamError, StreamStats};

/// The request's one log line and its metrics, written when the answer is complete. The
/// request counts as in flight until this drops.
pub(super) struct RequestLog {
    pub(super) request_id: String,
    pub(super) model: String,
    pub(super) started: Instant,
    /// The winner's time to its commit point.
    pub(super) first_event: Option<Duration>,
    /// Why the primary failed over (`hedge`: it was slow and a hedge joined it), if it did.
    pub(super) failover: Option<Cause>,
    pub(super) observer: Observer,
    pub(super) _in_flight: InFlight,
    /// The request's place under `server.max_in_flight`, freed when its answer ends.
    pub(super) _admitted: OwnedSemaphorePermit,
}

impl RequestLog {
    /// Logs the request's line and records its metrics; `stream` says what its stream (if it
    /// was one) dropped or appended.
    pub(super) fn finish(
        &self,
        provider: &str,
        attempts: usize,
        status: u16,
        outcome: RequestOutcome,
        stream: StreamStats,
    ) {
        let total = self.started.elapsed();
        // The model is the client's: a string field, written quoted and escaped, so it cannot
        // break the line or forge another. The relay's own strings go as they are (Display).
        // `dropped_events` is left out (`None`) unless some were.
        tracing::info!(
            request_id = %self.request_id,
            model = self.model.as_str(),
            provider = %provider,
            attempts,
            failover = self.failover.map(tracing::field::display),
            status,
            latency_ms = total.as_millis() as u64,
            outcome = %outcome,
            dropped_events = Some(stream.dropped_events).filter(|n| *n > 0),
            "request finished"
        );
        self.observer.finished(Answer {
            provider: Some(provider).filter(|p| !p.is_empty()),
            model: &self.model,
            outcome,
            total,
            first_event: self.first_event,
            stream,
        });
    }

    pub(super) fn streaming(self, provider: &str, attempts: usize, status: u16) -> StreamLog {
        StreamLog {
            log: self,
            provider: provider.to_owned(),
            attempts,
            status,
            done: false,
        }
    }
}

/// Logs a streamed request once, when it ends (or when the client goes away).
pub(super) struct StreamLog {
    log: RequestLog,
    provider: String,
    attempts: usize,
    status: u16,
    done: bool,
}

impl StreamLog {
    fn finish(&mut self, outcome: RequestOutcome, stream: StreamStats) {
        if !self.done {
            self.done = true;
            self.log
                .finish(&self.provider, self.attempts, self.status, outcome, stream);
        }
    }
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        self.finish(RequestOutcome::ClientClosed, StreamStats::default());
    }
}

/// The response body for a committed stream.
pub(super) fn relay_stream(
    events: EventStream,
    provider: Provider,
    router: RouterHandle<RelayUpstream>,
    log: StreamLog,
) -> Body {
    Body::from_stream(RelayStream {
        events,
        provider,
        router,
        log,
        ended: false,
    })
}

struct RelayStream {
    events: EventStream,
    provider: Provider,
    router: RouterHandle<RelayUpstream>,
    log: StreamLog,
    ended: bool,
}

impl RelayStream {
    fn failed(&mut self, error: StreamError) -> Option<Bytes> {
        self.ended = true;
        tracing::warn!(
            request_id = %self.log.log.request_id,
            provider = self.provider.name(),
            error = %error,
            "stream failed after commit"
        );
        self.log
            .finish(RequestOutcome::StreamFailed, self.events.stats());
        let router = self.router.clone();
        let provider = self.provider.clone();
        let attempt_error = error.attempt_error();
        tokio::spawn(async move {
            // The runtime may be shutting down; then health no longer matters.
            let _ = router.report_failure(&provider, &attempt_error).await;
        });
        match error {
            // The client already received the upstream's own error frame.
            StreamError::ErrorEvent { .. } => None,
            other => Some(error_frame(other.error_type(), &other.to_string())),
        }
    }
}

/// An Anthropic SSE error frame.
pub(crate) fn error_frame(kind: &str, message: &str) -> Bytes {
    Bytes::from(format!(
        "event: error\ndata: {}\n\n",
        error_body(kind, message)
    ))
}

impl Stream for RelayStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.events).poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(error))) => Poll::Ready(self.failed(error).map(Ok)),
            Poll::Ready(None) => {
                self.ended = true;
                let stats = self.events.stats();
                self.log.finish(RequestOutcome::Ok, stats);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RelayStream {
    /// The client went away before the stream ended (otherwise the log is already written): the
    /// log, with what the stream dropped so far.
    fn drop(&mut self) {
        let stats = self.events.stats();
        self.log.finish(RequestOutcome::ClientClosed, stats);
    }
}
