//! Upstream answers shaped as OpenAI and Anthropic send them.

use serde_json::{json, Value};

pub fn openai_completion(model: &str, text: &str) -> Value {
    json!({
        "id": "chatcmpl-up-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                  "prompt_tokens_details": {"cached_tokens": 3}}
    })
}

/// An OpenAI stream: role chunk, one chunk per word, finish chunk, and (as
/// the upstream does when asked) a usage chunk, then [DONE].
pub fn openai_stream(model: &str, words: &[&str], with_usage: bool) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-up-2", "object": "chat.completion.chunk", "created": 1_700_000_000,
                   "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for word in words {
        chunks.push(chunk(json!({"content": word}), Value::Null));
    }
    chunks.push(chunk(json!({}), json!("stop")));
    if with_usage {
        chunks.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-up-2", "object": "chat.completion.chunk", "created": 1_700_000_000,
                   "model": model, "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": words.len(), "total_tokens": 9 + words.len()}})
        ));
    }
    chunks.push("data: [DONE]\n\n".to_string());
    chunks
}

pub fn anthropic_message(model: &str, text: &str) -> Value {
    json!({
        "id": "msg_up_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6}
    })
}

pub fn anthropic_stream(model: &str, words: &[&str]) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut chunks = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_up_2", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 21, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for word in words {
        chunks.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word}}),
        ));
    }
    chunks.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    chunks.push(event("message_delta", json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": words.len() + 1}})));
    chunks.push(event("message_stop", json!({"type": "message_stop"})));
    chunks
}
