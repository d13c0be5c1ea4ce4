//! Gemini stream decoder tests, fed `data:` payloads as the API sends them.

use serde_json::{json, Value};

use super::StreamDecoder;
use crate::api::openai::ChatChunk;
use crate::stream::usage::TokenUsage;
use crate::translate::PivotEvent;

fn chunks(events: Vec<PivotEvent>) -> Vec<ChatChunk> {
    events
        .into_iter()
        .map(|event| match event {
            PivotEvent::Chunk(chunk) => chunk,
            other => panic!("expected a chunk, got {other:?}"),
        })
        .collect()
}

/// A chunk's single choice as JSON (delta and finish reason).
fn choice(chunk: &ChatChunk) -> Value {
    assert_eq!(chunk.choices.len(), 1);
    serde_json::to_value(&chunk.choices[0]).unwrap()
}

#[test]
fn text_then_function_call() {
    let stream = [
        r#"{"candidates": [{"content": {"parts": [{"text": "Let me"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 30,"candidatesTokenCount": 2,"totalTokenCount": 32},"modelVersion": "gemini-2.5-flash","responseId": "resp-9"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": " check."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 30,"candidatesTokenCount": 4,"totalTokenCount": 34},"modelVersion": "gemini-2.5-flash","responseId": "resp-9"}"#,
        r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},"thoughtSignature": "c2ln"},{"functionCall": {"name": "get_time","args": {"tz": "CET"}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 30,"candidatesTokenCount": 20,"totalTokenCount": 80,"cachedContentTokenCount": 16,"thoughtsTokenCount": 30},"modelVersion": "gemini-2.5-flash","responseId": "resp-9"}"#,
    ];
    let mut decoder = StreamDecoder::new("client-model");
    let first = chunks(decoder.data(stream[0]));
    assert_eq!(first.len(), 2);
    assert_eq!(
        choice(&first[0]),
        json!({"index": 0, "delta": {"role": "assistant"}, "finish_reason": null})
    );
    assert_eq!(choice(&first[1])["delta"], json!({"content": "Let me"}));
    assert!(!decoder.finished());
    assert_eq!(decoder.usage().map(|u| u.completion_tokens), Some(2));

    let second = chunks(decoder.data(stream[1]));
    assert_eq!(second.len(), 1);
    assert_eq!(choice(&second[0])["delta"], json!({"content": " check."}));

    let last = chunks(decoder.data(stream[2]));
    assert_eq!(last.len(), 3);
    let call = &choice(&last[0])["delta"]["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    let id = call["id"].as_str().unwrap();
    assert!(
        id.starts_with("call_") && id.ends_with("__thought__c2ln"),
        "{id}"
    );
    let second_call = &choice(&last[1])["delta"]["tool_calls"][0];
    assert_eq!(second_call["index"], 1);
    assert_eq!(second_call["function"]["name"], "get_time");
    assert!(!second_call["id"].as_str().unwrap().contains("__thought__"));

    let finish = &last[2];
    assert_eq!(choice(finish)["finish_reason"], "tool_calls");
    assert_eq!(choice(finish)["delta"], json!({}));
    assert_eq!(
        serde_json::to_value(finish.usage.as_ref().unwrap()).unwrap(),
        json!({"prompt_tokens": 30, "completion_tokens": 50, "total_tokens": 80,
            "prompt_tokens_details": {"cached_tokens": 16},
            "completion_tokens_details": {"reasoning_tokens": 30}})
    );
    assert!(decoder.finished());
    assert_eq!(
        decoder.usage(),
        Some(TokenUsage {
            prompt_tokens: 30,
            completion_tokens: 50,
            cached_tokens: 16
        })
    );

    // One id, one created, the client's model name, on every chunk.
    let all: Vec<&ChatChunk> = first.iter().chain(&second).chain(&last).collect();
    assert!(all.iter().all(|c| c.id == "chatcmpl-resp-9"
        && c.created == all[0].created
        && c.model == "client-model"
        && c.object == "chat.completion.chunk"));
    assert!(all[..all.len() - 1].iter().all(|c| c.usage.is_none()));
}

