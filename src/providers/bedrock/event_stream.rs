//! The `application/vnd.amazon.eventstream` framing of Bedrock's streaming
//! answers: binary messages, not SSE.
//!
//! A message is a 12-byte prelude (total length, headers length, CRC32 of
//! those 8 bytes; all big-endian), typed headers, the payload, and a CRC32 of
//! everything before it. Network reads split messages anywhere, so the
//! decoder buffers until a whole message is in.

use bytes::{Buf, Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// Prelude plus message CRC: the smallest possible message.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// The format's own limit on a message; a larger length means garbage.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Why a stream cannot be decoded. After any of these the framing is lost
/// and the stream should be dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventStreamError {
    #[error(
        "event-stream prelude CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    PreludeCrc { expected: u32, computed: u32 },
    #[error(
        "event-stream message CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    MessageCrc { expected: u32, computed: u32 },
    #[error("event-stream message of {0} bytes exceeds the 16 MiB limit")]
    TooLarge(usize),
    #[error("event-stream lengths are inconsistent (total {total}, headers {headers})")]
    BadLengths { total: usize, headers: usize },
    #[error("event-stream header is malformed: {0}")]
    BadHeader(&'static str),
    #[error("event stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
    #[error("event-stream decoder already failed")]
    Failed,
}

/// A typed header value; the wire type byte is implied by the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

/// What a message is, from its `:message-type` and companion headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind<'a> {
    /// `:message-type = event`, with its `:event-type` (e.g. `chunk`).
    Event(&'a str),
    /// `:message-type = exception`, with its `:exception-type`
    /// (e.g. `throttlingException`); the payload holds `{"message": …}`.
    Exception(&'a str),
    /// `:message-type = error`, with `:error-code` and `:error-message`.
    Error { code: &'a str, message: &'a str },
    /// No or an unknown `:message-type`.
    Unknown,
}

impl EventMessage {
    /// The value of a string header.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    pub fn error_code(&self) -> Option<&str> {
        self.header_str(":error-code")
    }

    pub fn error_message(&self) -> Option<&str> {
        self.header_str(":error-message")
    }

    pub fn kind(&self) -> MessageKind<'_> {
        match self.message_type() {
            Some("event") => MessageKind::Event(self.event_type().unwrap_or_default()),
            Some("exception") => MessageKind::Exception(self.exception_type().unwrap_or_default()),
            Some("error") => MessageKind::Error {
                code: self.error_code().unwrap_or_default(),
                message: self.error_message().unwrap_or_default(),
            },
            _ => MessageKind::Unknown,
        }
    }
}

/// Incremental decoder: feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buffer: BytesMut,
    failed: bool,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes and returns every message now complete. On an error,
    /// messages completed earlier in the same call are lost with the stream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<EventMessage>, EventStreamError> {
        if self.failed {
            return Err(EventStreamError::Failed);
        }
        self.buffer.extend_from_slice(bytes);
        let mut messages = Vec::new();
        loop {
            match self.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => return Ok(messages),
                Err(e) => {
                    self.failed = true;
                    self.buffer.clear();
                    return Err(e);
                }
            }
        }
    }

    /// At the end of the body: an error if part of a message is left.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        match self.buffer.len() {
            0 => Ok(()),
            left => Err(EventStreamError::Truncated(left)),
        }
    }

    fn next_message(&mut self) -> Result<Option<EventMessage>, EventStreamError> {
        let Some(prelude) = self.buffer.get(..PRELUDE_LEN) else {
            return Ok(None);
        };
        // Check the prelude before trusting its lengths.
        let total = be_u32(&prelude[0..4]) as usize;
        let headers_len = be_u32(&prelude[4..8]) as usize;
        check_crc(
            &prelude[..8],
            be_u32(&prelude[8..12]),
            |expected, computed| EventStreamError::PreludeCrc { expected, computed },
        )?;
        if total > MAX_MESSAGE_LEN {
            return Err(EventStreamError::TooLarge(total));
        }
        if total < MIN_MESSAGE_LEN || headers_len > total - MIN_MESSAGE_LEN {
            return Err(EventStreamError::BadLengths {
                total,
                headers: headers_len,
            });
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let frame = self.buffer.split_to(total).freeze();
        let body_end = total - CRC_LEN;
        check_crc(
            &frame[..body_end],
            be_u32(&frame[body_end..]),
            |expected, computed| EventStreamError::MessageCrc { expected, computed },
        )?;
        let headers_end = PRELUDE_LEN + headers_len;
        let headers = decode_headers(frame.slice(PRELUDE_LEN..headers_end))?;
        let payload = frame.slice(headers_end..body_end);
        Ok(Some(EventMessage { headers, payload }))
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0, |acc, b| (acc << 8) | u32::from(*b))
}

