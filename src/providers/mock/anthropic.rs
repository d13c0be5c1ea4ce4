//! The mock's Anthropic messages, whole and streamed, and token counting.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use super::{bad_request, chat_input, pieces, token_limit, ChatInput, MockError};
use crate::stream::sse::named_frame;
use crate::textfmt::random_id;

/// Anthropic requires `max_tokens`.
fn anthropic_input(req: &Value) -> Result<ChatInput, MockError> {
    let limit =
        token_limit(req, "max_tokens")?.ok_or_else(|| bad_request("max_tokens: Field required"))?;
    chat_input(&req["messages"], req.get("system"), Some(limit))
}

/// Serializing these plain structs cannot fail, hence no error path.
fn anthropic_frame(event: &str, value: &impl Serialize) -> Bytes {
    named_frame(event, &serde_json::to_string(value).unwrap_or_default())
}

/// A full Anthropic `message` object.
pub fn anthropic_message(req: &Value, model: &str) -> Result<Value, MockError> {
    let input = anthropic_input(req)?;
    Ok(json!({
        "id": random_id("msg_mock_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": input.reply}],
        "stop_reason": if input.truncated { "max_tokens" } else { "end_turn" },
        "stop_sequence": null,
        "usage": {"input_tokens": input.prompt_tokens, "output_tokens": input.completion_tokens()},
    }))
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: TextDeltaBody<'a>,
}

#[derive(Serialize)]
struct TextDeltaBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// The SSE frames of a streamed Anthropic message, with `event:` lines.
pub fn anthropic_stream(req: &Value, model: &str) -> Result<Vec<Bytes>, MockError> {
    let input = anthropic_input(req)?;
    let start = json!({"type": "message_start", "message": {
        "id": random_id("msg_mock_"), "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input.prompt_tokens, "output_tokens": 1},
    }});
    let mut frames = vec![
        anthropic_frame("message_start", &start),
        named_frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        named_frame("ping", r#"{"type": "ping"}"#),
    ];
    frames.extend(pieces(&input.reply).map(|text| {
        let delta = TextDelta {
            kind: "content_block_delta",
            index: 0,
            delta: TextDeltaBody {
                kind: "text_delta",
                text,
            },
        };
        anthropic_frame("content_block_delta", &delta)
    }));
    frames.push(named_frame(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ));
    let stop_reason = if input.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let delta = json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": input.completion_tokens()}});
    frames.push(anthropic_frame("message_delta", &delta));
    frames.push(named_frame("message_stop", r#"{"type":"message_stop"}"#));
    Ok(frames)
}

/// `{"input_tokens": n}` for Anthropic's count_tokens endpoint (no `max_tokens` needed).
pub fn anthropic_count_tokens(req: &Value) -> Result<Value, MockError> {
    let input = chat_input(&req["messages"], req.get("system"), None)?;
    Ok(json!({"input_tokens": input.prompt_tokens}))
}

#[cfg(test)]
mod tests {
    use super::super::{estimate_tokens, sse_events};
    use super::*;
    use crate::stream::usage::AnthropicUsageTracker;

    fn anthropic_req() -> Value {
        json!({"model": "claude", "max_tokens": 1024, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}]}]})
    }

    #[test]
    fn anthropic_message_shape() {
        let reply = anthropic_message(&anthropic_req(), "claude-x").unwrap();
        assert!(reply["id"].as_str().unwrap().starts_with("msg_mock_"));
        assert_eq!(reply["type"], "message");
        assert_eq!(reply["role"], "assistant");
        assert_eq!(reply["model"], "claude-x");
        assert_eq!(
            reply["content"],
            json!([{"type": "text", "text": "Echo: hello\nworld"}])
        );
        assert_eq!(reply["stop_reason"], "end_turn");
        assert!(reply["stop_sequence"].is_null());
        assert_eq!(
            reply["usage"]["input_tokens"],
            estimate_tokens("Be brief.\nhello\nworld")
        );
        assert_eq!(
            reply["usage"]["output_tokens"],
            estimate_tokens("Echo: hello\nworld")
        );

        let mut req = anthropic_req();
        req["max_tokens"] = json!(1);
        let reply = anthropic_message(&req, "m").unwrap();
        assert_eq!(reply["stop_reason"], "max_tokens");
        assert_eq!(reply["content"][0]["text"], "Echo");
        req.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(
            anthropic_message(&req, "m").unwrap_err().to_string(),
            "max_tokens: Field required"
        );
        assert!(anthropic_stream(&req, "m").is_err());
    }

    #[test]
    fn anthropic_stream_frames() {
        let events = sse_events(&anthropic_stream(&anthropic_req(), "claude-x").unwrap());
        let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
        let deltas = names
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count();
        assert_eq!(deltas, 2);
        let mut expected = vec!["message_start", "content_block_start", "ping"];
        expected.extend(vec!["content_block_delta"; deltas]);
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(names, expected);
        let mut tracker = AnthropicUsageTracker::default();
        let mut text = String::new();
        for event in &events {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(data["type"].as_str(), event.event.as_deref());
            if data["type"] == "content_block_delta" {
                assert_eq!(data["delta"]["type"], "text_delta");
                text.push_str(data["delta"]["text"].as_str().unwrap());
            }
            tracker.observe(event.event.as_deref(), &event.data);
        }
        assert_eq!(text, "Echo: hello\nworld");
        let start: Value = serde_json::from_str(&events[0].data).unwrap();
        assert_eq!(start["message"]["model"], "claude-x");
        assert_eq!(start["message"]["usage"]["output_tokens"], 1);
        let usage = tracker.usage().unwrap();
        assert_eq!(
            usage.prompt_tokens,
            estimate_tokens("Be brief.\nhello\nworld")
        );
        assert_eq!(usage.completion_tokens, estimate_tokens(&text));
    }

    #[test]
    fn anthropic_counts_tokens_without_max_tokens() {
        let mut req = anthropic_req();
        req.as_object_mut().unwrap().remove("max_tokens");
        let count = anthropic_count_tokens(&req).unwrap();
        assert_eq!(
            count,
            json!({"input_tokens": estimate_tokens("Be brief.\nhello\nworld")})
        );
        assert!(anthropic_count_tokens(&json!({"messages": []})).is_err());
    }
}
