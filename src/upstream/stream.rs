//! The commit point of a streamed attempt, and the stream relayed after it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderMap, StatusCode, header};
use relayrace_actors::AttemptError;
use tokio::time::{Instant, Sleep, sleep, sleep_until, timeout_at};

use super::failure::{self, UpstreamFailure};
use super::sse::Frame;
use super::{ResponseBody, UpstreamResponse};
use crate::anthropic;

/// Why a committed stream ended badly.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    /// The upstream body ended cleanly but before `message_stop`.
    #[error("upstream stream ended without message_stop")]
    Truncated,
    /// No frame for longer than the idle timeout.
    #[error("upstream stream was silent for longer than {0:?}")]
    Idle(Duration),
    /// The request's total timeout ran out.
    #[error("upstream request exceeded its total timeout")]
    Total,
    /// The transport failed (reset, decoding, a frame too large).
    #[error("upstream stream failed: {0}")]
    Transport(String),
    /// The upstream sent an `event: error` frame (already relayed to the client).
    #[error("upstream sent an error event: {kind}")]
    ErrorEvent {
        /// The error's `error.type`, e.g. `overloaded_error`.
        kind: String,
    },
}

impl StreamError {
    /// This failure as an attempt error, for the provider's health.
    pub fn attempt_error(&self) -> AttemptError {
        match self {
            StreamError::Idle(_) => AttemptError::Timeout {
                phase: "next event",
            },
            StreamError::Total => AttemptError::Timeout {
                phase: "stream end",
            },
            StreamError::Truncated | StreamError::Transport(_) => AttemptError::Connection {
                message: self.to_string(),
            },
            StreamError::ErrorEvent { kind } => {
                AttemptError::status(anthropic::status_for_error_type(kind))
            }
        }
    }

    /// The Anthropic error type to show the client.
    pub fn error_type(&self) -> &'static str {
        match self {
            StreamError::ErrorEvent { kind } => {
                anthropic::error_type_for_status(anthropic::status_for_error_type(kind))
            }
            _ => "api_error",
        }
    }
}

/// How many bytes of frames that arrived together go out as one chunk, at most.
const BURST_BYTES: usize = 64 * 1024;

/// What the relay left out of a committed stream, or added to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Events whose data was not valid JSON: dropped, never relayed.
    pub dropped_events: u64,
    /// The upstream ended cleanly after its final `message_delta` without `message_stop`, and
    /// the relay appended one.
    pub repaired_ending: bool,
}

type BoxFrames = Pin<Box<dyn Stream<Item = Result<Frame, StreamError>> + Send>>;

/// The SSE frames of a committed stream, as chunks of complete raw frames: each frame as soon
/// as it arrives, and frames that arrived together in one chunk.
///
/// Enforces the idle timeout (longest silence between two frames) and the total deadline.
/// A clean end without `message_stop` is [`StreamError::Truncated`]; an `event: error` frame is
/// yielded, then [`StreamError::ErrorEvent`]; after `message_stop` or any `Err` it ends.
pub struct EventStream {
    frames: BoxFrames,
    idle: Duration,
    /// When the latest frame came (the stream's start before the first).
    last_frame: Instant,
    /// Fires at or before `last_frame + idle`; moved forward only when it fires, so a busy
    /// stream does not re-arm a timer for every event.
    idle_timer: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    state: State,
    stats: StreamStats,
}

enum State {
    Open,
    Failing(StreamError),
    Done,
}

impl EventStream {
    /// Wraps parsed frames with the idle timeout and the total deadline.
    pub fn new(
        frames: impl Stream<Item = Result<Frame, StreamError>> + Send + 'static,
        idle: Duration,
        deadline: Instant,
    ) -> Self {
        EventStream {
            frames: Box::pin(frames),
            idle,
            last_frame: Instant::now(),
            idle_timer: Box::pin(sleep(idle)),
            deadline: Box::pin(sleep_until(deadline)),
            state: State::Open,
            stats: StreamStats::default(),
        }
    }

