//! Entry points of the fuzz targets in `fuzz/` (see `docs/fuzzing.md`). Not an API: hidden from
//! the docs, shaped by the targets' needs.
//!
//! Each function takes arbitrary bytes, drives one of the relay's parsers the way the relay
//! does, and panics when an invariant breaks; that panic is what a fuzzer reports. The property
//! tests at the bottom feed the same functions on stable, so CI runs every target's checks.

use bytes::Bytes;

use crate::config;
use crate::http::BodyPeek;
use crate::upstream::bedrock::{EventStreamDecoder, Message as EventMessage};
use crate::upstream::sse::{Frame, SseParser};

/// The SSE parser: `input` is a header and a body. The header's first byte picks the frame
/// limit (its value times 8 bytes) and its second the number of chunk lengths that follow (up to
/// 15, one byte each); the body is pushed in chunks of those lengths, cycled.
///
/// Checks that the frames (and the error, if any) do not depend on the chunking; that each is
/// one or more non-empty lines and the blank line that ends it, within the limit; that reading
/// a frame never panics; and that the frames, relayed as they are, parse back to themselves.
///
/// # Panics
///
/// When one of those breaks.
pub fn sse(input: &[u8]) {
    let (max_frame, chunks, body) = match input {
        [limit, count, rest @ ..] => {
            let count = usize::from(count % 16).min(rest.len());
            let (lengths, body) = rest.split_at(count);
            (usize::from(*limit) * 8, lengths, body)
        }
        _ => (0, &[][..], input),
    };
    let whole = sse_frames(body, &[], max_frame);
    let chunked = sse_frames(body, chunks, max_frame);
    assert_eq!(chunked, whole, "the chunking changed the frames");
    let mut relayed = Vec::new();
    for frame in whole.iter().filter_map(|frame| frame.as_ref().ok()) {
        let raw = frame.raw();
        assert!(
            raw.len() <= max_frame + 2,
            "{} bytes past the limit",
            raw.len()
        );
        let lines = raw
            .strip_suffix(b"\n\n")
            .unwrap_or_else(|| panic!("a frame without its blank line: {raw:?}"));
        assert!(
            !lines.is_empty()
                && !lines.starts_with(b"\n")
                && memchr::memmem::find(lines, b"\n\n").is_none(),
            "a frame with an empty line: {raw:?}"
        );
        let _ = frame.read();
        assert_eq!(
            &Frame::parse(raw.clone()),
            frame,
            "a frame parses differently alone"
        );
        relayed.extend_from_slice(raw);
    }
    let reparsed = sse_frames(&relayed, &[], usize::MAX);
    let frames: Vec<_> = whole.into_iter().filter_map(Result::ok).collect();
    assert_eq!(
        reparsed.into_iter().collect::<Result<Vec<_>, _>>().ok(),
        Some(frames),
        "the relayed frames parse differently"
    );
}

/// Every frame (or the error that ends them) of `body` pushed in chunks of `lengths` (cycled;
/// none means one push), then finished, as the relay's stream does.
fn sse_frames(body: &[u8], lengths: &[u8], max_frame: usize) -> Vec<Result<Frame, String>> {
    let mut parser = SseParser::new(max_frame);
    let mut out = Vec::new();
    let mut rest = body;
    // A length of 0 is read as 1, so the body is always used up.
    let mut lengths = lengths
        .iter()
        .map(|&length| usize::from(length).max(1))
        .cycle();
    while !rest.is_empty() {
        let length = lengths.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, after) = rest.split_at(length);
        rest = after;
        parser.push(chunk);
        loop {
            match parser.next_frame() {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    return out;
                }
            }
        }
    }
    out.extend(parser.finish().map(Ok));
    out
}

/// The request-body scan (`model` and `stream`): checks that a body it accepts that is JSON
/// is an object whose `model` is the non-empty string it read and whose `stream` is the flag
/// it read, and that one it accepts that is not JSON was read from its two ends (the only
/// reading that leaves the middle unchecked, see `http::scan`).
///
/// # Panics
///
/// When it accepts a body that is not that.
pub fn body_scan(input: &[u8]) {
    let Ok(peek) = BodyPeek::read(&Bytes::copy_from_slice(input)) else {
        return;
    };
    assert!(!peek.model.is_empty(), "an empty model passed");
    // The reference: serde reading the two fields (it refuses a body that is not JSON, and a
    // duplicate `model` or `stream`).
    #[derive(serde::Deserialize)]
    struct Fields {
        model: Option<serde_json::Value>,
        stream: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Fields>(input) {
        Ok(fields) => {
            assert_eq!(
                fields.model.as_ref().and_then(|m| m.as_str()),
                Some(peek.model.as_str())
            );
            let stream = fields.stream.as_ref().and_then(|s| s.as_bool());
            assert_eq!(stream.unwrap_or(false), peek.stream);
        }
        Err(error) => assert!(
            crate::http::scan::ends(input).is_some(),
            "the scan accepted a body serde refuses: {error}"
        ),
    }
}

/// The Bedrock event-stream decoder: `input` is one byte of chunk length, then the stream,
/// pushed in chunks of that length (0: whole). Checks that the messages (and the error that
/// ends them, if any) do not depend on the chunking, and that nothing stays buffered after a
/// clean end unless it is an incomplete message.
///
/// # Panics
///
/// When one of those breaks.
pub fn eventstream(input: &[u8]) {
    let (chunk, stream) = match input {
        [chunk, rest @ ..] => (usize::from(*chunk), rest),
        [] => (0, input),
    };
    let whole = messages(stream, stream.len().max(1));
    let chunked = messages(stream, chunk.max(1));
    assert_eq!(chunked, whole, "the chunking changed the messages");
}

/// Every message (or the error that ends them) of `stream` pushed `chunk` bytes at a time.
fn messages(stream: &[u8], chunk: usize) -> Vec<Result<EventMessage, String>> {
    let mut decoder = EventStreamDecoder::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.decode() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    return out;
                }
            }
        }
    }
    out
}

