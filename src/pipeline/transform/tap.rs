//! Same-format bodies: relayed as the upstream sent them, with a tap that
//! reads usage (and, for OpenAI streams, drops the usage chunk the gateway
//! asked for on the client's behalf).

use std::collections::VecDeque;

use bytes::Bytes;

use super::{error_event, BodyTransform};
use crate::api::Dialect;
use crate::stream::sse::{parse_event, SseFramer};
use crate::stream::usage::{self, AnthropicUsageTracker, OpenAiChunkInfo, TokenUsage};

/// Non-streamed bodies longer than this are relayed without reading usage.
const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

/// Untouched bytes (files, audio, upstream errors).
pub struct Passthrough;

impl BodyTransform for Passthrough {
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        out.push_back(chunk);
    }
    fn end(&mut self, _: &mut VecDeque<Bytes>) -> Result<(), String> {
        Ok(())
    }
    fn fail(&mut self, _: &str, _: &mut VecDeque<Bytes>) -> bool {
        false
    }
    fn usage(&self) -> Option<TokenUsage> {
        None
    }
}

/// A JSON body relayed as it streams in, with its chunks kept (shared, not
/// copied) to read usage at the end.
pub struct JsonTap {
    dialect: Dialect,
    captured: Vec<Bytes>,
    captured_len: usize,
    usage: Option<TokenUsage>,
}

impl JsonTap {
    pub fn new(dialect: Dialect) -> Self {
        JsonTap {
            dialect,
            captured: Vec::new(),
            captured_len: 0,
            usage: None,
        }
    }
}

impl BodyTransform for JsonTap {
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        if self.captured_len + chunk.len() <= CAPTURE_LIMIT {
            self.captured_len += chunk.len();
            self.captured.push(chunk.clone());
        }
        out.push_back(chunk);
    }
    fn end(&mut self, _: &mut VecDeque<Bytes>) -> Result<(), String> {
        let joined;
        let body: &[u8] = match self.captured.as_slice() {
            [one] => one,
            chunks => {
                joined = chunks.concat();
                &joined
            }
        };
        self.usage = match self.dialect {
            Dialect::OpenAi => usage::from_openai_body(body),
            Dialect::Anthropic => usage::from_anthropic_body(body),
        };
        self.captured.clear();
        Ok(())
    }
    fn fail(&mut self, _: &str, _: &mut VecDeque<Bytes>) -> bool {
        false
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
}

/// An SSE stream of the client's own dialect, relayed event by event.
pub struct SseTap {
    dialect: Dialect,
    /// OpenAI: drop the usage-only chunk the client did not ask for.
    drop_usage_chunk: bool,
    framer: SseFramer,
    anthropic: AnthropicUsageTracker,
    usage: Option<TokenUsage>,
    /// `[DONE]` / `message_stop` (or an error event) was seen.
    saw_end_marker: bool,
}

impl SseTap {
    pub fn new(dialect: Dialect, drop_usage_chunk: bool) -> Self {
        SseTap {
            dialect,
            drop_usage_chunk,
            framer: SseFramer::new(),
            anthropic: AnthropicUsageTracker::default(),
            usage: None,
            saw_end_marker: false,
        }
    }

    fn take_event(&mut self, raw: Bytes, out: &mut VecDeque<Bytes>) {
        let event = parse_event(&raw);
        match self.dialect {
            Dialect::OpenAi => match usage::inspect_openai_chunk(&event.data) {
                OpenAiChunkInfo::Chunk { usage, usage_only } => {
                    if usage.is_some() {
                        self.usage = usage;
                    }
                    if usage_only && self.drop_usage_chunk {
                        return;
                    }
                    // The upstream's own error chunk ends its stream (no
                    // `[DONE]` follows): the client already has the error.
                    if is_error_chunk(&event.data) {
                        self.saw_end_marker = true;
                    }
                }
                OpenAiChunkInfo::Done => self.saw_end_marker = true,
                OpenAiChunkInfo::NotJson => {}
            },
            Dialect::Anthropic => {
                self.anthropic.observe(event.event.as_deref(), &event.data);
                if event.event.as_deref() == Some("message_stop") || self.anthropic.saw_error() {
                    self.saw_end_marker = true;
                }
                self.usage = self.anthropic.usage();
            }
        }
        out.push_back(raw);
    }
}

/// `{"error": …}`: how OpenAI-format upstreams report a failure mid-stream.
fn is_error_chunk(data: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct ErrorChunk {
        error: Option<serde::de::IgnoredAny>,
    }
    data.contains("\"error\"")
        && serde_json::from_str::<ErrorChunk>(data).is_ok_and(|chunk| chunk.error.is_some())
}

impl BodyTransform for SseTap {
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        for event in self.framer.push(&chunk) {
            self.take_event(event, out);
        }
    }
    fn end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), String> {
        if let Some(rest) = self.framer.finish() {
            self.take_event(rest, out);
        }
        match self.saw_end_marker {
            true => Ok(()),
            false => Err("upstream stream ended before its final event".into()),
        }
    }
    fn fail(&mut self, error: &str, out: &mut VecDeque<Bytes>) -> bool {
        out.push_back(error_event(self.dialect, error));
        true
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
}
