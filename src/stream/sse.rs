//! Server-Sent Events framing: cut an upstream byte stream into whole events
//! (kept byte for byte, so the relay forwards them untouched), parse one event
//! into its fields, and write the frames the gateway itself emits.
//!
//! Lines end with `\n`, `\r\n` or `\r`; a blank line ends an event.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into complete raw SSE events (the exact bytes,
/// terminator included), so they can be forwarded untouched.
///
/// Each byte is scanned once: the framer remembers where it stopped and the
/// state of the line it was in, so pushing many small chunks stays linear.
/// Blank lines before an event's first field carry nothing and are dropped.
#[derive(Debug, Default)]
pub struct SseFramer {
    /// Bytes of the event in progress, from its first byte.
    buf: BytesMut,
    /// Where the next scan resumes in `buf`.
    scan: usize,
    /// The current line has bytes (so a line end there does not end the event).
    line_has_bytes: bool,
    /// The event in progress has at least one non-blank line.
    has_content: bool,
    /// The last byte scanned was a `\r` line end: a `\n` next belongs to it.
    after_cr: bool,
    /// That `\r` ended the event's blank line; emit once the next byte is known.
    end_pending: bool,
}

impl SseFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one network chunk; returns every event completed by it.
    ///
    /// Why an event ended by a lone `\r` waits for the next byte: if it is a
    /// `\n`, that byte still belongs to the event.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        let mut events = Vec::new();
        self.buf.extend_from_slice(chunk);
        while self.scan < self.buf.len() {
            if self.after_cr {
                self.after_cr = false;
                let is_lf = self.buf[self.scan] == b'\n';
                if is_lf {
                    self.scan += 1;
                }
                if self.end_pending {
                    events.push(self.take_event());
                    continue;
                }
                if is_lf {
                    if !self.has_content {
                        self.drop_scanned();
                    }
                    continue;
                }
            }
            let rest = &self.buf[self.scan..];
            let Some(offset) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if !rest.is_empty() {
                    self.line_has_bytes = true;
                    self.has_content = true;
                }
                self.scan = self.buf.len();
                break;
            };
            if offset > 0 {
                self.line_has_bytes = true;
                self.has_content = true;
            }
            let at = self.scan + offset;
            let is_cr = self.buf[at] == b'\r';
            self.scan = at + 1;
            if self.line_has_bytes {
                self.line_has_bytes = false;
                self.after_cr = is_cr;
            } else if !self.has_content {
                self.drop_scanned();
                self.after_cr = is_cr;
            } else if is_cr {
                self.after_cr = true;
                self.end_pending = true;
            } else {
                events.push(self.take_event());
            }
        }
        events
    }

    /// End of stream: whatever is left (an unterminated final event), if non-blank.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.buf.split().freeze();
        let keep = self.has_content;
        *self = Self::new();
        keep.then_some(rest)
    }

    /// Cuts the scanned bytes off as one event and resets the line state.
    fn take_event(&mut self) -> Bytes {
        let event = self.buf.split_to(self.scan).freeze();
        self.scan = 0;
        self.line_has_bytes = false;
        self.has_content = false;
        self.end_pending = false;
        event
    }

    /// Discards scanned blank lines that precede any event.
    fn drop_scanned(&mut self) {
        let _ = self.buf.split_to(self.scan);
        self.scan = 0;
    }
}

/// One parsed event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    /// Multi-line data joined with `'\n'`.
    pub data: String,
    pub id: Option<String>,
}

impl SseEvent {
    /// No data and no event name: a keep-alive comment (or nothing at all).
    pub fn is_comment_only(&self) -> bool {
        self.data.is_empty() && self.event.is_none()
    }

    /// The event written back as a frame: `event:`, `data:` lines, `id:`, blank line.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.data.len() + 32);
        if let Some(event) = &self.event {
            push_field(&mut out, "event", event.as_bytes());
        }
        push_data(&mut out, &self.data);
        if let Some(id) = &self.id {
            push_field(&mut out, "id", id.as_bytes());
        }
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// Parse one raw event: comment lines (`:...`) ignored, `field: value` with the
/// single optional space after the colon stripped, `field` alone = empty value,
/// unknown fields ignored.
pub fn parse_event(raw: &[u8]) -> SseEvent {
    let mut parsed = SseEvent::default();
    let mut has_data = false;
    for line in Lines(raw) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[line.len()..]),
        };
        match field {
            b"data" => {
                if has_data {
                    parsed.data.push('\n');
                }
                parsed.data.push_str(&String::from_utf8_lossy(value));
                has_data = true;
            }
            b"event" => parsed.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" => parsed.id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    parsed
}

/// `data: {data}\n\n`, multi-line data split into several `data:` lines.
pub fn data_frame(data: &str) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    push_data(&mut out, data);
    out.push(b'\n');
    Bytes::from(out)
}

