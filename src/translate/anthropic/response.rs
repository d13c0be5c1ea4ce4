//! Whole (non-streamed) responses, both ways: an Anthropic upstream's message
//! → an OpenAI client's chat completion, and an OpenAI-format upstream's
//! completion → an Anthropic client's message.

use super::blocks::input_from_arguments;
use super::{finish_reason_for, stop_reason_for};
use crate::api::anthropic::{
    self as anth, ContentBlock, MessagesResponse, StopReason, ThinkingBlock, ToolUseBlock,
};
use crate::api::openai::{
    ChatMessage, ChatResponse, Choice, FunctionCall, MessageContent, Role, ToolCall, Usage,
};
use crate::translate::unix_now;

/// An Anthropic message as a chat completion for an OpenAI client.
pub fn response_to_pivot(resp: MessagesResponse, client_model: &str) -> ChatResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in resp.content {
        match block {
            ContentBlock::Text(block) => text.push_str(&block.text),
            ContentBlock::Thinking(block) => reasoning.push_str(&block.thinking),
            ContentBlock::ToolUse(ToolUseBlock {
                id, name, input, ..
            }) => calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            // Redacted thinking, server-tool blocks: nothing an OpenAI client reads.
            _ => {}
        }
    }
    let message = ChatMessage {
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..ChatMessage::text(Role::Assistant, "")
    };
    let usage = &resp.usage;
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let prompt = usage
        .input_tokens
        .saturating_add(cache_read)
        .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0));
    ChatResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created: unix_now(),
        model: client_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(
                finish_reason_for(resp.stop_reason.unwrap_or(StopReason::EndTurn)).to_owned(),
            ),
            logprobs: None,
        }],
        usage: Some(Usage::new(prompt, usage.output_tokens, cache_read)),
        system_fingerprint: None,
    }
}

/// A chat completion from an OpenAI-format upstream as an Anthropic message.
/// Only the first choice is used (Anthropic has no `n`).
pub fn response_from_pivot(resp: ChatResponse, client_model: &str) -> MessagesResponse {
    let id = anthropic_message_id(&resp.id);
    let usage = resp
        .usage
        .as_ref()
        .map_or_else(anth::Usage::default, |usage| {
            let cached = usage.cached_tokens();
            anth::Usage {
                input_tokens: usage.prompt_tokens.saturating_sub(cached),
                output_tokens: usage.completion_tokens,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: (cached > 0).then_some(cached),
            }
        });
    let mut content = Vec::new();
    let mut stop_reason = StopReason::EndTurn;
    if let Some(choice) = resp.choices.into_iter().next() {
        let message = choice.message;
        let text = message.text_content();
        if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
            content.push(ContentBlock::Thinking(ThinkingBlock {
                thinking: reasoning,
                signature: String::new(),
            }));
        }
        if !text.is_empty() {
            content.push(ContentBlock::text(text));
        }
        let refused = match message.refusal {
            Some(refusal) if !refusal.is_empty() => {
                content.push(ContentBlock::text(refusal));
                true
            }
            _ => false,
        };
        for call in message.tool_calls.into_iter().flatten() {
            content.push(ContentBlock::ToolUse(ToolUseBlock {
                input: input_from_arguments(&call.function.arguments),
                id: call.id,
                name: call.function.name,
                cache_control: None,
            }));
        }
        if let Some(finish) = choice.finish_reason.as_deref() {
            stop_reason = stop_reason_for(finish);
        }
        if refused {
            stop_reason = StopReason::Refusal;
        } else if stop_reason == StopReason::EndTurn && has_tool_use(&content) {
            // Some upstreams say "stop" after tool calls; Anthropic clients
            // run tools only on `tool_use`.
            stop_reason = StopReason::ToolUse;
        }
    }
    MessagesResponse {
        id,
        kind: "message".into(),
        role: anth::Role::Assistant,
        model: client_model.to_owned(),
        content,
        stop_reason: Some(stop_reason),
        stop_sequence: None,
        usage,
    }
}

fn has_tool_use(content: &[ContentBlock]) -> bool {
    content
        .iter()
        .any(|block| matches!(block, ContentBlock::ToolUse(_)))
}

/// An Anthropic-looking message id derived from an upstream id.
pub(super) fn anthropic_message_id(upstream_id: &str) -> String {
    if upstream_id.starts_with("msg_") {
        return upstream_id.to_owned();
    }
    let bare = upstream_id.strip_prefix("chatcmpl-").unwrap_or(upstream_id);
    if bare.is_empty() {
        let random: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(24)
            .collect();
        return format!("msg_{random}");
    }
    format!("msg_{bare}")
}
