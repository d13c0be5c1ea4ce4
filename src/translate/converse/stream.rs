//! `ConverseStream` events → pivot chunks, one decoder per stream.
//!
//! The Bedrock transport decodes the binary event-stream frames and hands
//! each one here as its `:event-type` (or `:exception-type`) and JSON body.
//! Converse numbers content blocks across text, reasoning and tool use,
//! while OpenAI numbers tool calls alone from 0: the decoder keeps that map.
//! `messageStop` carries the stop reason but `metadata`, which follows it,
//! carries the usage, so the final chunk waits for `metadata` (or `flush`).

use std::collections::HashMap;

use super::completion_id;
use super::response::{finish_reason_from, token_usage, usage_to_pivot};
use super::wire::{
    ContentBlockDeltaEvent, ContentBlockStartEvent, ConverseUsage, ExceptionPayload, StreamEvent,
    STREAM_EXCEPTIONS,
};
use crate::api::openai::{
    ChatChunk, ChunkChoice, Delta, FunctionCallDelta, Role, ToolCallDelta, Usage,
};
use crate::stream::usage::TokenUsage;
use crate::translate::{unix_now, PivotEvent};

/// Per-stream translation state.
#[derive(Debug)]
pub struct StreamDecoder {
    id: String,
    created: u64,
    model: String,
    /// OpenAI tool-call index for each Converse `contentBlockIndex`.
    tool_indices: HashMap<u32, u32>,
    /// `messageStop`'s reason, held until the final chunk.
    finish_reason: Option<&'static str>,
    usage: Option<ConverseUsage>,
    stopped: bool,
    metadata_seen: bool,
    /// The final chunk went out, or the stream failed: nothing more to flush.
    closed: bool,
}

impl StreamDecoder {
    pub fn new(client_model: &str) -> Self {
        StreamDecoder {
            id: completion_id(),
            created: unix_now(),
            model: client_model.to_owned(),
            tool_indices: HashMap::new(),
            finish_reason: None,
            usage: None,
            stopped: false,
            metadata_seen: false,
            closed: false,
        }
    }

    /// Translates one event frame: `event_type` is its `:event-type` header,
    /// `payload` its JSON body.
    pub fn event(&mut self, event_type: &str, payload: &[u8]) -> Vec<PivotEvent> {
        if STREAM_EXCEPTIONS.contains(&event_type) {
            return self.exception(event_type, payload);
        }
        let event = match StreamEvent::parse(event_type, payload) {
            Ok(event) => event,
            Err(err) => {
                self.closed = true;
                return vec![PivotEvent::Error {
                    message: format!("Bedrock sent an unreadable {event_type} event: {err}"),
                }];
            }
        };
        match event {
            StreamEvent::MessageStart(_) => vec![self.chunk(
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
                None,
            )],
            StreamEvent::ContentBlockStart(start) => self.block_start(start),
            StreamEvent::ContentBlockDelta(delta) => self.block_delta(delta),
            StreamEvent::MessageStop(stop) => {
                self.stopped = true;
                self.finish_reason = Some(finish_reason_from(stop.stop_reason));
                Vec::new()
            }
            StreamEvent::Metadata(metadata) => {
                self.metadata_seen = true;
                self.usage = metadata.usage.or(self.usage);
                self.final_chunk()
            }
            StreamEvent::ContentBlockStop(_) | StreamEvent::Unknown => Vec::new(),
        }
    }

