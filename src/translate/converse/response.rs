//! Converse response → pivot response: text blocks joined into `content`,
//! reasoning into `reasoning_content`, `toolUse` blocks into `tool_calls`.
//! The stop-reason and usage mappings are shared with the stream decoder.

use super::completion_id;
use super::wire::{ContentBlock, ConverseResponse, ConverseUsage, StopReason};
use crate::api::openai::{
    ChatMessage, ChatResponse, Choice, FunctionCall, MessageContent, Role, ToolCall, Usage,
};
use crate::stream::usage::TokenUsage;
use crate::translate::{finish_reason, unix_now};

/// Builds the pivot response; `client_model` is the name the client asked for.
pub fn response_to_pivot(resp: ConverseResponse, client_model: &str) -> ChatResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    let blocks = resp.output.message.map(|m| m.content).unwrap_or_default();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => text.push_str(&t),
            ContentBlock::ReasoningContent(r) => {
                if let Some(r) = r.reasoning_text {
                    reasoning.push_str(&r.text);
                }
            }
            ContentBlock::ToolUse(call) => tool_calls.push(ToolCall {
                id: call.tool_use_id,
                kind: "function".into(),
                function: FunctionCall {
                    name: call.name,
                    arguments: call.input.to_string(),
                },
            }),
            ContentBlock::Image(_) | ContentBlock::ToolResult(_) | ContentBlock::Other => {}
        }
    }
    let message = ChatMessage {
        role: Role::Assistant,
        // OpenAI sends `content: null` on a reply that only calls tools.
        content: (!text.is_empty() || tool_calls.is_empty()).then_some(MessageContent::Text(text)),
        name: None,
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        tool_call_id: None,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        refusal: None,
    };
    ChatResponse {
        id: completion_id(),
        object: "chat.completion".into(),
        created: unix_now(),
        model: client_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason_from(resp.stop_reason).to_owned()),
            logprobs: None,
        }],
        usage: resp.usage.map(|u| usage_to_pivot(&u)),
        system_fingerprint: None,
    }
}

/// Converse stop reasons in OpenAI's vocabulary.
pub(super) fn finish_reason_from(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::Other => finish_reason::STOP,
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => finish_reason::LENGTH,
        StopReason::ToolUse => finish_reason::TOOL_CALLS,
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => {
            finish_reason::CONTENT_FILTER
        }
    }
}

/// Cache reads and writes are prompt tokens too; `cached` is the reads.
pub(super) fn token_usage(usage: &ConverseUsage) -> TokenUsage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    TokenUsage {
        prompt_tokens: usage
            .input_tokens
            .saturating_add(cache_read)
            .saturating_add(usage.cache_write_input_tokens.unwrap_or(0)),
        completion_tokens: usage.output_tokens,
        cached_tokens: cache_read,
    }
}

pub(super) fn usage_to_pivot(usage: &ConverseUsage) -> Usage {
    let tokens = token_usage(usage);
    Usage::new(
        tokens.prompt_tokens,
        tokens.completion_tokens,
        tokens.cached_tokens,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pivot(body: serde_json::Value) -> ChatResponse {
        response_to_pivot(serde_json::from_value(body).unwrap(), "my-claude")
    }

    #[test]
    fn text_reasoning_and_usage_with_cache_tokens() {
        let response = pivot(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "2+2 is 4.", "signature": "sig=="}}},
                {"text": "The answer "}, {"text": "is 4."},
                {"citationsContent": {"content": [{"text": "ignored"}]}}
            ]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 169,
                "cacheReadInputTokens": 100, "cacheWriteInputTokens": 50},
            "metrics": {"latencyMs": 812}
        }));
        assert!(response.id.starts_with("chatcmpl-"));
        assert_eq!(response.id.len(), "chatcmpl-".len() + 24);
        assert_eq!(response.model, "my-claude");
        assert_eq!(response.object, "chat.completion");
        let choice = &response.choices[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
        assert_eq!(choice.message.text_content(), "The answer is 4.");
        assert_eq!(
            choice.message.reasoning_content.as_deref(),
            Some("2+2 is 4.")
        );
        assert_eq!(choice.message.tool_calls, None);
        let usage = response.usage.unwrap();
        assert_eq!(
            serde_json::to_value(&usage).unwrap(),
            json!({"prompt_tokens": 162, "completion_tokens": 7, "total_tokens": 169,
                "prompt_tokens_details": {"cached_tokens": 100}})
        );
    }

    #[test]
    fn tool_uses_become_tool_calls() {
        let response = pivot(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "tooluse_b", "name": "get_time", "input": {}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 30, "outputTokens": 40, "totalTokens": 70}
        }));
        let choice = &response.choices[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(choice.message.content, None);
        let calls = choice.message.tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "tooluse_a");
        assert_eq!(calls[0].kind, "function");
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
        assert_eq!(calls[1].function.arguments, "{}");
        assert_eq!(response.usage.unwrap().prompt_tokens_details, None);
    }

    #[test]
    fn stop_reasons() {
        let finish = |reason: &str| {
            pivot(
                json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
                "stopReason": reason}),
            )
            .choices[0]
                .finish_reason
                .clone()
                .unwrap()
        };
        assert_eq!(finish("stop_sequence"), "stop");
        assert_eq!(finish("max_tokens"), "length");
        assert_eq!(finish("model_context_window_exceeded"), "length");
        assert_eq!(finish("guardrail_intervened"), "content_filter");
        assert_eq!(finish("content_filtered"), "content_filter");
        assert_eq!(finish("something_new"), "stop");
    }

    #[test]
    fn max_tokens_hit_keeps_partial_text() {
        let response = pivot(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "Once upon a"}]}},
            "stopReason": "max_tokens",
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}
        }));
        assert_eq!(response.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(response.choices[0].message.text_content(), "Once upon a");
        assert_eq!(response.usage.map(|u| u.total_tokens), Some(8));
    }
}
