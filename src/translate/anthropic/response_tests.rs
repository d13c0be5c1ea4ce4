//! Whole-response translation in both directions.

use serde_json::{json, Value};

use super::{response_from_pivot, response_to_pivot};
use crate::api::anthropic::MessagesResponse;
use crate::api::openai::ChatResponse;

fn to_pivot(body: Value) -> Value {
    let response: MessagesResponse = serde_json::from_value(body).unwrap();
    let mut out = serde_json::to_value(response_to_pivot(response, "client-model")).unwrap();
    assert!(out["created"].as_u64().unwrap() > 1_600_000_000);
    out["created"] = json!(0);
    out
}

fn from_pivot(body: Value) -> Value {
    let response: ChatResponse = serde_json::from_value(body).unwrap();
    serde_json::to_value(response_from_pivot(response, "client-model")).unwrap()
}

fn anthropic_message(stop_reason: &str, content: Value) -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5}})
}

#[test]
fn anthropic_message_with_thinking_and_parallel_tools_to_pivot() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "two lookups", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xxx"},
            {"type": "text", "text": "Checking "},
            {"type": "text", "text": "both."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100,
                  "cache_read_input_tokens": 50, "output_tokens": 7}
    });
    let expected = json!({
        "id": "msg_01", "object": "chat.completion", "created": 0, "model": "client-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
            "role": "assistant", "content": "Checking both.", "reasoning_content": "two lookups",
            "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]}}],
        "usage": {"prompt_tokens": 162, "completion_tokens": 7, "total_tokens": 169,
                  "prompt_tokens_details": {"cached_tokens": 50}}
    });
    assert_eq!(to_pivot(body), expected);
}

#[test]
fn stop_reasons_to_finish_reasons() {
    let text = json!([{"type": "text", "text": "hi"}]);
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "stop"),
    ] {
        let out = to_pivot(anthropic_message(stop, text.clone()));
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
        assert_eq!(out["choices"][0]["message"]["content"], "hi");
    }
    let tool_only = to_pivot(anthropic_message(
        "tool_use",
        json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]),
    ));
    assert_eq!(tool_only["choices"][0]["message"]["content"], Value::Null);
}

#[test]
fn openai_completion_with_reasoning_and_tools_to_anthropic() {
    let body = json!({
        "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.", "reasoning_content": "plan",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{oops"}}
            ]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 60}}
    });
    let expected = json!({
        "id": "msg_abc123", "type": "message", "role": "assistant", "model": "client-model",
        "content": [
            {"type": "thinking", "thinking": "plan", "signature": ""},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "{oops"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 60}
    });
    assert_eq!(from_pivot(body), expected);
}

#[test]
fn finish_reasons_to_stop_reasons() {
    let completion = |finish: &str, message: Value| {
        json!({"id": "chatcmpl-1", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": finish, "message": message}]})
    };
    let text = json!({"role": "assistant", "content": "hi"});
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        let out = from_pivot(completion(finish, text.clone()));
        assert_eq!(out["stop_reason"], stop, "{finish}");
        assert_eq!(out["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
    }
    // "stop" after tool calls still has to say tool_use to an Anthropic client.
    let calls = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]});
    let out = from_pivot(completion("stop", calls));
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(
        out["content"],
        json!([{"type": "tool_use", "id": "c", "name": "f", "input": {}}])
    );

    let refusal = json!({"role": "assistant", "content": null, "refusal": "I can't."});
    let out = from_pivot(completion("stop", refusal));
    assert_eq!(out["stop_reason"], "refusal");
    assert_eq!(
        out["content"],
        json!([{"type": "text", "text": "I can't."}])
    );
}

#[test]
fn message_ids() {
    let id = |upstream: &str| {
        from_pivot(json!({"id": upstream, "created": 1, "model": "m", "choices": []}))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(id("chatcmpl-xyz"), "msg_xyz");
    assert_eq!(id("msg_keep"), "msg_keep");
    assert_eq!(id("gen-42"), "msg_gen-42");
    let fresh = id("");
    assert!(fresh.starts_with("msg_") && fresh.len() == 28, "{fresh}");
}