/// The config loader: `input` is YAML text, optionally followed by a NUL and environment
/// overrides (`RELAYRACE__…=value`, one a line). Loads it, then validates what loads; neither
/// may panic.
pub fn config(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (yaml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let env = env.lines().filter_map(|line| {
        let (var, value) = line.split_once('=')?;
        Some((var.to_owned(), value.to_owned()))
    });
    if let Ok(config) = config::load_from(yaml, env) {
        let _ = config.validate();
    }
}

#[cfg(test)]
mod tests {
    //! The fuzz targets' checks on stable, in CI: the same entry points, fed by proptest.
    use proptest::prelude::*;

    use super::*;

    /// Bytes that look like SSE often, after a header of a frame limit and chunk lengths.
    fn sse_input() -> impl Strategy<Value = Vec<u8>> {
        let body = crate::upstream::sse::props::sse_like();
        let lengths = proptest::collection::vec(0u8..64, 0..16);
        (any::<u8>(), lengths, body).prop_map(|(limit, lengths, body)| {
            let count = u8::try_from(lengths.len()).unwrap_or(0);
            [vec![limit, count], lengths, body].concat()
        })
    }

    proptest! {
        #[test]
        fn the_sse_target_holds(input in sse_input()) {
            sse(&input);
        }

        #[test]
        fn the_sse_target_holds_on_any_bytes(input in proptest::collection::vec(any::<u8>(), 0..1024)) {
            sse(&input);
        }

        #[test]
        fn the_body_scan_target_holds(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            body_scan(&input);
        }

        #[test]
        fn the_body_scan_target_holds_on_json_like_bodies(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("{"), Just("}"), Just("\"model\""), Just("\"stream\""), Just(":"),
                    Just(","), Just("\"m\""), Just("true"), Just("null"), Just("1e999"),
                    Just("["), Just("]"), Just(" "), Just("\"\\u0000\""),
                ],
                0..24,
            ),
        ) {
            body_scan(pieces.concat().as_bytes());
        }
    }

    proptest! {
        #[test]
        fn the_eventstream_target_holds_on_any_bytes(
            input in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            eventstream(&input);
        }

        /// Real frames (prelude, headers, payload, CRCs), a byte flipped now and then.
        #[test]
        fn the_eventstream_target_holds_on_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..6),
            chunk in any::<u8>(),
            flip in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let mut stream = Vec::new();
            for payload in &payloads {
                stream.extend(frame(payload));
            }
            if let (Some((at, byte)), false) = (flip, stream.is_empty()) {
                let at = at.index(stream.len());
                stream[at] = byte;
            }
            eventstream(&[[chunk].as_slice(), &stream].concat());
        }
    }

    #[test]
    fn the_eventstream_property_frames_decode() {
        let stream = [frame(b"one"), frame(b"two")].concat();
        let decoded = messages(&stream, 1);
        assert_eq!(decoded.len(), 2, "{decoded:?}");
        assert!(decoded.iter().all(Result::is_ok), "{decoded:?}");
    }

    /// One event-stream message with a `:event-type` header, its CRCs computed.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut headers = Vec::new();
        let (name, value) = (b":event-type", b"chunk");
        headers.push(name.len() as u8);
        headers.extend_from_slice(name);
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value);
        let total = 12 + headers.len() + payload.len() + 4;
        let mut message = Vec::with_capacity(total);
        message.extend_from_slice(&(total as u32).to_be_bytes());
        message.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&message);
        message.extend_from_slice(&prelude_crc.to_be_bytes());
        message.extend_from_slice(&headers);
        message.extend_from_slice(payload);
        let crc = crc32fast::hash(&message);
        message.extend_from_slice(&crc.to_be_bytes());
        message
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_config_target_holds(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            config(&input);
        }

        #[test]
        fn the_config_target_holds_with_overrides(
            yaml in "(providers:\n  - name: [a-z]{1,4}\n    type: simulated\n){0,2}",
            env in "(RELAYRACE__[A-Z_]{1,24}=[ -~]{0,8}\n){0,3}",
        ) {
            config(format!("{yaml}\0{env}").as_bytes());
        }
    }
}
