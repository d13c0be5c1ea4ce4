//! Request translation in both directions, checked as whole JSON bodies.

use serde_json::{json, Value};

use super::{effort_for_budget, request_from_pivot, request_to_pivot};
use crate::api::anthropic::MessagesRequest;
use crate::api::openai::ChatRequest;
use crate::translate::TranslateError;

fn to_pivot(body: Value) -> Value {
    let request: MessagesRequest = serde_json::from_value(body).unwrap();
    serde_json::to_value(request_to_pivot(request).unwrap()).unwrap()
}

fn from_pivot(body: Value) -> Result<Value, TranslateError> {
    let request: ChatRequest = serde_json::from_value(body).unwrap();
    request_from_pivot(&request, 4096).map(|r| serde_json::to_value(r).unwrap())
}

#[test]
fn anthropic_request_to_pivot_with_tools_images_and_thinking() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "be kind"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "weather in Paris and Rome? see"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "two cities", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2",
                 "content": [{"type": "text", "text": "21C"}]},
                {"type": "text", "text": "and tomorrow?"}
            ]}
        ],
        "tools": [{"name": "weather", "description": "forecast",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_k": 5,
        "stream": true,
        "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 4000}
    });
    let expected = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "be brief\n\nbe kind"},
            {"role": "user", "content": [
                {"type": "text", "text": "weather in Paris and Rome? see"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}
            ]},
            {"role": "assistant", "content": "Checking.", "reasoning_content": "two cities",
             "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "content": "18C", "tool_call_id": "toolu_1"},
            {"role": "tool", "content": "21C", "tool_call_id": "toolu_2"},
            {"role": "user", "content": "and tomorrow?"}
        ],
        "max_tokens": 1000,
        "temperature": 0.5,
        "stream": true,
        "stream_options": {"include_usage": true},
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "forecast",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "user": "u-1",
        "reasoning_effort": "medium"
    });
    assert_eq!(to_pivot(body), expected);
}

#[test]
fn tool_result_images_and_errors_to_pivot() {
    let body = json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [
                {"type": "text", "text": "timeout"},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/s.png"}}
            ]},
            {"type": "tool_result", "tool_use_id": "t2"}
        ]}],
        "tool_choice": {"type": "tool", "name": "shot"}
    });
    let pivot = to_pivot(body);
    assert_eq!(
        pivot["messages"],
        json!([
            {"role": "tool", "content": "Error: timeout", "tool_call_id": "t1"},
            {"role": "tool", "content": "", "tool_call_id": "t2"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.test/s.png"}}]}
        ])
    );
    assert_eq!(
        pivot["tool_choice"],
        json!({"type": "function", "function": {"name": "shot"}})
    );
    assert_eq!(pivot.get("parallel_tool_calls"), None);
}

#[test]
fn server_tools_and_unknown_blocks_are_refused_for_openai_upstreams() {
    let server_tool = json!({"model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let request: MessagesRequest = serde_json::from_value(server_tool).unwrap();
    assert!(matches!(
        request_to_pivot(request),
        Err(TranslateError::Unsupported(m)) if m.contains("web_search")
    ));
    let unknown_block = json!({"model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}]});
    let request: MessagesRequest = serde_json::from_value(unknown_block).unwrap();
    assert!(matches!(
        request_to_pivot(request),
        Err(TranslateError::Unsupported(m)) if m.contains("container_upload")
    ));
}

#[test]
fn thinking_budgets_map_to_efforts() {
    assert_eq!(effort_for_budget(1024), "low");
    assert_eq!(effort_for_budget(2048), "low");
    assert_eq!(effort_for_budget(2049), "medium");
    assert_eq!(effort_for_budget(8192), "medium");
    assert_eq!(effort_for_budget(8193), "high");
}

#[test]
fn pivot_request_to_anthropic_merges_turns_and_moves_tool_results() {
    let body = json!({
        "model": "claude-haiku-4-5",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "use metric"}]},
            {"role": "user", "content": "weather?"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,BBBB"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/map.png", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "reasoning_content": "not sent", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "thanks"}
        ],
        "max_completion_tokens": 300,
        "temperature": 1.6,
        "top_p": 0.9,
        "stop": "END",
        "stream": true,
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
                  {"type": "function", "function": {"name": "now", "description": "time"}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "user": "u-9",
        "seed": 7
    });
    let expected = json!({
        "model": "claude-haiku-4-5",
        "system": "be brief\n\nuse metric",
        "max_tokens": 300,
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "top_p": 0.9,
        "stream": true,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/map.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "now", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
                {"type": "text", "text": "thanks"}
            ]}
        ],
        "tools": [
            {"name": "weather", "input_schema": {"type": "object"}},
            {"name": "now", "description": "time", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "metadata": {"user_id": "u-9"}
    });
    assert_eq!(from_pivot(body).unwrap(), expected);
}