#[test]
fn thoughts_stream_as_reasoning_and_max_tokens_is_length() {
    let mut decoder = StreamDecoder::new("m");
    let events = chunks(decoder.data(
        r#"{"candidates": [{"content": {"parts": [{"text": "Thinking about it", "thought": true}],"role": "model"},"index": 0}]}"#,
    ));
    assert_eq!(
        choice(&events[1])["delta"],
        json!({"reasoning_content": "Thinking about it"})
    );
    let id = events[0].id.clone();
    assert!(id.starts_with("chatcmpl-") && id.len() > 20);
    let events = chunks(decoder.data(
        r#"{"candidates": [{"content": {"parts": [{"text": "The answer is"},{"text": "", "thoughtSignature": "c2ln"}],"role": "model"},"finishReason": "MAX_TOKENS","index": 0}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 3,"totalTokenCount": 8}}"#,
    ));
    assert_eq!(events.len(), 2);
    assert_eq!(
        choice(&events[0])["delta"],
        json!({"content": "The answer is"})
    );
    assert_eq!(choice(&events[1])["finish_reason"], "length");
    assert_eq!(events[1].usage.as_ref().map(|u| u.total_tokens), Some(8));
    assert!(events.iter().all(|c| c.id == id));
}

#[test]
fn safety_stop_and_blocked_prompt_are_content_filter() {
    let mut decoder = StreamDecoder::new("m");
    let events = chunks(decoder.data(
        r#"{"candidates": [{"finishReason": "SAFETY","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT","probability": "HIGH","blocked": true}]}]}"#,
    ));
    assert_eq!(events.len(), 2);
    assert_eq!(choice(&events[1])["finish_reason"], "content_filter");
    assert!(decoder.finished());

    let mut decoder = StreamDecoder::new("m");
    let events = chunks(decoder.data(
        r#"{"promptFeedback": {"blockReason": "SAFETY"},"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9}}"#,
    ));
    assert_eq!(events.len(), 2);
    assert_eq!(choice(&events[0])["delta"], json!({"role": "assistant"}));
    assert_eq!(choice(&events[1])["finish_reason"], "content_filter");
    assert_eq!(events[1].usage.as_ref().map(|u| u.prompt_tokens), Some(9));
    assert!(decoder.finished());
}

#[test]
fn errors_and_unreadable_events() {
    let mut decoder = StreamDecoder::new("m");
    let events = decoder.data(
        r#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#,
    );
    assert_eq!(
        events,
        vec![PivotEvent::Error {
            message: "UNAVAILABLE: The model is overloaded.".into()
        }]
    );
    assert!(matches!(
        decoder.data("{not json").as_slice(),
        [PivotEvent::Error { .. }]
    ));
    assert!(decoder.data("  ").is_empty());
    // Text that merely mentions "error" is still text.
    let events = chunks(decoder.data(
        r#"{"candidates": [{"content": {"parts": [{"text": "an \"error\" here"}],"role": "model"},"index": 0}]}"#,
    ));
    assert_eq!(
        choice(&events[1])["delta"],
        json!({"content": "an \"error\" here"})
    );
    assert!(!decoder.finished());
    assert_eq!(decoder.usage(), None);
}

#[test]
fn several_candidates_keep_their_own_state() {
    let mut decoder = StreamDecoder::new("m");
    let events = chunks(decoder.data(
        r#"{"candidates": [{"content": {"parts": [{"text": "A"}],"role": "model"},"index": 0},{"content": {"parts": [{"functionCall": {"name": "f","args": {}}}],"role": "model"},"index": 1}]}"#,
    ));
    let indexes: Vec<u32> = events.iter().map(|c| c.choices[0].index).collect();
    assert_eq!(indexes, vec![0, 0, 1, 1]);
    let events = chunks(decoder.data(
        r#"{"candidates": [{"content": {"parts": [{"text": "!"}],"role": "model"},"finishReason": "STOP","index": 0},{"finishReason": "STOP","index": 1}],"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 6,"totalTokenCount": 10}}"#,
    ));
    assert_eq!(events.len(), 3);
    assert_eq!(choice(&events[1])["finish_reason"], "stop");
    assert_eq!(choice(&events[2])["finish_reason"], "tool_calls");
    assert!(events[1].usage.is_none());
    assert_eq!(events[2].usage.as_ref().map(|u| u.total_tokens), Some(10));
}
