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
    /// The upstream body ended before `message_stop`: in the middle of a frame, or between
    /// frames but before the final `message_delta` (after it, the relay appends
    /// `message_stop` itself).
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

/// The `message_stop` the relay appends when the upstream left it out.
const MESSAGE_STOP: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

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
/// An event whose data is not valid JSON is dropped, not relayed; events of any other type
/// pass unchanged, known or not. A clean end after the final `message_delta` (one with a
/// `stop_reason`) gets the `message_stop` the upstream left out; any other end without
/// `message_stop` is [`StreamError::Truncated`]. An `event: error` frame is yielded, then
/// [`StreamError::ErrorEvent`]; after `message_stop` or any `Err` it ends. [`EventStream::stats`]
/// says what was dropped or appended.
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
    /// The final `message_delta` has been relayed: only `message_stop` is left.
    stopping: bool,
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
            stopping: false,
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

    /// Reads a frame (once): whether it is relayed, and what it means for the stream. One
    /// whose data is not JSON is dropped and counted; `message_stop` ends the stream, an
    /// `event: error` fails it once relayed, the final `message_delta` leaves only
    /// `message_stop` to come.
    fn admit(&mut self, frame: &Frame) -> bool {
        let reading = frame.read();
        if reading.malformed {
            self.stats.dropped_events += 1;
            return false;
        }
        match reading.kind.as_deref() {
            Some("message_stop") => self.state = State::Done,
            Some("error") => {
                let kind = failure::error_event_kind(frame.data());
                self.state = State::Failing(StreamError::ErrorEvent { kind });
            }
            Some("message_delta") if reading.stop_reason => self.stopping = true,
            _ => {}
        }
        true
    }

    /// The body ended between frames: after the final `message_delta` only `message_stop` is
    /// missing, and here it is (the stream is then done); before it, the answer is truncated.
    fn clean_end(&mut self) -> Result<Bytes, StreamError> {
        if !self.stopping {
            return Err(StreamError::Truncated);
        }
        self.stats.repaired_ending = true;
        self.state = State::Done;
        Ok(Bytes::from_static(MESSAGE_STOP))
    }

    /// Relays `first` (admitted) together with the frames that have already arrived after it,
    /// as one chunk: a burst of events costs one write, and no frame waits for another.
    fn relay(
        &mut self,
        first: Frame,
        cx: &mut Context<'_>,
    ) -> Poll<Option<<Self as Stream>::Item>> {
        let first = first.into_raw();
        let mut burst: Option<BytesMut> = None;
        while matches!(self.state, State::Open)
            && burst.as_ref().map_or(first.len(), BytesMut::len) < BURST_BYTES
        {
            let next = match self.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if !self.admit(&frame) {
                        continue;
                    }
                    frame.into_raw()
                }
                Poll::Ready(Some(Err(error))) => {
                    self.state = State::Failing(error);
                    break;
                }
                Poll::Ready(None) => match self.clean_end() {
                    Ok(message_stop) => message_stop,
                    Err(error) => {
                        self.state = State::Failing(error);
                        break;
                    }
                },
                Poll::Pending => break,
            };
            burst
                .get_or_insert_with(|| {
                    let mut burst = BytesMut::with_capacity(2 * (first.len() + next.len()));
                    burst.extend_from_slice(&first);
                    burst
                })
                .extend_from_slice(&next);
        }
        Poll::Ready(Some(Ok(burst.map_or(first, BytesMut::freeze))))
    }

    /// No frame is ready: waits, unless the silence has outlasted the idle timeout.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<<Self as Stream>::Item>> {
        loop {
            ready!(self.idle_timer.as_mut().poll(cx));
            let idle_until = self.last_frame + self.idle;
            if Instant::now() >= idle_until {
                return self.finish(Some(Err(StreamError::Idle(self.idle))));
            }
            // Frames came since the timer was set: wait out the rest of the silence.
            self.idle_timer.as_mut().reset(idle_until);
        }
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
        loop {
            match this.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Any frame breaks the silence, even one that is dropped.
                    this.last_frame = Instant::now();
                    if this.admit(&frame) {
                        return this.relay(frame, cx);
                    }
                }
                Poll::Ready(Some(Err(error))) => return this.finish(Some(Err(error))),
                Poll::Ready(None) => {
                    let end = this.clean_end();
                    return this.finish(Some(end));
                }
                Poll::Pending => return this.wait(cx),
            }
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

