//! What a fake answers, and the wire encodings of its streams: SSE with every
//! event split across two network chunks, and AWS event-stream messages
//! (InvokeModel `chunk`s wrap Anthropic events in base64, Converse events
//! carry their own `:event-type`, exceptions their `:exception-type`).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use aigate::providers::bedrock::event_stream::{encode_message, HeaderValue};

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    Stream {
        content_type: String,
        chunks: Vec<Bytes>,
        /// Drop the connection after the last chunk instead of ending cleanly.
        cut: bool,
    },
}

impl Answer {
    /// A reply fixture: `{"status", "headers", "body"}`.
    pub fn from_fixture(fixture: &Value) -> Answer {
        let headers = fixture["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Answer::Json {
            status: fixture["status"].as_u64().unwrap_or(200) as u16,
            headers,
            body: Bytes::from(serde_json::to_vec(&fixture["body"]).unwrap()),
        }
    }

    /// An SSE body, each event (up to its blank line, LF or CRLF) split in two
    /// network chunks.
    pub fn sse(text: &str, cut: bool) -> Answer {
        let mut chunks = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let end = ["\r\n\r\n", "\n\n"]
                .iter()
                .filter_map(|sep| rest.find(sep).map(|at| at + sep.len()))
                .min()
                .unwrap_or(rest.len());
            let (event, tail) = rest.split_at(end);
            chunks.extend(halves(event.as_bytes()));
            rest = tail;
        }
        Answer::Stream {
            content_type: "text/event-stream".into(),
            chunks,
            cut,
        }
    }

    /// An `application/vnd.amazon.eventstream` body from entries
    /// `{"event": type, "payload": {…}}`, `{"event": "chunk", "bytes": {…}}`
    /// (InvokeModel: the inner JSON goes base64 in `{"bytes", "p"}`) or
    /// `{"exception": type, "payload": {…}}`; each message split in two
    /// network chunks.
    pub fn event_stream(entries: &[Value], cut: bool) -> Answer {
        let mut chunks = Vec::new();
        for entry in entries {
            chunks.extend(halves(&event_stream_message(entry)));
        }
        Answer::Stream {
            content_type: "application/vnd.amazon.eventstream".into(),
            chunks,
            cut,
        }
    }
}

fn halves(bytes: &[u8]) -> Vec<Bytes> {
    let mid = bytes.len() / 2;
    [&bytes[..mid], &bytes[mid..]]
        .into_iter()
        .filter(|half| !half.is_empty())
        .map(Bytes::copy_from_slice)
        .collect()
}

fn event_stream_message(entry: &Value) -> Vec<u8> {
    let string = |s: &str| HeaderValue::String(s.to_string());
    if let Some(exception) = entry["exception"].as_str() {
        let headers = vec![
            (":message-type".to_string(), string("exception")),
            (":exception-type".to_string(), string(exception)),
            (":content-type".to_string(), string("application/json")),
        ];
        return encode_message(&headers, &serde_json::to_vec(&entry["payload"]).unwrap());
    }
    let event = entry["event"].as_str().unwrap();
    let payload = match entry.get("bytes") {
        Some(inner) => serde_json::to_vec(&serde_json::json!({
            "bytes": base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(inner).unwrap()),
            "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM",
        }))
        .unwrap(),
        None => serde_json::to_vec(&entry["payload"]).unwrap(),
    };
    let headers = vec![
        (":event-type".to_string(), string(event)),
        (":content-type".to_string(), string("application/json")),
        (":message-type".to_string(), string("event")),
    ];
    encode_message(&headers, &payload)
}