#[test]
fn history_starting_with_the_assistant_gets_a_user_turn_and_prefill_is_trimmed() {
    let body = json!({"model": "m", "messages": [
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": ""},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "{ "}
    ]});
    let out = from_pivot(body).unwrap();
    assert_eq!(out["max_tokens"], 4096);
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello, how can I help?"}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "{"}]}
        ])
    );
}

#[test]
fn n_above_one_and_bad_inputs_are_refused() {
    let two =
        from_pivot(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        two,
        Err(TranslateError::Unsupported(
            "n > 1 is not supported by Anthropic models".into()
        ))
    );
    assert!(from_pivot(
        json!({"model": "m", "n": 1, "messages": [{"role": "user", "content": "x"}]})
    )
    .is_ok());

    let bad_args = from_pivot(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "f", "arguments": "{not json"}}]}
    ]}));
    assert!(matches!(bad_args, Err(TranslateError::InvalidRequest(m)) if m.contains("call_9")));

    let only_system =
        from_pivot(json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}));
    assert!(matches!(
        only_system,
        Err(TranslateError::InvalidRequest(_))
    ));

    let audio = from_pivot(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}),
    );
    assert!(matches!(audio, Err(TranslateError::Unsupported(_))));

    let effort = from_pivot(json!({"model": "m", "reasoning_effort": "extreme",
        "messages": [{"role": "user", "content": "x"}]}));
    assert!(matches!(effort, Err(TranslateError::InvalidRequest(m)) if m.contains("extreme")));
}

#[test]
fn response_format_becomes_a_system_instruction() {
    let out = from_pivot(json!({"model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer",
            "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}))
    .unwrap();
    let system = out["system"].as_str().unwrap();
    assert!(system.starts_with("be brief\n\nRespond only with a single valid JSON value"));
    assert!(system.contains("`answer`"));
    assert!(system.contains(r#"{"properties":{"ok":{"type":"boolean"}},"type":"object"}"#));

    let out = from_pivot(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    )
    .unwrap();
    assert!(out["system"].as_str().unwrap().contains("JSON object"));

    let out = from_pivot(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "text"}}),
    )
    .unwrap();
    assert_eq!(out.get("system"), None);
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    let out = from_pivot(
        json!({"model": "m", "reasoning_effort": "high", "max_tokens": 1000,
        "temperature": 0.2, "messages": [{"role": "user", "content": "x"}]}),
    )
    .unwrap();
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert_eq!(out["max_tokens"], 17384);
    assert_eq!(out.get("temperature"), None);

    let out = from_pivot(json!({"model": "m", "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert_eq!(out["thinking"]["budget_tokens"], 1024);
    assert_eq!(out["max_tokens"], 4096);

    let out = from_pivot(json!({"model": "m", "reasoning_effort": "medium",
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert_eq!(out["thinking"]["budget_tokens"], 4096);
    assert_eq!(out["max_tokens"], 8192);

    let out = from_pivot(json!({"model": "m", "reasoning_effort": "none",
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert_eq!(out.get("thinking"), None);
}

#[test]
fn tool_choices_map_back() {
    let choice = |tool_choice: Value| {
        from_pivot(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": tool_choice}),
        )
        .unwrap()["tool_choice"]
            .clone()
    };
    assert_eq!(choice(json!("required")), json!({"type": "any"}));
    assert_eq!(choice(json!("none")), json!({"type": "none"}));
    assert_eq!(
        choice(json!({"type": "function", "function": {"name": "f"}})),
        json!({"type": "tool", "name": "f"})
    );
}

#[test]
fn anthropic_request_survives_a_trip_through_the_pivot() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "be brief",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is in this picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "zoom", "input": {"factor": 2}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                {"type": "text", "text": "so?"}
            ]}
        ],
        "tools": [{"name": "zoom", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "zoom"},
        "stop_sequences": ["\n\nHuman:"]
    });
    let request: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let pivot = request_to_pivot(request).unwrap();
    let back = serde_json::to_value(request_from_pivot(&pivot, 1).unwrap()).unwrap();
    assert_eq!(back, body);
}
