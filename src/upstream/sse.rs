//! Server-sent events framing: an incremental parser over arbitrary chunk boundaries.
//!
//! Lines end in LF, CRLF or a lone CR, as the SSE standard has it; a blank line ends a frame.
//! Each [`Frame`] keeps its raw bytes (normalised to LF, ending in a blank line: relayed, they
//! read back as the same frame) so it can be relayed as it came, plus its
//! `event:` name and `data:` payload. Comments (`:`) are kept in the raw bytes and otherwise
//! ignored; a malformed frame (invalid UTF-8, no data) is parsed like any other, never a panic.
//! [`Frame::read`] says what the relay needs to know of a frame, parsing its data once.

mod payload;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};

use self::payload::Payload;
use super::StreamError;

/// Largest frame accepted (16 MiB); a larger one ends the stream.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// One complete SSE frame. Its fields are read once, as positions in its raw bytes: parsing
/// copies nothing unless the frame has several `data:` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
    event: Option<Range<usize>>,
    data: Option<Data>,
}

/// Where a frame's `data:` payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    /// One `data:` line: a range of the raw bytes.
    Line(Range<usize>),
    /// Several, joined by LF.
    Joined(String),
    /// A `data:` line that is not UTF-8 (so not JSON either).
    NotText,
}

/// A frame as the relay reads it (see [`Frame::read`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading<'a> {
    /// What kind of event it is: the `event:` field, else the `type` of its JSON data. `None`
    /// for a frame that is not an event (only comments, or nothing usable).
    pub kind: Option<Cow<'a, str>>,
    /// It has data and that data is not valid JSON.
    pub malformed: bool,
    /// Its data's `delta.stop_reason` is set (not null): in a `message_delta`, the message is
    /// over and only `message_stop` is left.
    pub stop_reason: bool,
}

impl Frame {
    /// Parses one complete frame (its lines, LF-terminated, and the blank line after them).
    pub fn parse(raw: Bytes) -> Self {
        let mut event = None;
        let mut data: Option<Data> = None;
        let mut line_start = 0;
        while line_start < raw.len() {
            let line_end = memchr::memchr(b'\n', &raw[line_start..])
                .map_or(raw.len(), |offset| line_start + offset);
            let line = &raw[line_start..line_end];
            let start = line_start;
            line_start = line_end + 1;
            // Only `event` and `data` matter; a comment (`:` first) or another field is skipped
            // without looking further.
            let (field, value_start) = match memchr::memchr(b':', line) {
                Some(0) => continue,
                Some(colon) if line.get(colon + 1) == Some(&b' ') => (&line[..colon], colon + 2),
                Some(colon) => (&line[..colon], colon + 1),
                None => (line, line.len()),
            };
            if field != b"event" && field != b"data" {
                continue;
            }
            let Ok(value) = std::str::from_utf8(&line[value_start..]) else {
                if field == b"data" {
                    data = Some(Data::NotText);
                }
                continue;
            };
            let range = start + value_start..start + line.len();
            if field == b"event" {
                event = Some(range);
                continue;
            }
            data = Some(match data.take() {
                None => Data::Line(range),
                Some(Data::NotText) => Data::NotText,
                Some(Data::Line(first)) => {
                    let first = std::str::from_utf8(&raw[first]).unwrap_or_default();
                    Data::Joined(format!("{first}\n{value}"))
                }
                Some(Data::Joined(mut joined)) => {
                    joined.push('\n');
                    joined.push_str(value);
                    Data::Joined(joined)
                }
            });
        }
        Frame { raw, event, data }
    }

    /// The frame as relayed: its lines and the blank line that ends it.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The raw bytes, consuming the frame.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    /// The `event:` field, when present.
    pub fn event(&self) -> Option<&str> {
        self.text(self.event.clone()?)
    }

    /// The `data:` payload (several `data:` lines joined by LF), when present and UTF-8.
    pub fn data(&self) -> Option<&str> {
        match self.data.as_ref()? {
            Data::Line(range) => self.text(range.clone()),
            Data::Joined(joined) => Some(joined),
            Data::NotText => None,
        }
    }