    /// What was dropped from the stream or appended to it so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    fn finish(
        &mut self,
        item: Option<Result<Bytes, StreamError>>,
    ) -> Poll<Option<<Self as Stream>::Item>> {
        self.state = State::Done;
        self.frames = Box::pin(stream::empty());
        Poll::Ready(item)
    }

    /// Notes what a relayed frame means for the stream: `message_stop` ends it, an
    /// `event: error` fails it once relayed.
    fn note(&mut self, frame: &Frame) {
        match frame.kind().as_deref() {
            Some("message_stop") => self.state = State::Done,
            Some("error") => {
                let kind = failure::error_event_kind(frame.data());
                self.state = State::Failing(StreamError::ErrorEvent { kind });
            }
            _ => {}
        }
    }

    /// Relays `first` together with the frames that have already arrived after it, as one
    /// chunk: a burst of events costs one write, and no frame waits for another.
    fn relay(
        &mut self,
        first: Frame,
        cx: &mut Context<'_>,
    ) -> Poll<Option<<Self as Stream>::Item>> {
        self.last_frame = Instant::now();
        self.note(&first);
        let first = first.into_raw();
        let mut burst: Option<BytesMut> = None;
        while matches!(self.state, State::Open)
            && burst.as_ref().map_or(first.len(), BytesMut::len) < BURST_BYTES
        {
            let frame = match self.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => {
                    self.state = State::Failing(error);
                    break;
                }
                Poll::Ready(None) => {
                    self.state = State::Failing(StreamError::Truncated);
                    break;
                }
                Poll::Pending => break,
            };
            self.note(&frame);
            burst
                .get_or_insert_with(|| {
                    let mut burst = BytesMut::with_capacity(2 * (first.len() + frame.raw().len()));
                    burst.extend_from_slice(&first);
                    burst
                })
                .extend_from_slice(frame.raw());
        }
        Poll::Ready(Some(Ok(burst.map_or(first, BytesMut::freeze))))
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match std::mem::replace(&mut this.state, State::Open) {
            State::Open => {}
            State::Failing(error) => return this.finish(Some(Err(error))),
            State::Done => return this.finish(None),
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.finish(Some(Err(StreamError::Total)));
        }
        match this.frames.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => this.relay(frame, cx),
            Poll::Ready(Some(Err(error))) => this.finish(Some(Err(error))),
            Poll::Ready(None) => this.finish(Some(Err(StreamError::Truncated))),
            Poll::Pending => loop {
                ready!(this.idle_timer.as_mut().poll(cx));
                let idle_until = this.last_frame + this.idle;
                if Instant::now() >= idle_until {
                    return this.finish(Some(Err(StreamError::Idle(this.idle))));
                }
                // Frames came since the timer was set: wait out the rest of the silence.
                this.idle_timer.as_mut().reset(idle_until);
            },
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

/// A 2xx streamed answer, before its commit point.
pub(super) struct PendingStream {
    pub status: StatusCode,
    /// The relayed headers.
    pub headers: HeaderMap,
    /// When the first event must have arrived.
    pub first_event_by: Instant,
    /// The total deadline.
    pub deadline: Instant,
    /// The idle timeout once committed.
    pub idle: Duration,
}

