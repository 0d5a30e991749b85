//! Server-sent events framing: an incremental parser over arbitrary chunk boundaries.
//!
//! Lines end in LF or CRLF; a blank line ends a frame. Each [`Frame`] keeps its raw bytes
//! (normalised to LF, ending in a blank line) so it can be relayed as it came, plus its
//! `event:` name and `data:` payload. Comments (`:`) are kept in the raw bytes and otherwise
//! ignored; a malformed frame (invalid UTF-8, no data) is passed through, never a panic.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};

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
                continue;
            };
            let range = start + value_start..start + line.len();
            if field == b"event" {
                event = Some(range);
                continue;
            }
            data = Some(match data.take() {
                None => Data::Line(range),
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

    /// The `data:` payload (several `data:` lines joined by LF), when present.
    pub fn data(&self) -> Option<&str> {
        match self.data.as_ref()? {
            Data::Line(range) => self.text(range.clone()),
            Data::Joined(joined) => Some(joined),
        }
    }

    /// What kind of event this is: the `event:` field, else the `type` of a JSON payload.
    /// `None` for a frame that is not an event (only comments, or nothing usable).
    pub fn kind(&self) -> Option<Cow<'_, str>> {
        if let Some(event) = self.event() {
            return Some(Cow::Borrowed(event));
        }
        let data: serde_json::Value = serde_json::from_str(self.data()?).ok()?;
        data.get("type")?
            .as_str()
            .map(|kind| Cow::Owned(kind.to_owned()))
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
    /// How much of `pending` is known to hold no LF.
    scanned: usize,
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
        if let Some(frame) = self.whole_frame() {
            return Ok(Some(frame));
        }
        loop {
            let unscanned = &self.pending[self.scanned..];
            let Some(offset) = memchr::memchr(b'\n', unscanned) else {
                self.scanned = self.pending.len();
                self.check_size(self.pending.len())?;
                return Ok(None);
            };
            let end = self.scanned + offset;
            let mut line = self.pending.split_to(end + 1);
            self.scanned = 0;
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
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

    /// At the end of the input: the last frame, when it lacked its closing blank line.
    pub fn finish(&mut self) -> Option<Frame> {
        if !self.pending.is_empty() {
            let mut line = self.pending.split();
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.frame.extend_from_slice(&line);
            self.frame.extend_from_slice(b"\n");
        }
        self.scanned = 0;
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
/// [`MAX_FRAME_BYTES`], ends it with an `Err`.
pub fn frames<S, E>(body: S) -> impl Stream<Item = Result<Frame, StreamError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: fmt::Display,
{
    let start = (body, SseParser::new(MAX_FRAME_BYTES), VecDeque::new());
    stream::unfold(Some(start), |state| async move {
        let (mut body, mut parser, mut ready) = state?;
        loop {
            if let Some(frame) = ready.pop_front() {
                return Some((Ok(frame), Some((body, parser, ready))));
            }
            match body.next().await {
                Some(Ok(chunk)) => {
                    parser.push(&chunk);
                    loop {
                        match parser.next_frame() {
                            Ok(Some(frame)) => ready.push_back(frame),
                            Ok(None) => break,
                            Err(error) => return Some((Err(error), None)),
                        }
                    }
                }
                Some(Err(error)) => {
                    return Some((Err(StreamError::Transport(error.to_string())), None));
                }
                None => return parser.finish().map(|frame| (Ok(frame), None)),
            }
        }
    })
}

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
    fn keeps_comments_in_raw_bytes_and_ignores_them_otherwise() {
        let frames = parse_all(&[b": keep-alive\n\n: note\nevent: x\ndata: 1\n\n"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].kind(), None);
        assert_eq!(frames[0].raw().as_ref(), b": keep-alive\n\n");
        assert_eq!(frames[1].event(), Some("x"));
        assert_eq!(frames[1].raw().as_ref(), b": note\nevent: x\ndata: 1\n\n");
    }

    #[test]
    fn joins_multiple_data_lines_and_falls_back_to_the_json_type() {
        let frames = parse_all(&[b"data: {\"type\":\ndata: \"message_stop\"}\n\n"]);
        assert_eq!(frames[0].data(), Some("{\"type\":\n\"message_stop\"}"));
        assert_eq!(frames[0].kind().as_deref(), Some("message_stop"));
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
}