    /// Translates an exception frame (`:exception-type` header and its body)
    /// into an error event reading "<type>: <message>".
    pub fn exception(&mut self, exception_type: &str, payload: &[u8]) -> Vec<PivotEvent> {
        self.closed = true;
        let message = serde_json::from_slice::<ExceptionPayload>(payload)
            .ok()
            .and_then(|body| body.message)
            .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned());
        vec![PivotEvent::Error {
            message: format!("{exception_type}: {message}"),
        }]
    }

    /// The usage `metadata` reported, once it has arrived.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(token_usage)
    }

    /// True once `messageStop` or `metadata` was seen.
    pub fn finished(&self) -> bool {
        self.stopped || self.metadata_seen
    }

    /// At the end of the upstream stream: the final chunk if `messageStop`
    /// came but `metadata` did not.
    pub fn flush(&mut self) -> Vec<PivotEvent> {
        if self.stopped {
            self.final_chunk()
        } else {
            Vec::new()
        }
    }

    fn block_start(&mut self, start: ContentBlockStartEvent) -> Vec<PivotEvent> {
        let Some(tool) = start.start.tool_use else {
            return Vec::new();
        };
        let index = self.tool_index(start.content_block_index);
        vec![self.tool_chunk(ToolCallDelta {
            index,
            id: Some(tool.tool_use_id),
            kind: Some("function".into()),
            function: Some(FunctionCallDelta {
                name: Some(tool.name),
                arguments: Some(String::new()),
            }),
        })]
    }

    fn block_delta(&mut self, event: ContentBlockDeltaEvent) -> Vec<PivotEvent> {
        let delta = event.delta;
        let mut events = Vec::new();
        if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
            let delta = Delta {
                content: Some(text),
                ..Delta::default()
            };
            events.push(self.chunk(delta, None, None));
        }
        if let Some(tool_use) = delta.tool_use.filter(|t| !t.input.is_empty()) {
            let index = self.tool_index(event.content_block_index);
            events.push(self.tool_chunk(ToolCallDelta {
                index,
                id: None,
                kind: None,
                function: Some(FunctionCallDelta {
                    name: None,
                    arguments: Some(tool_use.input),
                }),
            }));
        }
        // Signatures and redacted reasoning have no pivot field: dropped.
        let reasoning = delta.reasoning_content.and_then(|r| r.text);
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            let delta = Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            };
            events.push(self.chunk(delta, None, None));
        }
        events
    }

    /// The OpenAI index of a tool block, assigned in order of first sight.
    fn tool_index(&mut self, block_index: u32) -> u32 {
        let next = u32::try_from(self.tool_indices.len()).unwrap_or(u32::MAX);
        *self.tool_indices.entry(block_index).or_insert(next)
    }

    fn final_chunk(&mut self) -> Vec<PivotEvent> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let usage = self.usage.as_ref().map(usage_to_pivot);
        let finish = self.finish_reason;
        vec![self.chunk(Delta::default(), finish, usage)]
    }

    fn tool_chunk(&self, call: ToolCallDelta) -> PivotEvent {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        };
        self.chunk(delta, None, None)
    }

    fn chunk(&self, delta: Delta, finish: Option<&str>, usage: Option<Usage>) -> PivotEvent {
        PivotEvent::Chunk(ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }],
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(events: Vec<PivotEvent>) -> Vec<ChatChunk> {
        events
            .into_iter()
            .map(|event| match event {
                PivotEvent::Chunk(chunk) => chunk,
                other => panic!("expected a chunk, got {other:?}"),
            })
            .collect()
    }

    fn feed(decoder: &mut StreamDecoder, events: &[(&str, &str)]) -> Vec<ChatChunk> {
        events
            .iter()
            .flat_map(|(kind, payload)| chunks(decoder.event(kind, payload.as_bytes())))
            .collect()
    }

    /// A recorded-shape stream: text, then two tool uses (payloads carry
    /// Bedrock's `p` padding field).
    const TEXT_THEN_TWO_TOOLS: &[(&str, &str)] = &[
        ("messageStart", r#"{"p":"abcdefgh","role":"assistant"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Let me check "},"p":"abc"}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"both."},"p":"abcdef"}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0,"p":"ab"}"#),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":1,"p":"a","start":{"toolUse":{"name":"get_weather","toolUseId":"tooluse_A"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}},"p":"ab"}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}},"p":"ab"}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":1,"p":"abc"}"#),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":2,"start":{"toolUse":{"name":"get_time","toolUseId":"tooluse_B"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{}"}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":2}"#),
        ("messageStop", r#"{"p":"abcd","stopReason":"tool_use"}"#),
        (
            "metadata",
            r#"{"metrics":{"latencyMs":1432},"p":"ab","usage":{"inputTokens":412,"outputTokens":96,"totalTokens":1508,"cacheReadInputTokens":1000,"cacheWriteInputTokens":0}}"#,
        ),
    ];

    #[test]
    fn text_then_two_tool_uses() {
        let mut decoder = StreamDecoder::new("claude-on-bedrock");
        assert!(!decoder.finished());
        let out = feed(&mut decoder, TEXT_THEN_TWO_TOOLS);
        assert_eq!(out.len(), 9);
        assert!(out
            .iter()
            .all(|c| c.id == out[0].id && c.model == "claude-on-bedrock"));
        assert_eq!(out[0].choices[0].delta.role, Some(Role::Assistant));
        let text: String = out
            .iter()
            .filter_map(|c| c.choices[0].delta.content.clone())
            .collect();
        assert_eq!(text, "Let me check both.");

        let calls: Vec<&ToolCallDelta> = out
            .iter()
            .filter_map(|c| c.choices[0].delta.tool_calls.as_ref())
            .flatten()
            .collect();
        assert_eq!(calls.len(), 5);
        assert_eq!(calls[0].index, 0);
        assert_eq!(calls[0].id.as_deref(), Some("tooluse_A"));
        assert_eq!(calls[0].kind.as_deref(), Some("function"));
        let name = |c: &ToolCallDelta| c.function.as_ref().and_then(|f| f.name.clone());
        let args = |c: &ToolCallDelta| c.function.as_ref().and_then(|f| f.arguments.clone());
        assert_eq!(name(calls[0]).as_deref(), Some("get_weather"));
        assert_eq!((calls[1].index, calls[1].id.clone()), (0, None));
        assert_eq!(
            format!("{}{}", args(calls[1]).unwrap(), args(calls[2]).unwrap()),
            r#"{"city":"Paris"}"#
        );
        assert_eq!(calls[3].index, 1);
        assert_eq!(calls[3].id.as_deref(), Some("tooluse_B"));
        assert_eq!(name(calls[3]).as_deref(), Some("get_time"));
        assert_eq!((calls[4].index, args(calls[4]).as_deref()), (1, Some("{}")));

        let last = out.last().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(last.choices[0].delta, Delta::default());
        let usage = last.usage.as_ref().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (1412, 96));
        assert_eq!(usage.cached_tokens(), 1000);
        assert!(out[..out.len() - 1]
            .iter()
            .all(|c| c.usage.is_none() && c.choices[0].finish_reason.is_none()));

        assert!(decoder.finished());
        assert_eq!(
            decoder.usage(),
            Some(TokenUsage {
                prompt_tokens: 1412,
                completion_tokens: 96,
                cached_tokens: 1000
            })
        );
        assert!(decoder.flush().is_empty());
    }

    #[test]
    fn reasoning_deltas_and_flush_without_metadata() {
        let mut decoder = StreamDecoder::new("m");
        let out = feed(
            &mut decoder,
            &[
                ("messageStart", r#"{"role":"assistant"}"#),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Think."}}}"#,
                ),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"EqQB"}}}"#,
                ),
                ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":1,"delta":{"text":"Done"}}"#,
                ),
                ("messageStop", r#"{"stopReason":"max_tokens"}"#),
                ("somethingNew", r#"{"x":1}"#),
            ],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1].choices[0].delta.reasoning_content.as_deref(),
            Some("Think.")
        );
        assert_eq!(out[2].choices[0].delta.content.as_deref(), Some("Done"));
        assert!(decoder.finished());
        assert_eq!(decoder.usage(), None);
        let last = chunks(decoder.flush());
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(last[0].usage, None);
        assert!(decoder.flush().is_empty());
    }

    #[test]
    fn stop_sequence_finishes_with_stop() {
        let mut decoder = StreamDecoder::new("m");
        let out = feed(
            &mut decoder,
            &[
                ("messageStart", r#"{"role":"assistant"}"#),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"text":"1, 2, 3"}}"#,
                ),
                ("messageStop", r#"{"stopReason":"stop_sequence"}"#),
                (
                    "metadata",
                    r#"{"usage":{"inputTokens":9,"outputTokens":5,"totalTokens":14},"metrics":{"latencyMs":80}}"#,
                ),
            ],
        );
        let last = out.last().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(last.usage.as_ref().map(|u| u.total_tokens), Some(14));
    }

    #[test]
    fn exception_mid_stream() {
        let mut decoder = StreamDecoder::new("m");
        let out = feed(
            &mut decoder,
            &[
                ("messageStart", r#"{"role":"assistant"}"#),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"text":"Hel"}}"#,
                ),
            ],
        );
        assert_eq!(out.len(), 2);
        let events = decoder.exception(
            "modelStreamErrorException",
            br#"{"message":"Model stream failed","originalStatusCode":500}"#,
        );
        assert_eq!(
            events,
            vec![PivotEvent::Error {
                message: "modelStreamErrorException: Model stream failed".into()
            }]
        );
        // The same exception arriving through `event` is recognised too.
        let events = decoder.event("throttlingException", br#"{"Message":"Too many tokens"}"#);
        assert_eq!(
            events,
            vec![PivotEvent::Error {
                message: "throttlingException: Too many tokens".into()
            }]
        );
        assert!(!decoder.finished());
        assert!(decoder.flush().is_empty());
    }

    #[test]
    fn unreadable_payload_is_an_error() {
        let mut decoder = StreamDecoder::new("m");
        let events = decoder.event("contentBlockDelta", b"{not json");
        assert!(matches!(&events[..], [PivotEvent::Error { message }]
            if message.starts_with("Bedrock sent an unreadable contentBlockDelta event")));
    }
}