impl PendingStream {
    /// Reads frames until the first event that is not a `ping` (or a comment): commits to it,
    /// or fails the attempt when it is an `event: error`, never comes, or the body ends first.
    pub async fn commit<S>(self, frames: S) -> Result<UpstreamResponse, AttemptError>
    where
        S: Stream<Item = Result<Frame, StreamError>> + Send + 'static,
    {
        let mut frames = Box::pin(frames);
        let mut read = Vec::new();
        loop {
            let next = timeout_at(self.first_event_by, frames.next())
                .await
                .map_err(|_| AttemptError::Timeout {
                    phase: "first event",
                })?;
            let frame = match next {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Err(error.attempt_error()),
                None => {
                    return Err(AttemptError::Connection {
                        message: "stream ended before the first event".to_owned(),
                    });
                }
            };
            match frame.kind().as_deref() {
                None | Some("ping") => read.push(frame),
                Some("error") => return Err(self.error_event(&frame)),
                Some(_) => {
                    read.push(frame);
                    break;
                }
            }
        }
        let frames = stream::iter(read.into_iter().map(Ok)).chain(frames);
        Ok(UpstreamResponse {
            status: self.status,
            headers: self.headers,
            body: ResponseBody::Stream(EventStream::new(frames, self.idle, self.deadline)),
        })
    }

