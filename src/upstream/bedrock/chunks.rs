//! A Bedrock stream's body as events: event-stream messages decoded, each `chunk`'s Anthropic
//! event made the SSE frame the Anthropic API sends, each exception kept for the attempt to
//! judge.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;

use super::eventstream::{EventStreamDecoder, Message};
use super::exception::Exception;
use crate::upstream::StreamError;
use crate::upstream::sse::Frame;

/// What a Bedrock stream says, message by message.
#[derive(Debug)]
pub(super) enum Event {
    /// A `chunk`: one Anthropic event, as its SSE frame.
    Chunk(Frame),
    /// An exception (`throttlingException`…).
    Exception(Exception),
}

impl Event {
    /// The frame relayed for it once the stream has committed: an exception becomes an
    /// `event: error` frame.
    pub(super) fn into_frame(self) -> Frame {
        match self {
            Event::Chunk(frame) => frame,
            Event::Exception(exception) => sse_frame("error", exception.body.as_bytes()),
        }
    }
}

/// Bedrock's metrics, which it adds to the `message_stop` event; the Anthropic API sends none.
const INVOCATION_METRICS: &str = "amazon-bedrock-invocationMetrics";

/// The events of a body. A body cut inside a message ends with [`StreamError::Truncated`]; a
/// corrupt message (a CRC mismatch) or a chunk that is not an Anthropic event with
/// [`StreamError::Transport`]. Messages of other types are skipped.
pub(super) fn events<S, E>(body: S) -> impl Stream<Item = Result<Event, StreamError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let state = Some((body, EventStreamDecoder::new()));
    stream::unfold(state, |state| async move {
        let (mut body, mut decoder) = state?;
        loop {
            match decoder.decode() {
                Ok(Some(message)) => match event(&message) {
                    Ok(Some(event)) => return Some((Ok(event), Some((body, decoder)))),
                    Ok(None) => continue,
                    Err(error) => return Some((Err(error), None)),
                },
                Err(error) => return Some((Err(StreamError::Transport(error.to_string())), None)),
                Ok(None) => {}
            }
            match body.next().await {
                Some(Ok(bytes)) => decoder.push(&bytes),
                Some(Err(error)) => {
                    let error = StreamError::Transport(format!("body error: {error}"));
                    return Some((Err(error), None));
                }
                None if decoder.buffered() > 0 => return Some((Err(StreamError::Truncated), None)),
                None => return None,
            }
        }
    })
}

#[derive(Deserialize)]
struct ChunkPayload {
    bytes: String,
}

#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// The event a message stands for; `None` for a message the relay ignores.
fn event(message: &Message) -> Result<Option<Event>, StreamError> {
    match message.string_header(":message-type") {
        Some("event") => {}
        Some("exception") => {
            let kind = message
                .string_header(":exception-type")
                .unwrap_or("unknownException");
            return Ok(Some(Event::Exception(Exception::new(
                kind,
                &message.payload,
            ))));
        }
        Some("error") => {
            let kind = message.string_header(":error-code").unwrap_or("error");
            let text = message.string_header(":error-message").unwrap_or(kind);
            let payload = serde_json::json!({ "message": text }).to_string();
            return Ok(Some(Event::Exception(Exception::new(
                kind,
                payload.as_bytes(),
            ))));
        }
        _ => return Ok(None),
    }
    if message.string_header(":event-type") != Some("chunk") {
        return Ok(None);
    }
    let invalid = || StreamError::Transport("a bedrock chunk is not an anthropic event".to_owned());
    let payload: ChunkPayload = serde_json::from_slice(&message.payload).map_err(|_| invalid())?;
    let data = STANDARD.decode(payload.bytes).map_err(|_| invalid())?;
    let kind = serde_json::from_slice::<EventType<'_>>(&data)
        .map_err(|_| invalid())?
        .kind
        .into_owned();
    if kind.contains(['\n', '\r']) {
        return Err(invalid());
    }
    let data = relayable(&kind, data).ok_or_else(invalid)?;
    Ok(Some(Event::Chunk(sse_frame(&kind, &data))))
}

/// An event's data as the Anthropic API sends it: on one line, without Bedrock's metrics.
fn relayable(kind: &str, data: Vec<u8>) -> Option<Vec<u8>> {
    let has_metrics = kind == "message_stop"
        && memchr::memmem::find(&data, INVOCATION_METRICS.as_bytes()).is_some();
    if !has_metrics && !data.contains(&b'\n') {
        return Some(data);
    }
    let mut value: serde_json::Value = serde_json::from_slice(&data).ok()?;
    if let Some(object) = value.as_object_mut() {
        object.remove(INVOCATION_METRICS);
    }
    serde_json::to_vec(&value).ok()
}

/// `event: {kind}\ndata: {data}\n\n`.
fn sse_frame(kind: &str, data: &[u8]) -> Frame {
    let mut raw = Vec::with_capacity(kind.len() + data.len() + 16);
    raw.extend_from_slice(b"event: ");
    raw.extend_from_slice(kind.as_bytes());
    raw.extend_from_slice(b"\ndata: ");
    raw.extend_from_slice(data);
    raw.extend_from_slice(b"\n\n");
    Frame::parse(Bytes::from(raw))
}