    /// What the relay needs to know of this frame: its kind, whether its data is valid JSON,
    /// and whether it says the message is over. Parses the data once, building nothing but the
    /// `type` (and that only when it is escaped).
    pub fn read(&self) -> Reading<'_> {
        let payload = match &self.data {
            None => Some(Payload::default()),
            Some(Data::NotText) => None,
            Some(_) => self.data().and_then(Payload::read),
        };
        let malformed = payload.is_none();
        let Payload { kind, stop_reason } = payload.unwrap_or_default();
        Reading {
            kind: self.event().map(Cow::Borrowed).or(kind),
            malformed,
            stop_reason,
        }
    }

    /// A field's text; the parse only keeps ranges of valid UTF-8 lines.
    fn text(&self, range: Range<usize>) -> Option<&str> {
        std::str::from_utf8(self.raw.get(range)?).ok()
    }
}

/// Incremental SSE parser: push chunks, pull complete frames.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes received and not yet split into lines.
    pending: BytesMut,
    /// How much of `pending` is known to hold no line end (LF or CR).
    scanned: usize,
    /// The last line ended in a CR at the end of the received bytes: an LF first in the next
    /// ones is the rest of that CRLF, not a blank line.
    after_cr: bool,
    /// The lines of the frame being read, each LF-terminated.
    frame: BytesMut,
    max_frame: usize,
}

impl SseParser {
    /// A parser that rejects frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        SseParser {
            pending: BytesMut::new(),
            scanned: 0,
            after_cr: false,
            frame: BytesMut::new(),
            max_frame,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, StreamError> {
        if self.after_cr && !self.pending.is_empty() {
            self.after_cr = false;
            if self.pending[0] == b'\n' {
                self.pending.advance(1);
            }
        }
        if let Some(frame) = self.whole_frame() {
            return Ok(Some(frame));
        }
        loop {
            let unscanned = &self.pending[self.scanned..];
            let Some(offset) = memchr::memchr2(b'\n', b'\r', unscanned) else {
                self.scanned = self.pending.len();
                self.check_size(self.pending.len())?;
                return Ok(None);
            };
            let end = self.scanned + offset;
            let ending = match &self.pending[end..] {
                [b'\r', b'\n', ..] => 2,
                [b'\r'] => {
                    self.after_cr = true;
                    1
                }
                _ => 1,
            };
            let mut line = self.pending.split_to(end + ending);
            self.scanned = 0;
            line.truncate(end);
            if line.is_empty() {
                if let Some(frame) = self.take_frame() {
                    return Ok(Some(frame));
                }
                continue;
            }
            self.check_size(line.len() + 1)?;
            self.frame.extend_from_slice(&line);
            self.frame.extend_from_slice(b"\n");
        }
    }

    /// At the end of the input (after [`SseParser::next_frame`] gave `Ok(None)`): the last
    /// frame, when it lacked its closing blank line.
    pub fn finish(&mut self) -> Option<Frame> {
        if !self.pending.is_empty() {
            // Drained by `next_frame`, what is left holds no line end.
            let line = self.pending.split();
            self.frame.extend_from_slice(&line);
            self.frame.extend_from_slice(b"\n");
        }
        self.scanned = 0;
        self.after_cr = false;
        self.take_frame()
    }

    /// The common case, without copying: a whole frame with LF line ends at the start of the
    /// received bytes, no line of it read yet. Anything else goes line by line.
    fn whole_frame(&mut self) -> Option<Frame> {
        if !self.frame.is_empty() || self.pending.first() == Some(&b'\n') {
            return None;
        }
        // Bytes before `scanned` hold no LF, so no blank line starts there: each byte is
        // searched once however the frame is chunked.
        let from = self.scanned;
        let at = memchr::memmem::find(&self.pending[from..], b"\n\n")?;
        let end = from + at + 2;
        // The lines without the blank line are what `check_size` bounds.
        if end - 1 > self.max_frame || self.pending[..end].contains(&b'\r') {
            return None;
        }
        self.scanned = 0;
        Some(Frame::parse(self.pending.split_to(end).freeze()))
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if self.frame.is_empty() {
            return None;
        }
        self.frame.extend_from_slice(b"\n");
        Some(Frame::parse(self.frame.split().freeze()))
    }

