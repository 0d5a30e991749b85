//! The AWS event-stream framing (`application/vnd.amazon.eventstream`): an incremental decoder
//! over arbitrary chunk boundaries, every CRC checked.
//!
//! A message is a 12-byte prelude (total length, headers length, both big-endian `u32`, then the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it:
//!
//! ```text
//! | total len | headers len | prelude crc | headers … | payload … | message crc |
//! |    4      |      4      |      4      |           |           |      4      |
//! ```
//!
//! A header is its name's length (`u8`), the name, a type byte and the value: 0/1 true/false,
//! 2 `i8`, 3 `i16`, 4 `i32`, 5 `i64`, 6 bytes and 7 string (each a `u16` length first),
//! 8 timestamp (`i64` milliseconds), 9 UUID (16 bytes).
//!
//! [`EventStreamDecoder`] is pure (no I/O, no time): push bytes, take messages. It never panics
//! on any input; a decoding error is final (the decoder returns it again on every call).

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the prelude: total length, headers length, prelude CRC.
const PRELUDE: usize = 12;
/// Bytes of a message with no headers and no payload (prelude and message CRC).
const MIN_MESSAGE: usize = PRELUDE + 4;
/// Largest message accepted: 16 MiB of payload and headers, as AWS bounds them, plus framing.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024 + MIN_MESSAGE;

/// Why a byte stream is not valid event-stream framing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The prelude's CRC does not match its lengths.
    #[error("event-stream prelude failed its crc check")]
    PreludeCrc,
    /// The message's CRC does not match its bytes.
    #[error("event-stream message failed its crc check")]
    MessageCrc,
    /// The total length is below the framing's own size or above [`MAX_MESSAGE_BYTES`].
    #[error("event-stream message length {0} is out of bounds")]
    Length(u32),
    /// The headers length does not fit in the message.
    #[error("event-stream headers length {headers} does not fit in a message of {total} bytes")]
    HeadersLength {
        /// The headers length.
        headers: u32,
        /// The total length.
        total: u32,
    },
    /// A header is cut short or has an unknown type or a name or string that is not UTF-8.
    #[error("event-stream header is malformed: {0}")]
    Header(&'static str),
}

/// A header's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6.
    Bytes(Bytes),
    /// Type 7.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One decoded message: its headers, in order, and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Headers as `(name, value)`, in the order they came.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The value of the string header `name` (`:message-type`, `:event-type`,
    /// `:exception-type`…), when present and a string.
    pub fn string_header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, value)| match value {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// An incremental event-stream decoder: [`push`](Self::push) bytes as they arrive, then call
/// [`decode`](Self::decode) until it returns `Ok(None)` (a message is not complete yet).
///
/// ```
/// use relayrace::upstream::bedrock::EventStreamDecoder;
///
/// let mut decoder = EventStreamDecoder::new();
/// decoder.push(&[0, 0, 0]); // a message split across reads: nothing yet
/// assert_eq!(decoder.decode(), Ok(None));
/// assert_eq!(decoder.buffered(), 3);
/// ```
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buffer: BytesMut,
    failed: Option<DecodeError>,
}