/// `event: {event}\ndata: {data}\n\n`.
pub fn named_frame(event: &str, data: &str) -> Bytes {
    let mut out = Vec::with_capacity(event.len() + data.len() + 16);
    push_field(&mut out, "event", event.as_bytes());
    push_data(&mut out, data);
    out.push(b'\n');
    Bytes::from(out)
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// One `data:` line per line of `data` (any line ending), so it cannot break framing.
fn push_data(out: &mut Vec<u8>, data: &str) {
    let bytes = data.as_bytes();
    if bytes.is_empty() {
        push_field(out, "data", bytes);
    }
    for line in Lines(bytes) {
        push_field(out, "data", line);
    }
}

/// Lines of a byte slice split at `\r\n`, `\n` or `\r`; a final line end adds no empty line.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let rest = self.0;
        let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            self.0 = &rest[rest.len()..];
            return Some(rest);
        };
        let skip = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        self.0 = &rest[end + skip..];
        Some(&rest[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(chunks: &[&[u8]]) -> Vec<Bytes> {
        let mut framer = SseFramer::new();
        let mut out: Vec<Bytes> = chunks.iter().flat_map(|c| framer.push(c)).collect();
        out.extend(framer.finish());
        out
    }

    const STREAMS: [&str; 4] = [
        "data: {\"a\":1}\n\nevent: ping\ndata: x\n\n: keep-alive\n\ndata: line1\ndata: line2\n\n",
        "data: {\"a\":1}\r\n\r\nevent: ping\r\ndata: x\r\n\r\n: keep-alive\r\n\r\ndata: a\r\n\r\n",
        "data: {\"a\":1}\r\revent: ping\rdata: x\r\r: keep-alive\r\rdata: a\r\r",
        "data: 1\r\n\ndata: 2\n\r\nevent: e\rdata: 3\r\n\rdata: 4\r\r\n",
    ];

    #[test]
    fn every_split_point_gives_the_same_events() {
        for stream in STREAMS {
            let bytes = stream.as_bytes();
            let whole = frame_all(&[bytes]);
            assert_eq!(whole.len(), 4, "{stream:?}");
            assert_eq!(whole.concat(), bytes, "nothing lost: {stream:?}");
            for cut in 0..=bytes.len() {
                let split = frame_all(&[&bytes[..cut], &bytes[cut..]]);
                assert_eq!(split, whole, "cut at {cut} of {stream:?}");
            }
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(frame_all(&bytewise), whole, "{stream:?}");
        }
    }

    #[test]
    fn cr_terminated_event_waits_for_a_possible_lf() {
        let mut framer = SseFramer::new();
        assert!(framer.push(b"data: a\r\n\r").is_empty());
        let events = framer.push(b"\ndata: b\r\r");
        assert_eq!(events, vec![Bytes::from_static(b"data: a\r\n\r\n")]);
        let events = framer.push(b"data: c");
        assert_eq!(events, vec![Bytes::from_static(b"data: b\r\r")]);
        assert_eq!(framer.finish(), Some(Bytes::from_static(b"data: c")));
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn finish_returns_only_non_blank_leftovers() {
        let mut framer = SseFramer::new();
        assert_eq!(framer.push(b"\n\r\n\rdata: x\n\n\n\n").len(), 1);
        assert_eq!(framer.finish(), None);
        assert_eq!(framer.push(b"data: tail\n"), Vec::<Bytes>::new());
        assert_eq!(framer.finish(), Some(Bytes::from_static(b"data: tail\n")));
    }

    #[test]
    fn event_larger_than_a_chunk() {
        let payload = "x".repeat(10_000);
        let stream = format!("data: {payload}\n\ndata: small\n\n");
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(97).collect();
        let events = frame_all(&chunks);
        assert_eq!(events.len(), 2);
        assert_eq!(parse_event(&events[0]).data, payload);
        assert_eq!(parse_event(&events[1]).data, "small");
    }

    #[test]
    fn parses_fields_comments_and_multiline_data() {
        let raw =
            b": comment\nevent: message_delta\nid: 7\ndata: {\"a\":\ndata:1}\nretry: 5\nfoo\n\n";
        let event = parse_event(raw);
        assert_eq!(event.event.as_deref(), Some("message_delta"));
        assert_eq!(event.id.as_deref(), Some("7"));
        assert_eq!(event.data, "{\"a\":\n1}");
        assert!(!event.is_comment_only());

        let only_comment = parse_event(b": ping\r\n\r\n");
        assert!(only_comment.is_comment_only());
        assert_eq!(parse_event(b"data\n\n").data, "");
        assert_eq!(parse_event(b"data:  two spaces\n\n").data, " two spaces");
        assert_eq!(parse_event(b"data: a\rdata: b\r\r").data, "a\nb");
    }

    #[test]
    fn writes_frames() {
        assert_eq!(&data_frame("[DONE]")[..], b"data: [DONE]\n\n");
        assert_eq!(&data_frame("a\nb")[..], b"data: a\ndata: b\n\n");
        assert_eq!(&data_frame("")[..], b"data: \n\n");
        assert_eq!(&named_frame("ping", "{}")[..], b"event: ping\ndata: {}\n\n");
        let event = SseEvent {
            event: Some("e".into()),
            data: "1\n2".into(),
            id: None,
        };
        assert_eq!(&event.to_bytes()[..], b"event: e\ndata: 1\ndata: 2\n\n");
        assert_eq!(parse_event(&event.to_bytes()), event);
    }
}