    fn check_size(&self, adding: usize) -> Result<(), StreamError> {
        if self.frame.len() + adding > self.max_frame {
            return Err(StreamError::Transport("event too large".to_owned()));
        }
        Ok(())
    }
}

/// Splits a byte stream into frames. A transport error, or a frame over
/// [`MAX_FRAME_BYTES`], ends it with an `Err`; so does a body that ends in the middle of a
/// frame, after that last frame ([`StreamError::Truncated`]: the framing was not clean). A
/// body that ends between frames just ends.
pub fn frames<S, E>(body: S) -> impl Stream<Item = Result<Frame, StreamError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: fmt::Display,
{
    let start = Framing {
        body,
        parser: SseParser::new(MAX_FRAME_BYTES),
        ready: VecDeque::new(),
        ended: false,
    };
    stream::unfold(start, |mut framing| async move {
        let next = framing.next().await?;
        Some((next, framing))
    })
}

/// The state of [`frames`].
struct Framing<S> {
    body: S,
    parser: SseParser,
    /// What is ready to be yielded, in order.
    ready: VecDeque<Result<Frame, StreamError>>,
    /// Nothing more is read from the body.
    ended: bool,
}

impl<S, E> Framing<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: fmt::Display,
{
    async fn next(&mut self) -> Option<Result<Frame, StreamError>> {
        loop {
            if let Some(next) = self.ready.pop_front() {
                return Some(next);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.parser.push(&chunk);
                    loop {
                        match self.parser.next_frame() {
                            Ok(Some(frame)) => self.ready.push_back(Ok(frame)),
                            Ok(None) => break,
                            Err(error) => {
                                self.fail(error);
                                break;
                            }
                        }
                    }
                }
                Some(Err(error)) => self.fail(StreamError::Transport(error.to_string())),
                None => {
                    self.ended = true;
                    if let Some(frame) = self.parser.finish() {
                        self.ready.push_back(Ok(frame));
                        self.ready.push_back(Err(StreamError::Truncated));
                    }
                }
            }
        }
    }

    /// After what is ready, `error` ends the frames.
    fn fail(&mut self, error: StreamError) {
        self.ready.push_back(Err(error));
        self.ended = true;
    }
}