/// Why an attempt whose stream starts with an event that is not JSON failed.
const NOT_JSON: &str = "the provider's first event is not valid JSON";

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
    /// A frame whose data is not valid JSON fails it too, as a bad gateway (a 502 fails over):
    /// nothing has reached the client yet, and a broken first event says little for the rest.
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
                // A body cut inside a frame ends its frames with `Truncated`.
                None | Some(Err(StreamError::Truncated)) => {
                    return Err(AttemptError::Connection {
                        message: "stream ended before the first event".to_owned(),
                    });
                }
                Some(Err(error)) => return Err(error.attempt_error()),
            };
            let reading = frame.read();
            if reading.malformed {
                let failure = UpstreamFailure::bad_gateway(NOT_JSON);
                return Err(failure.into_attempt_error(None));
            }
            let first_event = match reading.kind.as_deref() {
                None | Some("ping") => false,
                Some("error") => return Err(self.error_event(&frame)),
                Some(_) => true,
            };
            read.push(frame);
            if first_event {
                break;
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
                "event: content_block_delta\ndata: \"{text}\"\n\n"
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

    /// A frame with `data` as its data line.
    fn with_data(event: &str, data: &str) -> Result<Frame, StreamError> {
        Ok(Frame::parse(Bytes::from(format!(
            "event: {event}\ndata: {data}\n\n"
        ))))
    }

    fn final_delta() -> Result<Frame, StreamError> {
        with_data(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}"#,
        )
    }

    /// Ends after `delay`, with nothing more.
    fn end_after(delay: Duration) -> impl Stream<Item = Result<Frame, StreamError>> + Send {
        stream::once(sleep(delay)).filter_map(|()| async { None::<Result<Frame, StreamError>> })
    }

    /// Everything a stream of `frames` relays, in one piece, how it failed if it did, and its
    /// stats once it ended.
    async fn relayed_with_stats(
        frames: impl Stream<Item = Result<Frame, StreamError>> + Send + 'static,
    ) -> (Vec<u8>, Option<StreamError>, StreamStats) {
        drain(EventStream::new(
            frames,
            Duration::from_secs(1),
            long_deadline(),
        ))
        .await
    }

    /// [`relayed_with_stats`] of a built stream.
    async fn drain(mut events: EventStream) -> (Vec<u8>, Option<StreamError>, StreamStats) {
        let mut bytes = Vec::new();
        let mut failure = None;
        while let Some(item) = events.next().await {
            match item {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(error) => failure = Some(error),
            }
        }
        (bytes, failure, events.stats())
    }

    fn raw_of(frames: &[Result<Frame, StreamError>]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|frame| frame.as_ref().unwrap().raw().to_vec())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_end_after_the_final_message_delta_gets_the_missing_message_stop() {
        let sent = [
            frame("message_start"),
            frame("content_block_stop"),
            final_delta(),
        ];
        let mut expected = raw_of(&sent);
        expected.extend_from_slice(MESSAGE_STOP);
        // Arriving with the rest, or on its own after a pause.
        let together = stream::iter(sent.clone());
        let apart = stream::iter(sent.clone()).chain(end_after(Duration::from_millis(100)));
        for (bytes, failure, stats) in [
            relayed_with_stats(together).await,
            relayed_with_stats(apart).await,
        ] {
            assert_eq!(bytes, expected, "{}", String::from_utf8_lossy(&bytes));
            assert!(failure.is_none(), "{failure:?}");
            assert_eq!(
                stats,
                StreamStats {
                    dropped_events: 0,
                    repaired_ending: true
                }
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_end_after_a_message_delta_without_a_stop_reason_is_still_truncated() {
        let open_delta = with_data(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":3}}"#,
        );
        let (bytes, failure, stats) =
            relayed_with_stats(stream::iter([frame("message_start"), open_delta])).await;
        assert!(
            matches!(failure, Some(StreamError::Truncated)),
            "{failure:?}"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("message_stop"));
        assert_eq!(stats, StreamStats::default());

        // A stop reason elsewhere than in a `message_delta` does not end the message.
        let elsewhere = with_data(
            "content_block_delta",
            r#"{"type":"content_block_delta","delta":{"stop_reason":"end_turn"}}"#,
        );
        let (_, failure, _) =
            relayed_with_stats(stream::iter([frame("message_start"), elsewhere])).await;
        assert!(
            matches!(failure, Some(StreamError::Truncated)),
            "{failure:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_cut_inside_a_frame_after_the_final_message_delta_is_still_truncated() {
        let mut body = raw_of(&[frame("message_start"), final_delta()]);
        body.extend_from_slice(b"event: ping\ndata: {\"type\":");
        let chunks: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from(body))];
        let (bytes, failure, stats) =
            relayed_with_stats(super::super::sse::frames(stream::iter(chunks))).await;
        assert!(
            matches!(failure, Some(StreamError::Truncated)),
            "{failure:?}"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("message_stop"));
        assert!(!stats.repaired_ending);
        // The cut frame was not JSON: dropped.
        assert_eq!(stats.dropped_events, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn events_whose_data_is_not_json_are_dropped_and_counted() {
        let broken = with_data("content_block_delta", "{not json");
        let untyped = Ok(Frame::parse(Bytes::from_static(b"data: {\"half\":\n\n")));
        let kept = [
            frame("message_start"),
            frame("content_block_delta"),
            frame("message_stop"),
        ];
        let sent = [
            kept[0].clone(),
            broken.clone(),
            kept[1].clone(),
            untyped,
            kept[2].clone(),
        ];
        // Arriving together, and one by one.
        let together = stream::iter(sent.clone());
        let apart = stream::iter(sent).then(|frame| async move {
            sleep(Duration::from_millis(10)).await;
            frame
        });
        for (bytes, failure, stats) in [
            relayed_with_stats(together).await,
            relayed_with_stats(apart).await,
        ] {
            assert_eq!(bytes, raw_of(&kept), "{}", String::from_utf8_lossy(&bytes));
            assert!(failure.is_none(), "{failure:?}");
            assert_eq!(stats.dropped_events, 2);
            assert!(!stats.repaired_ending);
        }
        // A broken `message_stop` is no `message_stop`.
        let (_, failure, stats) = relayed_with_stats(stream::iter([
            frame("message_start"),
            with_data("message_stop", "{"),
        ]))
        .await;
        assert!(
            matches!(failure, Some(StreamError::Truncated)),
            "{failure:?}"
        );
        assert_eq!(stats.dropped_events, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn events_of_types_the_relay_does_not_know_and_comments_pass_unchanged() {
        let sent = [
            frame("message_start"),
            with_data(
                "brand_new_event",
                r#"{"type":"brand_new_event","x":[1,{"y":null}]}"#,
            ),
            Ok(Frame::parse(Bytes::from_static(b": keep-alive\n\n"))),
            with_data("content_block_delta", "[1,2]"),
            frame("message_stop"),
        ];
        let (bytes, failure, stats) = relayed_with_stats(stream::iter(sent.clone())).await;
        assert_eq!(bytes, raw_of(&sent));
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(stats, StreamStats::default());
    }

    fn pending() -> PendingStream {
        PendingStream {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            first_event_by: Instant::now() + Duration::from_secs(1),
            deadline: long_deadline(),
            idle: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_event_that_is_not_json_fails_the_attempt_as_a_bad_gateway() {
        for first in [
            with_data("message_start", "{\"type\":\"message_start\""),
            Ok(Frame::parse(Bytes::from_static(b"data: not json\n\n"))),
        ] {
            let frames = stream::iter([frame("ping"), first, frame("message_stop")]);
            let error = pending().commit(frames).await.unwrap_err();
            let AttemptError::Status { status, detail, .. } = &error else {
                panic!("{error:?}")
            };
            assert_eq!(*status, 502);
            let failure = detail.downcast_ref::<UpstreamFailure>().unwrap();
            let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
            assert_eq!(body["error"]["type"], "api_error");
            assert_eq!(body["error"]["message"], NOT_JSON);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_commits_at_its_first_event_and_relays_what_came_before() {
        let sent = [
            Ok(Frame::parse(Bytes::from_static(b": hello\n\n"))),
            frame("ping"),
            frame("message_start"),
            final_delta(),
        ];
        let response = pending().commit(stream::iter(sent.clone())).await.unwrap();
        let ResponseBody::Stream(events) = response.body else {
            panic!("a stream")
        };
        let mut expected = raw_of(&sent);
        expected.extend_from_slice(MESSAGE_STOP);
        let (bytes, failure, stats) = drain(events).await;
        assert_eq!(bytes, expected, "{}", String::from_utf8_lossy(&bytes));
        assert!(failure.is_none());
        assert!(stats.repaired_ending);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_cut_inside_a_frame_before_the_first_event_is_a_connection_error() {
        let chunks: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from_static(
            b"event: ping\ndata: {}\n\nevent: ping\ndata: {}",
        ))];
        let error = pending()
            .commit(super::super::sse::frames(stream::iter(chunks)))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, AttemptError::Connection { message } if message == "stream ended before the first event"),
            "{error:?}"
        );
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
