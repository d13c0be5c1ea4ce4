//! Pivot → Gemini request tests, checked on the serialized wire JSON.

use serde_json::{json, Value};

use super::request_from_pivot;
use crate::api::openai::ChatRequest;
use crate::translate::TranslateError;

fn chat(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

/// The Gemini body the pivot request translates to.
fn gemini(body: Value) -> Value {
    serde_json::to_value(request_from_pivot(&chat(body)).unwrap()).unwrap()
}

fn error(body: Value) -> TranslateError {
    request_from_pivot(&chat(body)).unwrap_err()
}

#[test]
fn system_and_developer_messages_become_the_system_instruction() {
    let body = gemini(json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"}
        ]
    }));
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
        })
    );
}

#[test]
fn consecutive_turns_of_one_role_are_merged() {
    let body = gemini(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "four"},
            {"role": "user", "content": "five"}
        ]
    }));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
            {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
            {"role": "user", "parts": [{"text": "five"}]}
        ])
    );
}

#[test]
fn images_from_data_urls_and_http_urls() {
    let body = gemini(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.WEBP?size=2#x"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/photo", "detail": "high"}}
        ]}]
    }));
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"text": "compare"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/a/cat.WEBP?size=2#x"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}}
        ])
    );
    let bad = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}}]}]}),
    );
    assert!(matches!(bad, TranslateError::InvalidRequest(_)));
}

#[test]
fn audio_and_inline_files() {
    let body = gemini(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]}]
    }));
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
        ])
    );
    let uploaded = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-123"}}]}]}),
    );
    assert!(matches!(uploaded, TranslateError::Unsupported(_)));
}

#[test]
fn tools_and_a_single_tool_call_round_trip() {
    let body = gemini(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "{\"temp_c\": 21}"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "strict": true,
                "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"city": {"type": "string"}}, "required": ["city"],
                    "additionalProperties": false}}},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": "required"
    }));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "skip_thought_signature_validator"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now"}
        ]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
}

#[test]
fn parallel_calls_keep_signatures_and_results_share_one_turn() {
    let body = gemini(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Paris and Rome?"},
            {"role": "assistant", "content": "Checking both.", "tool_calls": [
                {"id": "call_1__thought__c2lnMQ==", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1__thought__c2lnMQ==", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "[1, 2]"},
            {"role": "user", "content": "Thanks"}
        ]
    }));
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "Checking both."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnMQ=="},
            {"functionCall": {"name": "get_time", "args": {}}}
        ]})
    );
    assert_eq!(
        body["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "[1, 2]"}}},
            {"text": "Thanks"}
        ]})
    );
    assert_eq!(body["contents"].as_array().map(Vec::len), Some(3));
}

#[test]
fn bad_tool_history_is_an_invalid_request() {
    let bad_args = error(json!({"model": "m", "messages": [
        {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "lookup", "arguments": "{not json"}}]}]}));
    let TranslateError::InvalidRequest(message) = bad_args else {
        panic!("expected InvalidRequest, got {bad_args:?}");
    };
    assert!(
        message.contains("call_9") && message.contains("lookup"),
        "{message}"
    );

    let orphan = error(json!({"model": "m", "messages": [
        {"role": "tool", "tool_call_id": "call_missing", "content": "x"}]}));
    let TranslateError::InvalidRequest(message) = orphan else {
        panic!("expected InvalidRequest, got {orphan:?}");
    };
    assert!(message.contains("call_missing"), "{message}");
}

#[test]
fn tool_choice_modes() {
    let with_choice = |choice: Value| {
        gemini(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}),
        )["toolConfig"]["functionCallingConfig"]
            .clone()
    };
    assert_eq!(with_choice(json!("auto")), json!({"mode": "AUTO"}));
    assert_eq!(with_choice(json!("none")), json!({"mode": "NONE"}));
    assert_eq!(
        with_choice(json!({"type": "function", "function": {"name": "f"}})),
        json!({"mode": "ANY", "allowedFunctionNames": ["f"]})
    );
    // No tools: no toolConfig at all.
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tool_choice": "none"}),
    );
    assert!(body.get("toolConfig").is_none() && body.get("tools").is_none());
}

#[test]
fn json_mode_and_json_schema() {
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true,
            "schema": {"type": "object", "additionalProperties": false,
                "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
                "required": ["name", "age"]}}}}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseSchema": {"type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "nullable": true}},
            "required": ["name", "age"]}})
    );
}

#[test]
fn sampling_stop_and_output_cap() {
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.2, "top_p": 0.9, "stop": ["END", "STOP"], "max_tokens": 50,
        "max_completion_tokens": 100, "n": 3, "top_k": 40, "seed": 7, "presence_penalty": 0.5}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
            "stopSequences": ["END", "STOP"], "candidateCount": 3, "presencePenalty": 0.5, "seed": 7})
    );
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "stop": "END", "max_tokens": 50}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 50, "stopSequences": ["END"]})
    );
    let too_many =
        error(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 9}));
    assert!(matches!(too_many, TranslateError::Unsupported(_)));
}

#[test]
fn reasoning_effort_sets_a_thinking_budget() {
    let budget = |effort: &str| {
        gemini(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": effort}),
        )["generationConfig"]["thinkingConfig"]
            .clone()
    };
    assert_eq!(
        budget("low"),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(
        budget("medium"),
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );
    assert_eq!(
        budget("high"),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    assert_eq!(budget("none"), json!({"thinkingBudget": 0}));
    let bad = error(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "extreme"}),
    );
    assert!(matches!(bad, TranslateError::InvalidRequest(_)));
}

#[test]
fn safety_settings_pass_through() {
    let settings = json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]);
    let body = gemini(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "safety_settings": settings.clone()}),
    );
    assert_eq!(body["safetySettings"], settings);
}