#[cfg(test)]
pub(crate) mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut parser = SseParser::new(MAX_FRAME_BYTES);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(frame) = parser.next_frame().unwrap() {
                out.push(frame);
            }
        }
        out.extend(parser.finish());
        out
    }

    const TWO_EVENTS: &[u8] =
        b"event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn splits_frames_on_blank_lines_and_reads_event_and_data() {
        let frames = parse_all(&[TWO_EVENTS]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].event(), Some("ping"));
        assert_eq!(frames[0].data(), Some("{\"type\": \"ping\"}"));
        assert_eq!(
            frames[1].raw().as_ref(),
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }

    #[test]
    fn gives_the_same_frames_for_every_chunk_split() {
        let whole = parse_all(&[TWO_EVENTS]);
        for at in 0..TWO_EVENTS.len() {
            let (a, b) = TWO_EVENTS.split_at(at);
            assert_eq!(parse_all(&[a, b]), whole, "split at {at}");
        }
        let bytes: Vec<&[u8]> = TWO_EVENTS.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn a_frame_arriving_a_byte_at_a_time_after_a_whole_one_is_the_same_frame() {
        let mut parser = SseParser::new(MAX_FRAME_BYTES);
        parser.push(b"event: a\ndata: 1\n\nevent: b\ndata: ");
        let first = parser.next_frame().unwrap().unwrap();
        assert_eq!(first.raw().as_ref(), b"event: a\ndata: 1\n\n");
        assert!(parser.next_frame().unwrap().is_none());
        let payload = vec![b'x'; 4096];
        for byte in payload.iter().chain(b"\n\n") {
            assert!(parser.next_frame().unwrap().is_none());
            parser.push(std::slice::from_ref(byte));
        }
        let second = parser.next_frame().unwrap().unwrap();
        assert_eq!(second.event(), Some("b"));
        assert_eq!(second.data().map(str::len), Some(4096));
    }

    #[test]
    fn normalises_crlf_even_when_split_between_cr_and_lf() {
        let crlf = b"event: ping\r\ndata: {}\r\n\r\n";
        let expected = parse_all(&[b"event: ping\ndata: {}\n\n"]);
        for at in 0..crlf.len() {
            let (a, b) = crlf.split_at(at);
            assert_eq!(parse_all(&[a, b]), expected, "split at {at}");
        }
    }

    #[test]
    fn a_lone_cr_ends_a_line_as_the_standard_says() {
        let cr = b"event: ping\rdata: {}\r\revent: b\rdata: 1\r\r";
        let frames = parse_all(&[cr]);
        let raw: Vec<&[u8]> = frames.iter().map(|f| f.raw().as_ref()).collect();
        assert_eq!(
            raw,
            [&b"event: ping\ndata: {}\n\n"[..], b"event: b\ndata: 1\n\n"]
        );
        let bytes: Vec<&[u8]> = cr.chunks(1).collect();
        assert_eq!(parse_all(&bytes), frames);
    }

    /// Found by the `sse` fuzz target: a line ending in CR CR LF kept one CR, so the frame
    /// relayed as `\r\n\n` (which reads back as a blank line, no frame) and `data: x\r\r\n\n`
    /// read as `x\r` where a client reads `x`.
    #[test]
    fn a_line_ending_in_cr_cr_lf_relays_as_it_reads() {
        assert_eq!(parse_all(&[b"\r\r\n"]), []);
        let frames = parse_all(&[b"data: x\r\r\n\n"]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].raw().as_ref(), b"data: x\n\n");
        assert_eq!(frames[0].data(), Some("x"));
        // The fuzz target's own input (its header: no frame limit to speak of, one push).
        crate::fuzzing::sse(&[12, 0, 13, 13, 10]);
    }

    #[test]
    fn keeps_comments_in_raw_bytes_and_ignores_them_otherwise() {
        let frames = parse_all(&[b": keep-alive\n\n: note\nevent: x\ndata: 1\n\n"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].read().kind, None);
        assert_eq!(frames[0].raw().as_ref(), b": keep-alive\n\n");
        assert_eq!(frames[1].event(), Some("x"));
        assert_eq!(frames[1].raw().as_ref(), b": note\nevent: x\ndata: 1\n\n");
    }

    #[test]
    fn joins_multiple_data_lines_and_falls_back_to_the_json_type() {
        let frames = parse_all(&[b"data: {\"type\":\ndata: \"message_stop\"}\n\n"]);
        assert_eq!(frames[0].data(), Some("{\"type\":\n\"message_stop\"}"));
        assert_eq!(frames[0].read().kind.as_deref(), Some("message_stop"));
    }

    #[test]
    fn passes_malformed_frames_through() {
        let frames = parse_all(&[b"event: \xff\xfe\ndata\n\n\xc3\n\n"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].event(), None);
        assert_eq!(frames[0].data(), Some(""));
        assert_eq!(frames[1].raw().as_ref(), b"\xc3\n\n");
    }

    #[test]
    fn emits_a_last_frame_without_its_blank_line_at_the_end() {
        let frames = parse_all(&[b"event: a\ndata: 1\n\nevent: b\ndata: 2"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].raw().as_ref(), b"event: b\ndata: 2\n\n");
    }

    #[test]
    fn rejects_an_oversized_frame_split_or_not() {
        let mut parser = SseParser::new(32);
        parser.push(b"data: ");
        parser.push(&[b'x'; 40]);
        assert!(matches!(
            parser.next_frame(),
            Err(StreamError::Transport(_))
        ));

        let mut parser = SseParser::new(32);
        parser.push(b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\n");
        assert!(parser.next_frame().is_err());

        let mut parser = SseParser::new(32);
        parser.push(b"data: 0123456789\n\ndata: 0123456789\n\ndata: 0123456789\n\n");
        assert_eq!(
            std::iter::from_fn(|| parser.next_frame().unwrap()).count(),
            3
        );
    }

    #[tokio::test]
    async fn frames_turns_a_byte_stream_into_frames_and_ends_on_transport_errors() {
        let chunks: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"event: a\nda")),
            Ok(Bytes::from_static(b"ta: 1\n\nevent: b\n")),
            Err("reset".to_owned()),
            Ok(Bytes::from_static(b"\n")),
        ];
        let out: Vec<_> = frames(stream::iter(chunks)).collect().await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap().event(), Some("a"));
        assert!(matches!(&out[1], Err(StreamError::Transport(m)) if m == "reset"));
    }

    #[tokio::test]
    async fn frames_ends_a_body_cut_inside_a_frame_as_truncated_after_that_frame() {
        let cut: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from_static(
            b"event: a\ndata: 1\n\nevent: b\ndata: {",
        ))];
        let out: Vec<_> = frames(stream::iter(cut)).collect().await;
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[1].as_ref().unwrap().event(), Some("b"));
        assert!(matches!(out[2], Err(StreamError::Truncated)));

        let clean: Vec<Result<Bytes, String>> =
            vec![Ok(Bytes::from_static(b"event: a\ndata: 1\n\n"))];
        let out: Vec<_> = frames(stream::iter(clean)).collect().await;
        assert!(matches!(out.as_slice(), [Ok(_)]), "{out:?}");
    }

    #[tokio::test]
    async fn frames_parsed_before_an_oversized_one_come_first() {
        let mut chunk = b"event: a\ndata: 1\n\ndata: ".to_vec();
        chunk.resize(MAX_FRAME_BYTES + 64, b'x');
        let body: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from(chunk))];
        let out: Vec<_> = frames(stream::iter(body)).collect().await;
        assert!(
            matches!(out.as_slice(), [Ok(a), Err(StreamError::Transport(_))] if a.event() == Some("a")),
            "{out:?}"
        );
    }

    fn read(raw: &'static [u8]) -> (Option<String>, bool, bool) {
        let frame = Frame::parse(Bytes::from_static(raw));
        let reading = frame.read();
        let kind = reading.kind.map(Cow::into_owned);
        (kind, reading.malformed, reading.stop_reason)
    }

    #[test]
    fn read_takes_the_kind_from_the_event_field_else_from_the_data() {
        assert_eq!(
            read(b"event: ping\ndata: {\"type\":\"other\"}\n\n"),
            (Some("ping".to_owned()), false, false)
        );
        assert_eq!(
            read(b"data: {\"type\":\"message_stop\"}\n\n"),
            (Some("message_stop".to_owned()), false, false)
        );
        assert_eq!(
            read(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"}}\n\n"),
            (Some("message_delta".to_owned()), false, true)
        );
    }

    #[test]
    fn read_marks_data_that_is_not_json_and_only_that() {
        // Comments, keep-alives and an event without data are not malformed.
        assert_eq!(read(b": keep-alive\n\n"), (None, false, false));
        assert_eq!(
            read(b"event: ping\n\n"),
            (Some("ping".to_owned()), false, false)
        );
        assert_eq!(
            read(b"event: x\ndata: [1, 2]\n\n"),
            (Some("x".to_owned()), false, false)
        );
        // The event name is still read when the data is broken.
        assert_eq!(
            read(b"event: content_block_delta\ndata: {not json\n\n"),
            (Some("content_block_delta".to_owned()), true, false)
        );
        assert_eq!(read(b"data: {not json\n\n"), (None, true, false));
        assert_eq!(
            read(b"event: x\ndata\n\n"),
            (Some("x".to_owned()), true, false)
        );
        assert_eq!(read(b"data: {\"a\":\n\n"), (None, true, false));
        assert_eq!(read(b"data: {\"a\":\ndata: 1}\n\n"), (None, false, false));
        // A data line that is not UTF-8 spoils the data, whatever the other lines are.
        assert_eq!(
            read(b"event: x\ndata: {}\ndata: \xff\n\n"),
            (Some("x".to_owned()), true, false)
        );
        assert_eq!(read(b"data: \xff\ndata: {}\n\n"), (None, true, false));
    }
}
