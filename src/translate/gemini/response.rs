//! Gemini `generateContent` response → pivot (OpenAI chat) response, and the
//! pieces the stream decoder shares with it: finish-reason and usage mapping
//! and tool-call ids.
//!
//! Each candidate becomes a choice. Thought-summary parts become
//! `reasoning_content`. Gemini sends whole function calls with an optional id;
//! a missing id is generated (`call_<hex>`), and a thought signature on the
//! part is appended to the id (see [`super::SIGNATURE_SEPARATOR`]).

use super::wire::{Candidate, FunctionCall, GenerateContentResponse, UsageMetadata};
use super::SIGNATURE_SEPARATOR;
use crate::api::openai::{
    self, ChatMessage, ChatResponse, Choice, CompletionTokensDetails, MessageContent, Role,
    ToolCall, Usage,
};
use crate::stream::usage::TokenUsage;
use crate::translate::{finish_reason, unix_now, TranslateError};

pub fn response_to_pivot(
    resp: GenerateContentResponse,
    client_model: &str,
) -> Result<ChatResponse, TranslateError> {
    let blocked = resp
        .prompt_feedback
        .as_ref()
        .is_some_and(|feedback| feedback.block_reason.is_some());
    let choices: Vec<Choice> = if resp.candidates.is_empty() && blocked {
        vec![Choice {
            index: 0,
            message: assistant_message(String::new(), String::new(), Vec::new()),
            finish_reason: Some(finish_reason::CONTENT_FILTER.into()),
            logprobs: None,
        }]
    } else if resp.candidates.is_empty() {
        return Err(TranslateError::BadUpstream(
            "the response has no candidates and no block reason".into(),
        ));
    } else {
        resp.candidates
            .into_iter()
            .enumerate()
            .map(choice)
            .collect()
    };
    Ok(ChatResponse {
        id: chat_id(resp.response_id.as_deref()),
        object: "chat.completion".into(),
        created: unix_now(),
        model: client_model.into(),
        choices,
        usage: resp.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
    })
}

fn choice((position, candidate): (usize, Candidate)) -> Choice {
    let index = candidate_index(&candidate, position);
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = &part.function_call {
            calls.push(tool_call(call, part.thought_signature.as_deref()));
        } else if let Some(part_text) = &part.text {
            let target = if part.is_thought() {
                &mut reasoning
            } else {
                &mut text
            };
            target.push_str(part_text);
        }
    }
    let finish = map_finish_reason(
        candidate.finish_reason.as_deref().unwrap_or("STOP"),
        !calls.is_empty(),
    );
    Choice {
        index,
        message: assistant_message(text, reasoning, calls),
        finish_reason: Some(finish.into()),
        logprobs: None,
    }
}

fn assistant_message(text: String, reasoning: String, calls: Vec<ToolCall>) -> ChatMessage {
    // OpenAI sends `content: null` on a reply that only calls tools.
    let content = (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text));
    ChatMessage {
        role: Role::Assistant,
        content,
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        refusal: None,
    }
}

/// The candidate's own index, else its position in the list.
pub(super) fn candidate_index(candidate: &Candidate, position: usize) -> u32 {
    candidate
        .index
        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX))
}

pub(super) fn tool_call(call: &FunctionCall, signature: Option<&str>) -> ToolCall {
    ToolCall {
        id: tool_call_id(call, signature),
        kind: "function".into(),
        function: openai::FunctionCall {
            name: call.name.clone(),
            arguments: arguments_text(call),
        },
    }
}

/// The call's JSON arguments as text; `{}` when Gemini sent none.
pub(super) fn arguments_text(call: &FunctionCall) -> String {
    if call.args.is_null() {
        "{}".into()
    } else {
        call.args.to_string()
    }
}

/// Gemini's call id (or a fresh `call_<hex>`), then the thought signature.
pub(super) fn tool_call_id(call: &FunctionCall, signature: Option<&str>) -> String {
    let base = match &call.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => crate::textfmt::random_id("call_"),
    };
    match signature {
        Some(signature) if !signature.is_empty() => {
            format!("{base}{SIGNATURE_SEPARATOR}{signature}")
        }
        _ => base,
    }
}

pub(super) fn chat_id(response_id: Option<&str>) -> String {
    match response_id {
        Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
        _ => crate::textfmt::random_id("chatcmpl-"),
    }
}

/// Gemini's `finishReason` in OpenAI's vocabulary. A plain stop on a candidate
/// that called functions is `tool_calls`; reasons not listed (OTHER,
/// MALFORMED_FUNCTION_CALL, new ones) read as a stop.
pub(super) fn map_finish_reason(reason: &str, called_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => finish_reason::LENGTH,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => finish_reason::CONTENT_FILTER,
        _ if called_tools => finish_reason::TOOL_CALLS,
        _ => finish_reason::STOP,
    }
}

/// Thoughts count as completion tokens, as OpenAI counts reasoning tokens.
pub(super) fn token_usage(meta: &UsageMetadata) -> TokenUsage {
    TokenUsage {
        prompt_tokens: meta.prompt_token_count.unwrap_or(0),
        completion_tokens: meta
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(meta.thoughts_token_count.unwrap_or(0)),
        cached_tokens: meta.cached_content_token_count.unwrap_or(0),
    }
}

pub(super) fn usage(meta: &UsageMetadata) -> Usage {
    let tokens = token_usage(meta);
    let mut usage = Usage::new(
        tokens.prompt_tokens,
        tokens.completion_tokens,
        tokens.cached_tokens,
    );
    usage.completion_tokens_details = meta
        .thoughts_token_count
        .filter(|&thoughts| thoughts > 0)
        .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens });
    usage
}
