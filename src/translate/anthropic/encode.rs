//! Pivot chunks (from an OpenAI-format upstream) → an Anthropic client's SSE
//! frames.
//!
//! A state machine: OpenAI streams reasoning, text and tool-call fragments
//! as loose deltas; Anthropic wants them as content blocks, each opened,
//! filled and closed in turn, numbered in order. One block is open at a
//! time; a delta of another kind (or another tool call) closes it and opens
//! the next.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::json;

use super::response::anthropic_message_id;
use super::stop_reason_for;
use crate::api::anthropic::{
    self as anth, BlockDelta, ContentBlock, DeltaUsage, ErrorDetail, MessageDeltaBody,
    MessagesResponse, StopReason, StreamEvent, ThinkingBlock, ToolUseBlock,
};
use crate::api::openai::{ChatChunk, ToolCallDelta, Usage};
use crate::stream::sse::named_frame;

/// What the open content block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking,
    Text,
    /// A tool call, by its OpenAI tool index.
    Tool(u32),
}

#[derive(Debug)]
pub struct StreamEncoder {
    client_model: String,
    message_id: String,
    started: bool,
    finished: bool,
    /// The Anthropic index the next block gets.
    next_block: u32,
    open: Option<(u32, BlockKind)>,
    /// OpenAI tool index → the id of the tool call started under it.
    tool_ids: HashMap<u32, String>,
    stop_reason: Option<StopReason>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    /// `message_id` is used as given when it looks like an Anthropic id, and
    /// derived from it (`msg_…`) otherwise.
    pub fn new(client_model: &str, message_id: String) -> Self {
        StreamEncoder {
            client_model: client_model.to_owned(),
            message_id: anthropic_message_id(&message_id),
            started: false,
            finished: false,
            next_block: 0,
            open: None,
            tool_ids: HashMap::new(),
            stop_reason: None,
            usage: None,
        }
    }

