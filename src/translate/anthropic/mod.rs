//! Anthropic Messages ⇄ the OpenAI pivot, in all four directions:
//!
//! - [`request`]: an Anthropic client's request → pivot (for OpenAI-format
//!   upstreams), and pivot → an Anthropic upstream's request.
//! - [`response`]: the same two directions for whole responses.
//! - [`decode`]: an Anthropic upstream's SSE events → pivot chunks.
//! - [`encode`]: pivot chunks → an Anthropic client's SSE frames.
//!
//! The vocabulary both directions share (stop reasons, thinking budgets,
//! media sources) lives here and in [`blocks`].

mod blocks;
pub mod decode;
pub mod encode;
pub mod request;
pub mod response;

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod stream_tests;

pub use decode::StreamDecoder;
pub use encode::StreamEncoder;
pub use request::{request_from_pivot, request_to_pivot};
pub use response::{response_from_pivot, response_to_pivot};

use crate::api::anthropic::StopReason;
use crate::translate::finish_reason;

/// An Anthropic stop reason in OpenAI's vocabulary. `pause_turn` (a server
/// tool paused a long turn) has no counterpart: the turn ended, so "stop".
pub fn finish_reason_for(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::PauseTurn
        | StopReason::Unknown => finish_reason::STOP,
        StopReason::MaxTokens => finish_reason::LENGTH,
        StopReason::ToolUse => finish_reason::TOOL_CALLS,
        StopReason::Refusal => finish_reason::CONTENT_FILTER,
    }
}

/// An OpenAI finish reason in Anthropic's vocabulary; anything unknown
/// (including the legacy "function_call") is read as the natural end.
pub fn stop_reason_for(finish: &str) -> StopReason {
    match finish {
        finish_reason::LENGTH => StopReason::MaxTokens,
        finish_reason::TOOL_CALLS | "function_call" => StopReason::ToolUse,
        finish_reason::CONTENT_FILTER => StopReason::Refusal,
        _ => StopReason::EndTurn,
    }
}

/// A thinking budget as an OpenAI `reasoning_effort`.
pub fn effort_for_budget(budget_tokens: u64) -> &'static str {
    match budget_tokens {
        0..=2048 => "low",
        2049..=8192 => "medium",
        _ => "high",
    }
}

/// An OpenAI `reasoning_effort` as a thinking budget; `None` for "none" (no
/// thinking) and for values OpenAI does not define. "minimal" gets the
/// smallest budget Anthropic accepts.
pub fn budget_for_effort(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" => Some(16384),
        _ => None,
    }
}
