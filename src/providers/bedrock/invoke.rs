//! Bedrock InvokeModel for Claude: the body is the Anthropic Messages body
//! with the model moved into the URL, and a streaming answer is an event
//! stream whose `chunk` events wrap Anthropic's own SSE event JSON in base64.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// The `anthropic_version` Bedrock requires for the Messages API.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Why a `chunk` event payload could not be unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk payload is not {{\"bytes\": \"<base64>\"}}: {0}")]
    Json(#[from] serde_json::Error),
    #[error("chunk bytes are not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("chunk bytes are not UTF-8")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// An InvokeModelWithResponseStream `chunk` event payload. Bedrock may add
/// a padding field (`p`); unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct ChunkPayload {
    bytes: String,
}

/// The payload of an `exception` message.
#[derive(Debug, Deserialize)]
struct ExceptionPayload {
    #[serde(alias = "Message")]
    message: String,
}

/// Turns an Anthropic Messages request into an InvokeModel body: `model`
/// (in the URL instead) and `stream` (chosen by the URL) are removed, and
/// `anthropic_version` is set unless the client gave one. A body that is
/// not a JSON object is returned as it came, for Bedrock to reject.
pub fn invoke_body(anthropic_request_json: Value) -> Value {
    let mut body = anthropic_request_json;
    if let Value::Object(map) = &mut body {
        map.remove("model");
        map.remove("stream");
        map.entry("anthropic_version")
            .or_insert_with(|| Value::String(BEDROCK_ANTHROPIC_VERSION.to_owned()));
    }
    body
}

/// Unwraps a `chunk` event payload `{"bytes":"<base64>"}` into the inner
/// Anthropic event JSON text (e.g. `{"type":"content_block_delta",…}`).
pub fn chunk_payload(payload: &[u8]) -> Result<String, ChunkError> {
    let chunk: ChunkPayload = serde_json::from_slice(payload)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(chunk.bytes)?;
    Ok(String::from_utf8(bytes)?)
}

/// The `message` of an `exception` message payload, if it has one.
pub fn exception_message(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<ExceptionPayload>(payload)
        .ok()
        .map(|p| p.message)
}

#[cfg(test)]
mod tests {
    use super::super::event_stream::{
        encode_message, EventStreamDecoder, HeaderValue, MessageKind,
    };
    use super::*;
    use serde_json::json;

    #[test]
    fn body_drops_model_and_stream_and_sets_version() {
        let body = invoke_body(json!({
            "model": "claude-3-5-sonnet",
            "stream": true,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]
        }));
        assert_eq!(
            body,
            json!({
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]
            })
        );
        let kept = invoke_body(json!({"anthropic_version": "custom", "max_tokens": 1}));
        assert_eq!(kept["anthropic_version"], "custom");
        assert_eq!(invoke_body(json!([1])), json!([1]));
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn chunk_payload_unwraps_the_inner_event() {
        let inner =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        let payload = format!(r#"{{"bytes":"{}","p":"abcdefghij"}}"#, b64(inner));
        assert_eq!(chunk_payload(payload.as_bytes()).unwrap(), inner);
        assert!(matches!(chunk_payload(b"{}"), Err(ChunkError::Json(_))));
        assert!(matches!(
            chunk_payload(br#"{"bytes":"@@"}"#),
            Err(ChunkError::Base64(_))
        ));
        let not_utf8 = format!(
            r#"{{"bytes":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])
        );
        assert!(matches!(
            chunk_payload(not_utf8.as_bytes()),
            Err(ChunkError::Utf8(_))
        ));
    }

    #[test]
    fn exception_message_is_read() {
        assert_eq!(
            exception_message(br#"{"message":"slow down"}"#).as_deref(),
            Some("slow down")
        );
        assert_eq!(
            exception_message(br#"{"Message":"boom"}"#).as_deref(),
            Some("boom")
        );
        assert_eq!(exception_message(b"not json"), None);
    }

    /// A streamed answer as Bedrock frames it, decoded end to end.
    #[test]
    fn stream_of_chunks_decodes_to_anthropic_events() {
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":5,"outputTokenCount":2}}"#,
        ];
        let header = |n: &str, v: &str| (n.to_owned(), HeaderValue::String(v.to_owned()));
        let mut stream = Vec::new();
        for event in events {
            let payload = format!(r#"{{"bytes":"{}","p":"abc"}}"#, b64(event));
            let headers = [
                header(":event-type", "chunk"),
                header(":content-type", "application/json"),
                header(":message-type", "event"),
            ];
            stream.extend(encode_message(&headers, payload.as_bytes()));
        }
        let mut decoder = EventStreamDecoder::new();
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            for message in decoder.push(piece).unwrap() {
                assert_eq!(message.kind(), MessageKind::Event("chunk"));
                got.push(chunk_payload(&message.payload).unwrap());
            }
        }
        decoder.finish().unwrap();
        assert_eq!(got, events);
    }
}