    /// The frames one upstream chunk becomes (possibly none).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        if !self.started {
            self.start(&mut out);
        }
        // Anthropic has no `n`: only the first choice is relayed.
        for choice in chunk.choices.iter().filter(|choice| choice.index == 0) {
            let delta = &choice.delta;
            if let Some(thinking) = delta.reasoning_content.as_ref().filter(|t| !t.is_empty()) {
                self.open_block(BlockKind::Thinking, &mut out);
                self.block_delta(
                    BlockDelta::ThinkingDelta {
                        thinking: thinking.clone(),
                    },
                    &mut out,
                );
            }
            for text in [&delta.content, &delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    self.open_block(BlockKind::Text, &mut out);
                    self.block_delta(BlockDelta::TextDelta { text: text.clone() }, &mut out);
                }
            }
            for call in delta.tool_calls.iter().flatten() {
                self.tool_delta(call, &mut out);
            }
            if let Some(finish) = &choice.finish_reason {
                self.stop_reason = Some(stop_reason_for(finish));
            }
        }
        out
    }

    /// The end of the stream: closes the open block, then `message_delta`
    /// (stop reason, usage) and `message_stop`. Only the first call emits.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if !self.started {
            self.start(&mut out);
        }
        self.close_block(&mut out);
        let mut stop_reason = self.stop_reason.unwrap_or(StopReason::EndTurn);
        if stop_reason == StopReason::EndTurn && !self.tool_ids.is_empty() {
            // Some upstreams say "stop" after tool calls; Anthropic clients
            // run tools only on `tool_use`.
            stop_reason = StopReason::ToolUse;
        }
        let (input, output, cached) = self.usage.as_ref().map_or((0, 0, 0), |usage| {
            let cached = usage.cached_tokens();
            (
                usage.prompt_tokens.saturating_sub(cached),
                usage.completion_tokens,
                cached,
            )
        });
        out.push(frame(&StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason),
                stop_sequence: None,
            },
            usage: Some(DeltaUsage {
                input_tokens: Some(input),
                output_tokens: output,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: (cached > 0).then_some(cached),
            }),
        }));
        out.push(frame(&StreamEvent::MessageStop));
        self.finished = true;
        out
    }

    /// An `error` event ending the stream (nothing follows it).
    pub fn error(&mut self, message: &str) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        vec![frame(&StreamEvent::Error {
            error: ErrorDetail {
                kind: "api_error".into(),
                message: message.to_owned(),
            },
        })]
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        self.started = true;
        let (input, cached) = self.usage.as_ref().map_or((0, 0), |usage| {
            let cached = usage.cached_tokens();
            (usage.prompt_tokens.saturating_sub(cached), cached)
        });
        let message = MessagesResponse {
            id: self.message_id.clone(),
            kind: "message".into(),
            role: anth::Role::Assistant,
            model: self.client_model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: anth::Usage {
                input_tokens: input,
                output_tokens: 0,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: (cached > 0).then_some(cached),
            },
        };
        out.push(frame(&StreamEvent::MessageStart { message }));
        out.push(frame(&StreamEvent::Ping));
    }

    fn tool_delta(&mut self, call: &ToolCallDelta, out: &mut Vec<Bytes>) {
        let new_id = call.id.as_ref().filter(|id| !id.is_empty());
        let is_new = match self.tool_ids.get(&call.index) {
            None => true,
            // Some upstreams reuse index 0 for every call; a new id means a new call.
            Some(known) => new_id.is_some_and(|id| id != known),
        };
        let function = call.function.as_ref();
        if is_new {
            let id = new_id.cloned().unwrap_or_else(random_tool_id);
            let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
            self.close_block(out);
            let index = self.next_block;
            self.next_block += 1;
            self.open = Some((index, BlockKind::Tool(call.index)));
            self.tool_ids.insert(call.index, id.clone());
            out.push(frame(&StreamEvent::ContentBlockStart {
                index,
                content_block: ContentBlock::ToolUse(ToolUseBlock {
                    id,
                    name,
                    input: json!({}),
                    cache_control: None,
                }),
            }));
        } else if self.open.map(|(_, kind)| kind) != Some(BlockKind::Tool(call.index)) {
            // Its block is closed and Anthropic blocks cannot reopen.
            log::warn!(
                "dropping a late argument fragment of tool call {}",
                call.index
            );
            return;
        }
        if let Some(arguments) = function
            .and_then(|f| f.arguments.as_ref())
            .filter(|a| !a.is_empty())
        {
            self.block_delta(
                BlockDelta::InputJsonDelta {
                    partial_json: arguments.clone(),
                },
                out,
            );
        }
    }

    /// Makes sure a block of `kind` is open, closing another one first.
    fn open_block(&mut self, kind: BlockKind, out: &mut Vec<Bytes>) {
        if self.open.map(|(_, open)| open) == Some(kind) {
            return;
        }
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        let content_block = match kind {
            BlockKind::Thinking => ContentBlock::Thinking(ThinkingBlock {
                thinking: String::new(),
                signature: String::new(),
            }),
            BlockKind::Text | BlockKind::Tool(_) => ContentBlock::text(""),
        };
        out.push(frame(&StreamEvent::ContentBlockStart {
            index,
            content_block,
        }));
    }

    fn block_delta(&self, delta: BlockDelta, out: &mut Vec<Bytes>) {
        if let Some((index, _)) = self.open {
            out.push(frame(&StreamEvent::ContentBlockDelta { index, delta }));
        }
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if let Some((index, _)) = self.open.take() {
            out.push(frame(&StreamEvent::ContentBlockStop { index }));
        }
    }
}

fn frame(event: &StreamEvent) -> Bytes {
    // Why no error path: these types always serialize (string keys only).
    let data = serde_json::to_string(event).unwrap_or_default();
    named_frame(event.name(), &data)
}

fn random_tool_id() -> String {
    let suffix: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(24)
        .collect();
    format!("toolu_{suffix}")
}
