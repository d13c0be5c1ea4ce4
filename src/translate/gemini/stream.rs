//! Gemini `:streamGenerateContent?alt=sse` → pivot stream events.
//!
//! Each SSE `data:` is one whole `GenerateContentResponse` carrying the next
//! slice of each candidate. Gemini sends function calls whole, so each becomes
//! one complete tool-call delta (id, name and all arguments). The decoder keeps
//! per-candidate state (role sent, calls so far, finished) keyed by candidate
//! index, one chunk id and `created` for the whole stream, and the latest
//! `usageMetadata` (each report is cumulative).

use std::collections::BTreeMap;

use super::response::{
    arguments_text, candidate_index, chat_id, map_finish_reason, token_usage, tool_call_id, usage,
};
use super::wire::{Candidate, ErrorBody, ErrorDetail, GenerateContentResponse, UsageMetadata};
use crate::api::openai::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, Role, ToolCallDelta};
use crate::stream::usage::TokenUsage;
use crate::translate::{finish_reason, unix_now, PivotEvent};

pub struct StreamDecoder {
    stamp: Stamp,
    candidates: BTreeMap<u32, CandidateState>,
    usage: Option<UsageMetadata>,
    finished: bool,
}

/// What every chunk of the stream repeats.
struct Stamp {
    /// Chosen at the first event, from its `responseId` when there is one.
    id: Option<String>,
    created: u64,
    model: String,
}

#[derive(Default)]
struct CandidateState {
    role_sent: bool,
    /// Tool calls emitted so far: the next call's OpenAI `index`.
    tool_calls: u32,
    finished: bool,
}

impl StreamDecoder {
    pub fn new(client_model: &str) -> Self {
        StreamDecoder {
            stamp: Stamp {
                id: None,
                created: unix_now(),
                model: client_model.into(),
            },
            candidates: BTreeMap::new(),
            usage: None,
            finished: false,
        }
    }

    /// Translates one `data:` payload.
    pub fn data(&mut self, data: &str) -> Vec<PivotEvent> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Vec::new();
        }
        // Why the cheap check first: most events are not errors, and an error
        // body would otherwise read as an empty response.
        if data.contains("\"error\"") {
            if let Ok(body) = serde_json::from_str::<ErrorBody>(data) {
                return vec![PivotEvent::Error {
                    message: error_text(&body.error),
                }];
            }
        }
        let resp: GenerateContentResponse = match serde_json::from_str(data) {
            Ok(resp) => resp,
            Err(e) => {
                return vec![PivotEvent::Error {
                    message: format!(
                        "the upstream sent a stream event that could not be read: {e}"
                    ),
                }]
            }
        };
        if self.stamp.id.is_none() {
            self.stamp.id = Some(chat_id(resp.response_id.as_deref()));
        }
        if resp.usage_metadata.is_some() {
            self.usage = resp.usage_metadata;
        }
        let blocked = resp
            .prompt_feedback
            .as_ref()
            .is_some_and(|feedback| feedback.block_reason.is_some());
        let mut events = Vec::new();
        let mut finished_now = false;
        if resp.candidates.is_empty() && blocked {
            finished_now = self.blocked_prompt(&mut events);
        }
        for (position, candidate) in resp.candidates.into_iter().enumerate() {
            finished_now |= self.candidate(candidate, position, &mut events);
        }
        let all_finished = self.candidates.values().all(|state| state.finished);
        if finished_now && all_finished {
            self.attach_usage(&mut events);
        }
        events
    }

    /// The latest usage Gemini reported, thoughts counted as completion.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(token_usage)
    }

    /// True once a `finishReason` (or a blocked prompt) was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Emits one candidate's slice; returns whether it finished here.
    fn candidate(
        &mut self,
        candidate: Candidate,
        position: usize,
        events: &mut Vec<PivotEvent>,
    ) -> bool {
        let index = candidate_index(&candidate, position);
        let stamp = &self.stamp;
        let state = self.candidates.entry(index).or_default();
        if state.finished {
            return false;
        }
        if !state.role_sent {
            state.role_sent = true;
            events.push(stamp.chunk(index, role_delta(), None));
        }
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            let delta = if let Some(call) = &part.function_call {
                let tool_index = state.tool_calls;
                state.tool_calls += 1;
                Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: tool_index,
                        id: Some(tool_call_id(call, part.thought_signature.as_deref())),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(call.name.clone()),
                            arguments: Some(arguments_text(call)),
                        }),
                    }]),
                    ..Delta::default()
                }
            } else {
                match part.text {
                    Some(text) if !text.is_empty() && part.thought == Some(true) => Delta {
                        reasoning_content: Some(text),
                        ..Delta::default()
                    },
                    Some(text) if !text.is_empty() => Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    _ => continue,
                }
            };
            events.push(stamp.chunk(index, delta, None));
        }
        let Some(reason) = candidate.finish_reason else {
            return false;
        };
        state.finished = true;
        self.finished = true;
        let finish = map_finish_reason(&reason, state.tool_calls > 0);
        events.push(stamp.chunk(index, Delta::default(), Some(finish)));
        true
    }

    /// A prompt blocked before any candidate: one empty, filtered choice.
    /// Returns whether it finished here.
    fn blocked_prompt(&mut self, events: &mut Vec<PivotEvent>) -> bool {
        let state = self.candidates.entry(0).or_default();
        if state.finished {
            return false;
        }
        if !state.role_sent {
            state.role_sent = true;
            events.push(self.stamp.chunk(0, role_delta(), None));
        }
        state.finished = true;
        self.finished = true;
        let finish = Some(finish_reason::CONTENT_FILTER);
        events.push(self.stamp.chunk(0, Delta::default(), finish));
        true
    }

    /// Puts the usage on the last finish chunk of the stream.
    fn attach_usage(&self, events: &mut [PivotEvent]) {
        let Some(meta) = &self.usage else {
            return;
        };
        let last_finish = events.iter_mut().rev().find_map(|event| match event {
            PivotEvent::Chunk(chunk) if chunk.choices.iter().any(|c| c.finish_reason.is_some()) => {
                Some(chunk)
            }
            _ => None,
        });
        if let Some(chunk) = last_finish {
            chunk.usage = Some(usage(meta));
        }
    }
}

impl Stamp {
    fn chunk(&self, index: u32, delta: Delta, finish: Option<&str>) -> PivotEvent {
        PivotEvent::Chunk(ChatChunk {
            id: self.id.clone().unwrap_or_default(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index,
                delta,
                finish_reason: finish.map(String::from),
                logprobs: None,
            }],
            usage: None,
        })
    }
}

fn role_delta() -> Delta {
    Delta {
        role: Some(Role::Assistant),
        ..Delta::default()
    }
}

fn error_text(error: &ErrorDetail) -> String {
    match &error.status {
        Some(status) if !status.is_empty() => format!("{status}: {}", error.message),
        _ => error.message.clone(),
    }
}