fn check_crc(
    data: &[u8],
    expected: u32,
    error: impl FnOnce(u32, u32) -> EventStreamError,
) -> Result<(), EventStreamError> {
    let computed = crc32fast::hash(data);
    match computed == expected {
        true => Ok(()),
        false => Err(error(expected, computed)),
    }
}

fn decode_headers(mut buf: Bytes) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let mut headers = Vec::new();
    while buf.has_remaining() {
        let name_len = usize::from(buf.get_u8());
        let name = take(&mut buf, name_len, "name runs past the headers")?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| EventStreamError::BadHeader("name is not UTF-8"))?;
        let value = decode_value(&mut buf)?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn take(buf: &mut Bytes, len: usize, why: &'static str) -> Result<Bytes, EventStreamError> {
    match buf.remaining() >= len {
        true => Ok(buf.split_to(len)),
        false => Err(EventStreamError::BadHeader(why)),
    }
}

fn decode_value(buf: &mut Bytes) -> Result<HeaderValue, EventStreamError> {
    let short = "value runs past the headers";
    let kind = take(buf, 1, "missing value type")?[0];
    let fixed = |buf: &mut Bytes, n: usize| take(buf, n, short);
    Ok(match kind {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(fixed(buf, 1)?.get_i8()),
        3 => HeaderValue::Short(fixed(buf, 2)?.get_i16()),
        4 => HeaderValue::Int(fixed(buf, 4)?.get_i32()),
        5 => HeaderValue::Long(fixed(buf, 8)?.get_i64()),
        6 | 7 => {
            let len = usize::from(fixed(buf, 2)?.get_u16());
            let bytes = take(buf, len, short)?;
            match kind {
                6 => HeaderValue::Bytes(bytes),
                _ => HeaderValue::String(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| EventStreamError::BadHeader("string value is not UTF-8"))?,
                ),
            }
        }
        8 => HeaderValue::Timestamp(fixed(buf, 8)?.get_i64()),
        9 => {
            let mut uuid = [0u8; 16];
            fixed(buf, 16)?.copy_to_slice(&mut uuid);
            HeaderValue::Uuid(uuid)
        }
        _ => return Err(EventStreamError::BadHeader("unknown value type")),
    })
}

/// Builds one message with correct lengths and CRCs (for tests and the fake
/// upstream). Names longer than 255 bytes and byte/string values longer than
/// 65535 bytes cannot be framed and are cut to those lengths.
pub fn encode_message(headers: &[(String, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        let name = cut_at_char_boundary(name, usize::from(u8::MAX)).as_bytes();
        encoded_headers.push(name.len() as u8);
        encoded_headers.extend_from_slice(name);
        encode_value(value, &mut encoded_headers);
    }
    let total = MIN_MESSAGE_LEN + encoded_headers.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn encode_value(value: &HeaderValue, out: &mut Vec<u8>) {
    let var_len = |kind: u8, bytes: &[u8], out: &mut Vec<u8>| {
        out.push(kind);
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    match value {
        HeaderValue::Bool(true) => out.push(0),
        HeaderValue::Bool(false) => out.push(1),
        HeaderValue::Byte(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Short(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Long(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Bytes(v) => var_len(6, &v[..v.len().min(usize::from(u16::MAX))], out),
        HeaderValue::String(v) => var_len(
            7,
            cut_at_char_boundary(v, usize::from(u16::MAX)).as_bytes(),
            out,
        ),
        HeaderValue::Timestamp(v) => {
            out.push(8);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Uuid(v) => {
            out.push(9);
            out.extend_from_slice(v);
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that is still UTF-8.
fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[path = "event_stream_tests.rs"]
mod tests;