impl EventStreamDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Bytes received and not yet decoded into a message (nonzero at the end of a body: it was
    /// cut inside a message).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes are not valid framing; every later call returns it too.
    pub fn decode(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.try_decode() {
            Err(error) => {
                self.buffer.clear();
                self.failed = Some(error.clone());
                Err(error)
            }
            ok => ok,
        }
    }

    fn try_decode(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.buffer.len() < PRELUDE {
            return Ok(None);
        }
        let total = be_u32(&self.buffer[0..4]);
        let headers_len = be_u32(&self.buffer[4..8]);
        if crc32fast::hash(&self.buffer[0..8]) != be_u32(&self.buffer[8..12]) {
            return Err(DecodeError::PreludeCrc);
        }
        let total_len = total as usize;
        if !(MIN_MESSAGE..=MAX_MESSAGE_BYTES).contains(&total_len) {
            return Err(DecodeError::Length(total));
        }
        let headers_end = PRELUDE + headers_len as usize;
        if headers_end > total_len - 4 {
            return Err(DecodeError::HeadersLength {
                headers: headers_len,
                total,
            });
        }
        if self.buffer.len() < total_len {
            return Ok(None);
        }
        let mut message = self.buffer.split_to(total_len).freeze();
        let body_end = total_len - 4;
        if crc32fast::hash(&message[..body_end]) != be_u32(&message[body_end..]) {
            return Err(DecodeError::MessageCrc);
        }
        let headers = parse_headers(message.slice(PRELUDE..headers_end))?;
        message.truncate(body_end);
        message.advance(headers_end);
        Ok(Some(Message {
            headers,
            payload: message,
        }))
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// The headers block, every header whole.
fn parse_headers(mut block: Bytes) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let mut headers = Vec::new();
    while block.has_remaining() {
        let name_len = usize::from(block.get_u8());
        let name = take(&mut block, name_len)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| DecodeError::Header("name"))?;
        let value = parse_value(&mut block)?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn parse_value(block: &mut Bytes) -> Result<HeaderValue, DecodeError> {
    let kind = take(block, 1)?[0];
    let fixed = |block: &mut Bytes, len: usize| take(block, len);
    Ok(match kind {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(fixed(block, 1)?.get_i8()),
        3 => HeaderValue::Int16(fixed(block, 2)?.get_i16()),
        4 => HeaderValue::Int32(fixed(block, 4)?.get_i32()),
        5 => HeaderValue::Int64(fixed(block, 8)?.get_i64()),
        6 | 7 => {
            let len = usize::from(fixed(block, 2)?.get_u16());
            let bytes = take(block, len)?;
            if kind == 6 {
                HeaderValue::Bytes(bytes)
            } else {
                let text =
                    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Header("string"))?;
                HeaderValue::String(text)
            }
        }
        8 => HeaderValue::Timestamp(fixed(block, 8)?.get_i64()),
        9 => {
            let mut uuid = [0; 16];
            uuid.copy_from_slice(&take(block, 16)?);
            HeaderValue::Uuid(uuid)
        }
        _ => return Err(DecodeError::Header("unknown type")),
    })
}

/// The next `len` bytes of `block`, or an error when it has fewer.
fn take(block: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    if block.remaining() < len {
        return Err(DecodeError::Header("cut short"));
    }
    Ok(block.split_to(len))
}

/// Encodes a message with string headers, for tests (here and in the provider's): real CRCs.
#[cfg(test)]
pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        block.push(7);
        block.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(MIN_MESSAGE + block.len() + payload.len()).unwrap();
    let mut message = Vec::new();
    message.extend_from_slice(&total.to_be_bytes());
    message.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32fast::hash(&message);
    message.extend_from_slice(&prelude_crc.to_be_bytes());
    message.extend_from_slice(&block);
    message.extend_from_slice(payload);
    let crc = crc32fast::hash(&message);
    message.extend_from_slice(&crc.to_be_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(json: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", "chunk"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            json.as_bytes(),
        )
    }

    #[test]
    fn decodes_a_message_with_its_headers_and_payload() {
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&chunk(r#"{"bytes":"e30="}"#));
        let message = decoder.decode().unwrap().unwrap();
        assert_eq!(message.string_header(":event-type"), Some("chunk"));
        assert_eq!(message.string_header(":message-type"), Some("event"));
        assert_eq!(message.string_header(":exception-type"), None);
        assert_eq!(&message.payload[..], br#"{"bytes":"e30="}"#);
        assert_eq!(decoder.decode(), Ok(None));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_message_split_across_reads_is_decoded_once_whole() {
        let mut bytes = chunk(r#"{"bytes":"AAAA"}"#);
        bytes.extend(chunk(r#"{"bytes":"BBBB"}"#));
        // Every split point, byte by byte included.
        for split in 1..bytes.len() {
            let mut decoder = EventStreamDecoder::new();
            let mut payloads = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                for byte in part.chunks(if split % 2 == 0 { 1 } else { 7 }) {
                    decoder.push(byte);
                    while let Some(message) = decoder.decode().unwrap() {
                        payloads.push(message.payload);
                    }
                }
            }
            assert_eq!(payloads.len(), 2, "split at {split}");
            assert_eq!(&payloads[1][..], br#"{"bytes":"BBBB"}"#);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn a_corrupt_message_crc_is_an_error_that_stays() {
        let mut bytes = chunk(r#"{"bytes":"e30="}"#);
        let payload_byte = bytes.len() - 6;
        bytes[payload_byte] ^= 0x01;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.decode(), Err(DecodeError::MessageCrc));
        decoder.push(&chunk("{}"));
        assert_eq!(decoder.decode(), Err(DecodeError::MessageCrc));
    }

    #[test]
    fn a_corrupt_prelude_is_caught_before_waiting_for_its_length() {
        let mut bytes = chunk("{}");
        bytes[2] ^= 0x40; // a total length that is now far larger
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&bytes[..PRELUDE]);
        assert_eq!(decoder.decode(), Err(DecodeError::PreludeCrc));
    }

    #[test]
    fn lengths_out_of_bounds_are_errors() {
        let framed = |total: u32, headers: u32| {
            let mut prelude = Vec::new();
            prelude.extend_from_slice(&total.to_be_bytes());
            prelude.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&prelude);
            prelude.extend_from_slice(&crc.to_be_bytes());
            let mut decoder = EventStreamDecoder::new();
            decoder.push(&prelude);
            decoder.decode()
        };
        assert_eq!(framed(8, 0), Err(DecodeError::Length(8)));
        assert_eq!(framed(u32::MAX, 0), Err(DecodeError::Length(u32::MAX)));
        assert_eq!(
            framed(32, 17),
            Err(DecodeError::HeadersLength {
                headers: 17,
                total: 32
            })
        );
        // An empty message is valid framing: wait for its CRC.
        assert_eq!(framed(16, 0), Ok(None));
    }

    #[test]
    fn typed_headers_are_read_and_malformed_ones_rejected() {
        let mut block = vec![1, b'a', 0, 1, b'b', 4, 0, 0, 1, 0, 1, b'c', 9];
        block.extend_from_slice(&[7; 16]);
        let headers = parse_headers(Bytes::from(block)).unwrap();
        assert_eq!(
            headers,
            vec![
                ("a".to_owned(), HeaderValue::Bool(true)),
                ("b".to_owned(), HeaderValue::Int32(256)),
                ("c".to_owned(), HeaderValue::Uuid([7; 16])),
            ]
        );
        for bad in [
            &[1, b'a', 42][..],        // unknown type
            &[1, b'a', 7, 0, 9, b'x'], // string cut short
            &[5, b'a'],                // name cut short
            &[1, b'a', 7, 0, 1, 0xff], // not UTF-8
        ] {
            assert!(
                parse_headers(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
