//! An Anthropic upstream's stream → pivot chunks, for an OpenAI client.
//!
//! A state machine over [`StreamEvent`]s. Anthropic numbers content blocks
//! (text, thinking and tool use share one sequence); OpenAI numbers only tool
//! calls, so each tool_use block gets the next OpenAI tool index when it
//! starts and keeps it for its argument fragments.

use std::collections::HashMap;

use serde::Deserialize;

use super::finish_reason_for;
use crate::api::anthropic::{BlockDelta, ContentBlock, DeltaUsage, StreamEvent, ToolUseBlock};
use crate::api::openai::{
    ChatChunk, ChunkChoice, Delta, FunctionCallDelta, Role, ToolCallDelta, Usage,
};
use crate::stream::usage::TokenUsage;
use crate::translate::{finish_reason, unix_now, PivotEvent};

/// Event types this decoder knows; a known event that does not parse is an
/// upstream error, an unknown one is skipped (Anthropic may add events).
const KNOWN_EVENTS: [&str; 8] = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

#[derive(Deserialize)]
struct EventType {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug)]
pub struct StreamDecoder {
    client_model: String,
    id: String,
    created: u64,
    /// Anthropic block index → OpenAI tool-call index.
    tool_indices: HashMap<u32, u32>,
    next_tool_index: u32,
    /// Uncached input, cache reads, cache writes, output: Anthropic's split.
    input_tokens: Option<u64>,
    cache_read: u64,
    cache_creation: u64,
    output_tokens: u64,
    finished: bool,
}

impl StreamDecoder {
    pub fn new(client_model: &str) -> Self {
        StreamDecoder {
            client_model: client_model.to_owned(),
            id: String::new(),
            created: unix_now(),
            tool_indices: HashMap::new(),
            next_tool_index: 0,
            input_tokens: None,
            cache_read: 0,
            cache_creation: 0,
            output_tokens: 0,
            finished: false,
        }
    }

    /// One upstream SSE event (`event` is its `event:` name, unused: the data
    /// carries the same `type`).
    pub fn event(&mut self, _event: Option<&str>, data: &str) -> Vec<PivotEvent> {
        let event = match serde_json::from_str::<StreamEvent>(data) {
            Ok(event) => event,
            Err(error) => return self.unreadable(data, &error),
        };
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                let usage = message.usage;
                self.input_tokens = Some(usage.input_tokens);
                self.cache_read = usage.cache_read_input_tokens.unwrap_or(0);
                self.cache_creation = usage.cache_creation_input_tokens.unwrap_or(0);
                self.output_tokens = usage.output_tokens;
                self.delta_chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                })
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.update_usage(usage);
                }
                let finish = delta
                    .stop_reason
                    .map_or(finish_reason::STOP, finish_reason_for);
                let mut chunk = self.chunk(Delta::default(), Some(finish.to_owned()));
                let usage = self.token_usage();
                chunk.usage = Some(Usage::new(
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.cached_tokens,
                ));
                vec![PivotEvent::Chunk(chunk)]
            }
            StreamEvent::MessageStop => {
                self.finished = true;
                Vec::new()
            }
            StreamEvent::Error { error } => vec![PivotEvent::Error {
                message: format!("{}: {}", error.kind, error.message),
            }],
            StreamEvent::Ping | StreamEvent::ContentBlockStop { .. } => Vec::new(),
        }
    }

    /// Usage so far; `None` before `message_start`.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.input_tokens.map(|_| self.token_usage())
    }

    /// True once `message_stop` was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn unreadable(&self, data: &str, error: &serde_json::Error) -> Vec<PivotEvent> {
        let kind = serde_json::from_str::<EventType>(data).map(|t| t.kind);
        match kind {
            Ok(kind) if !KNOWN_EVENTS.contains(&kind.as_str()) => {
                log::debug!("skipping unknown Anthropic stream event `{kind}`");
                Vec::new()
            }
            _ => vec![PivotEvent::Error {
                message: format!("the upstream sent an unreadable stream event: {error}"),
            }],
        }
    }

    fn block_start(&mut self, index: u32, block: ContentBlock) -> Vec<PivotEvent> {
        match block {
            ContentBlock::ToolUse(ToolUseBlock {
                id, name, input, ..
            }) => {
                let tool_index = self.next_tool_index;
                self.next_tool_index += 1;
                self.tool_indices.insert(index, tool_index);
                // Streams start tools with `{}` and send the input as fragments.
                let empty = input.as_object().is_some_and(|o| o.is_empty()) || input.is_null();
                let arguments = if empty {
                    String::new()
                } else {
                    input.to_string()
                };
                self.tool_chunk(ToolCallDelta {
                    index: tool_index,
                    id: Some(id),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(arguments),
                    }),
                })
            }
            ContentBlock::Text(text) if !text.text.is_empty() => self.delta_chunk(Delta {
                content: Some(text.text),
                ..Delta::default()
            }),
            ContentBlock::Thinking(thinking) if !thinking.thinking.is_empty() => {
                self.delta_chunk(Delta {
                    reasoning_content: Some(thinking.thinking),
                    ..Delta::default()
                })
            }
            _ => Vec::new(),
        }
    }

    fn block_delta(&mut self, index: u32, delta: BlockDelta) -> Vec<PivotEvent> {
        match delta {
            BlockDelta::TextDelta { text } => self.delta_chunk(Delta {
                content: Some(text),
                ..Delta::default()
            }),
            BlockDelta::ThinkingDelta { thinking } => self.delta_chunk(Delta {
                reasoning_content: Some(thinking),
                ..Delta::default()
            }),
            BlockDelta::InputJsonDelta { partial_json } => {
                let Some(&tool_index) = self.tool_indices.get(&index) else {
                    log::debug!("input_json_delta for block {index}, which is not a tool_use");
                    return Vec::new();
                };
                self.tool_chunk(ToolCallDelta {
                    index: tool_index,
                    id: None,
                    kind: None,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(partial_json),
                    }),
                })
            }
            BlockDelta::SignatureDelta { .. } | BlockDelta::CitationsDelta { .. } => Vec::new(),
        }
    }

    fn update_usage(&mut self, usage: DeltaUsage) {
        self.output_tokens = usage.output_tokens;
        if let Some(input) = usage.input_tokens {
            self.input_tokens = Some(input);
        }
        if let Some(read) = usage.cache_read_input_tokens {
            self.cache_read = read;
        }
        if let Some(creation) = usage.cache_creation_input_tokens {
            self.cache_creation = creation;
        }
    }

    fn token_usage(&self) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            completion_tokens: self.output_tokens,
            cached_tokens: self.cache_read,
        }
    }

    fn tool_chunk(&self, call: ToolCallDelta) -> Vec<PivotEvent> {
        self.delta_chunk(Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        })
    }

    fn delta_chunk(&self, delta: Delta) -> Vec<PivotEvent> {
        vec![PivotEvent::Chunk(self.chunk(delta, None))]
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.client_model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
        }
    }
}