    fn error_event(self, frame: &Frame) -> AttemptError {
        let kind = failure::error_event_kind(frame.data());
        let status = StatusCode::from_u16(anthropic::status_for_error_type(&kind))
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let retry_after = failure::retry_after(&self.headers, SystemTime::now());
        let mut headers = self.headers;
        headers.insert(header::CONTENT_TYPE, failure::json_content_type());
        let body = Bytes::from(frame.data().unwrap_or_default().to_owned());
        UpstreamFailure::from_upstream(status, headers, body).into_attempt_error(retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &str) -> Result<Frame, StreamError> {
        Ok(Frame::parse(Bytes::from(format!(
            "event: {event}\ndata: {{\"type\":\"{event}\"}}\n\n"
        ))))
    }

    /// The raw bytes of `frame(event)` for each event, one after the other.
    fn raw(events: &[&str]) -> Bytes {
        let raw: Vec<u8> = events
            .iter()
            .flat_map(|event| frame(event).unwrap().into_raw().to_vec())
            .collect();
        Bytes::from(raw)
    }

    fn long_deadline() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    async fn collect(events: EventStream) -> Vec<Result<Bytes, StreamError>> {
        events.collect().await
    }

    /// Everything a stream of `frames` relays, with an `idle` timeout and no deadline soon.
    async fn relayed(
        frames: impl Stream<Item = Result<Frame, StreamError>> + Send + 'static,
        idle: Duration,
    ) -> Vec<Result<Bytes, StreamError>> {
        collect(EventStream::new(frames, idle, long_deadline())).await
    }

    #[tokio::test(start_paused = true)]
    async fn ends_cleanly_after_message_stop_even_if_more_would_come() {
        let frames = stream::iter([frame("message_start"), frame("message_stop"), frame("ping")]);
        let out = relayed(frames, Duration::from_secs(1)).await;
        // The two frames had both arrived: one chunk, and nothing after message_stop.
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].as_ref().unwrap(),
            &raw(&["message_start", "message_stop"])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_relayed_before_the_failure_that_ends_it() {
        let frames = stream::iter([frame("message_start"), frame("content_block_delta")]);
        let out = relayed(frames, Duration::from_secs(1)).await;
        assert!(matches!(
            out.as_slice(),
            [Ok(burst), Err(StreamError::Truncated)] if burst == &raw(&["message_start", "content_block_delta"])
        ));

        let frames = stream::iter([
            frame("message_start"),
            frame("content_block_delta"),
            Err(StreamError::Transport("reset".to_owned())),
            frame("message_stop"),
        ]);
        let out = relayed(frames, Duration::from_secs(1)).await;
        assert!(matches!(
            out.as_slice(),
            [Ok(burst), Err(StreamError::Transport(_))] if burst == &raw(&["message_start", "content_block_delta"])
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_burst_goes_out_in_bounded_chunks_with_nothing_lost() {
        let big = |n: u8| {
            let text = String::from(char::from(b'a' + n)).repeat(40 * 1024);
            Ok(Frame::parse(Bytes::from(format!(
                "event: content_block_delta\ndata: {text}\n\n"
            ))))
        };
        let all = [big(0), big(1), big(2), big(3), frame("message_stop")];
        let expected: Vec<u8> = all
            .iter()
            .flat_map(|frame| frame.as_ref().unwrap().raw().to_vec())
            .collect();
        let out = relayed(stream::iter(all), Duration::from_secs(1)).await;
        assert!(out.len() > 1, "one chunk of {} bytes", expected.len());
        for chunk in &out {
            // A chunk stops growing once it passes the bound: at most one frame beyond it.
            assert!(chunk.as_ref().unwrap().len() < BURST_BYTES + 41 * 1024);
        }
        let relayed: Vec<u8> = out
            .iter()
            .flat_map(|c| c.as_ref().unwrap().to_vec())
            .collect();
        assert_eq!(relayed, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_end_without_message_stop_is_truncated() {
        let frames = stream::iter([frame("message_start")]);
        let out = relayed(frames, Duration::from_secs(1)).await;
        assert!(matches!(
            out.as_slice(),
            [Ok(_), Err(StreamError::Truncated)]
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_longer_than_idle_ends_the_stream() {
        let frames = stream::iter([frame("message_start")]).chain(stream::pending());
        let out = relayed(frames, Duration::from_secs(2)).await;
        assert!(
            matches!(out.as_slice(), [Ok(_), Err(StreamError::Idle(d))] if *d == Duration::from_secs(2))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn frames_closer_than_idle_keep_a_stream_open_and_silence_counts_from_the_last() {
        let started = Instant::now();
        let talking = stream::unfold(0, |sent| async move {
            (sent < 8).then_some(())?;
            sleep(Duration::from_millis(600)).await;
            Some((frame("ping"), sent + 1))
        })
        .chain(stream::pending());
        let out = relayed(talking, Duration::from_secs(1)).await;
        assert_eq!(out.len(), 9);
        assert!(out[..8].iter().all(Result::is_ok));
        assert!(matches!(out[8], Err(StreamError::Idle(_))));
        // The last frame came at 4.8 s; the stream ends one idle period after it.
        assert_eq!(started.elapsed(), Duration::from_millis(5800));
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_deadline_ends_a_stream_that_keeps_talking() {
        let ticking = stream::unfold((), |()| async {
            sleep(Duration::from_millis(100)).await;
            Some((frame("ping"), ()))
        });
        let deadline = Instant::now() + Duration::from_secs(1);
        let out = collect(EventStream::new(ticking, Duration::from_secs(1), deadline)).await;
        assert!(matches!(out.last(), Some(Err(StreamError::Total))));
        assert!((9..=10).contains(&(out.len() - 1)), "{} frames", out.len());
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_event_is_relayed_then_ends_the_stream() {
        let error = Bytes::from_static(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        let frames = stream::iter([
            frame("message_start"),
            Ok(Frame::parse(error.clone())),
            frame("ping"),
        ]);
        let out = relayed(frames, Duration::from_secs(1)).await;
        assert_eq!(out.len(), 2);
        let mut relayed = raw(&["message_start"]).to_vec();
        relayed.extend_from_slice(&error);
        assert_eq!(out[0].as_ref().unwrap(), &relayed);
        let Err(failure) = &out[1] else {
            panic!("{out:?}")
        };
        assert!(matches!(failure, StreamError::ErrorEvent { kind } if kind == "overloaded_error"));
        assert_eq!(failure.error_type(), "overloaded_error");
        assert_eq!(failure.attempt_error().status_code(), Some(529));
    }

    #[test]
    fn stream_errors_map_to_attempt_errors() {
        assert!(matches!(
            StreamError::Idle(Duration::from_secs(1)).attempt_error(),
            AttemptError::Timeout { .. }
        ));
        assert!(matches!(
            StreamError::Total.attempt_error(),
            AttemptError::Timeout { .. }
        ));
        assert!(matches!(
            StreamError::Truncated.attempt_error(),
            AttemptError::Connection { .. }
        ));
        assert_eq!(StreamError::Truncated.error_type(), "api_error");
    }
}
