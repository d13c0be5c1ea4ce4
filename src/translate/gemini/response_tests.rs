//! Gemini → pivot response tests, from bodies shaped like the real API's.

use serde_json::{json, Value};

use super::response_to_pivot;
use super::wire::{ErrorBody, GenerateContentResponse};
use crate::api::openai::{ChatResponse, MessageContent};
use crate::translate::TranslateError;

fn pivot(body: Value) -> ChatResponse {
    let resp: GenerateContentResponse = serde_json::from_value(body).unwrap();
    response_to_pivot(resp, "my-gemini").unwrap()
}

fn text(response: &ChatResponse, choice: usize) -> Option<String> {
    match &response.choices[choice].message.content {
        Some(MessageContent::Text(text)) => Some(text.clone()),
        other => other.as_ref().map(|c| format!("{c:?}")),
    }
}

#[test]
fn text_reply_with_thoughts_and_usage() {
    let response = pivot(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "**Weighing it**\nThe user wants", "thought": true},
                {"text": "Hello"}, {"text": ", world."}
            ]},
            "finishReason": "STOP", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
        }],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 8, "totalTokenCount": 178,
            "cachedContentTokenCount": 100, "thoughtsTokenCount": 50,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc123"
    }));
    assert_eq!(response.id, "chatcmpl-abc123");
    assert_eq!(response.model, "my-gemini");
    assert_eq!(response.object, "chat.completion");
    assert!(response.created > 0);
    assert_eq!(text(&response, 0).as_deref(), Some("Hello, world."));
    let choice = &response.choices[0];
    assert_eq!(
        choice.message.reasoning_content.as_deref(),
        Some("**Weighing it**\nThe user wants")
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let usage = serde_json::to_value(response.usage.as_ref().unwrap()).unwrap();
    assert_eq!(
        usage,
        json!({"prompt_tokens": 120, "completion_tokens": 58, "total_tokens": 178,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 50}})
    );
}

#[test]
fn function_calls_become_tool_calls() {
    let response = pivot(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"id": "fc_7", "name": "get_time", "args": {}}},
                {"functionCall": {"name": "ping"}}
            ]},
            "finishReason": "STOP"
        }],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
    }));
    assert!(response.id.starts_with("chatcmpl-"));
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 3);
    let (base, signature) = calls[0].id.split_once("__thought__").unwrap();
    assert_eq!(signature, "c2ln");
    assert!(base.starts_with("call_") && base.len() == 29, "{base}");
    assert_eq!(calls[0].kind, "function");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
    assert_eq!(calls[1].id, "fc_7");
    assert_eq!(calls[1].function.arguments, "{}");
    assert_eq!(calls[2].function.arguments, "{}");
    assert_ne!(calls[0].id, calls[2].id);
    assert_eq!(
        response.usage.as_ref().unwrap().completion_tokens_details,
        None
    );
}

#[test]
fn finish_reasons_map_to_openai_vocabulary() {
    let finish = |reason: &str| {
        pivot(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
            "finishReason": reason}]}),
        )
        .choices[0]
            .finish_reason
            .clone()
            .unwrap()
    };
    assert_eq!(finish("MAX_TOKENS"), "length");
    for filtered in [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
    ] {
        assert_eq!(finish(filtered), "content_filter", "{filtered}");
    }
    assert_eq!(finish("OTHER"), "stop");
    assert_eq!(finish("MALFORMED_FUNCTION_CALL"), "stop");
}

#[test]
fn safety_block_without_content() {
    let response = pivot(json!({
        "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}
    }));
    assert_eq!(text(&response, 0).as_deref(), Some(""));
    assert_eq!(
        response.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(response.usage.as_ref().map(|u| u.total_tokens), Some(7));
}

#[test]
fn blocked_prompt_gives_one_filtered_choice() {
    let response = pivot(json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}
    }));
    assert_eq!(response.choices.len(), 1);
    assert_eq!(text(&response, 0).as_deref(), Some(""));
    assert_eq!(
        response.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );

    let empty: GenerateContentResponse = serde_json::from_value(json!({})).unwrap();
    assert!(matches!(
        response_to_pivot(empty, "m"),
        Err(TranslateError::BadUpstream(_))
    ));
}

#[test]
fn several_candidates_become_several_choices() {
    let response = pivot(json!({"candidates": [
        {"content": {"role": "model", "parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
        {"content": {"role": "model", "parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}
    ]}));
    assert_eq!(response.choices.len(), 2);
    assert_eq!(response.choices[1].index, 1);
    assert_eq!(text(&response, 1).as_deref(), Some("B"));
    assert_eq!(response.choices[1].finish_reason.as_deref(), Some("length"));
    assert_eq!(response.usage, None);
}

#[test]
fn error_bodies_parse() {
    let body: ErrorBody = serde_json::from_value(json!({"error": {"code": 429,
        "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}))
    .unwrap();
    assert_eq!(body.error.code, Some(429));
    assert_eq!(body.error.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
}
