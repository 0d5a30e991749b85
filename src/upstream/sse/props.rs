//! Property tests of the SSE parser (they run in CI on stable): however the bytes are split
//! into chunks, the same frames come out, and arbitrary bytes never panic it.

use bytes::Bytes;
use proptest::prelude::*;

use super::{MAX_FRAME_BYTES, SseParser};

/// Every frame (raw bytes) or error of `input` cut at `cuts`.
fn parse(input: &[u8], cuts: &[usize], max_frame: usize) -> Vec<Result<Bytes, String>> {
    let mut parser = SseParser::new(max_frame);
    let mut out = Vec::new();
    let mut at = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for end in bounds {
        parser.push(&input[at..end.max(at)]);
        at = end.max(at);
        loop {
            match parser.next_frame() {
                Ok(Some(frame)) => out.push(Ok(frame.into_raw())),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    return out;
                }
            }
        }
    }
    out.extend(parser.finish().map(|frame| Ok(frame.into_raw())));
    out
}

/// Bytes that look like SSE often: lines of fields, blank lines, CR, LF and noise.
pub(crate) fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"event: message_start\n".to_vec()),
        Just(b"data: {\"type\":\"ping\"}\n".to_vec()),
        Just(b"data: {not json\n".to_vec()),
        Just(b": comment\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_frames(
        input in sse_like(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = parse(&input, &[], MAX_FRAME_BYTES);
        prop_assert_eq!(parse(&input, &cuts, MAX_FRAME_BYTES), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_frames_stay_within_the_limit(
        input in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        for frame in parse(&input, &cuts, 256).into_iter().flatten() {
            // A frame is its lines plus the blank line that ends it (or none at the end).
            prop_assert!(frame.len() <= 256 + 2, "{} bytes", frame.len());
        }
    }

    #[test]
    fn a_well_formed_event_is_read_back(
        name in "[a-z_]{1,20}",
        data in "[ -~]{0,80}",
    ) {
        let raw = format!("event: {name}\ndata: {data}\n\n");
        let frames = parse(raw.as_bytes(), &[], MAX_FRAME_BYTES);
        prop_assert_eq!(frames.len(), 1);
        let frame = super::Frame::parse(frames[0].clone().unwrap());
        prop_assert_eq!(frame.event(), Some(name.as_str()));
        prop_assert_eq!(frame.data(), Some(data.as_str()));
    }
}
