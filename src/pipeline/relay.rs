//! The reply's way back: the upstream body is relayed chunk by chunk as it
//! arrives (never collected), through a tap that reads token usage on the
//! way, drops the usage-only chunk the gateway asked for on the client's
//! behalf, turns an upstream failure mid-stream into an error event in the
//! client's dialect, and finishes the request when the body ends or is
//! dropped.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{LocalBoxStream, Stream, StreamExt};

use super::finish::{Ending, Finisher};
use crate::api::Dialect;
use crate::stream::sse::{data_frame, named_frame, parse_event, SseFramer};
use crate::stream::usage::{self, AnthropicUsageTracker, OpenAiChunkInfo, TokenUsage};

/// A body on its way to the client; errors are already messages.
pub type BodyStream = LocalBoxStream<'static, Result<Bytes, String>>;

/// Non-streamed bodies longer than this are relayed without reading usage.
const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

/// What the relay reads from the body it passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// Pass through untouched (files, audio, errors).
    None,
    /// An OpenAI SSE stream; `drop_usage_chunk` when the client did not ask
    /// for the usage chunk the gateway requested.
    OpenAiStream {
        drop_usage_chunk: bool,
    },
    AnthropicStream,
    OpenAiJson,
    AnthropicJson,
}

struct Relay {
    upstream: BodyStream,
    tap: Tap,
    dialect: Dialect,
    status: u16,
    idle: Duration,
    framer: SseFramer,
    anthropic: AnthropicUsageTracker,
    captured: Vec<u8>,
    usage: Option<TokenUsage>,
    /// The stream's own end marker (`[DONE]`, `message_stop`) was seen: a
    /// stream that ends without it was cut off.
    saw_end_marker: bool,
    out: VecDeque<Bytes>,
    ending: Option<Ending>,
    finisher: Option<Finisher>,
}

/// Relays `upstream` (whose first chunk, if already read to peek, is `first`).
pub fn relay(
    first: Option<Bytes>,
    upstream: BodyStream,
    tap: Tap,
    dialect: Dialect,
    status: u16,
    idle: Duration,
    mut finisher: Finisher,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    finisher.mark_first_byte();
    let mut relay = Relay {
        upstream,
        tap,
        dialect,
        status,
        idle,
        framer: SseFramer::new(),
        anthropic: AnthropicUsageTracker::default(),
        captured: Vec::new(),
        usage: None,
        saw_end_marker: false,
        out: VecDeque::new(),
        ending: None,
        finisher: Some(finisher),
    };
    if let Some(first) = first {
        relay.take(first);
    }
    futures_util::stream::unfold(relay, |mut relay| async move {
        loop {
            if let Some(chunk) = relay.out.pop_front() {
                return Some((Ok(chunk), relay));
            }
            if let Some(ending) = relay.ending.take() {
                relay.finish(ending.clone());
                return match ending {
                    // A non-SSE body cannot carry an error event: cut the
                    // connection so the client sees the truncation.
                    Ending::UpstreamBroke { error, .. } if !relay.is_sse() => {
                        Some((Err(actix_web::error::ErrorBadGateway(error)), relay))
                    }
                    _ => None,
                };
            }
            relay.finisher.as_ref()?;
            match tokio::time::timeout(relay.idle, relay.upstream.next()).await {
                Ok(Some(Ok(chunk))) => relay.take(chunk),
                Ok(Some(Err(error))) => relay.fail(format!("upstream stream failed: {error}")),
                Ok(None) => relay.end(),
                Err(_) => relay.fail(format!(
                    "upstream sent nothing for {} s",
                    relay.idle.as_secs()
                )),
            }
        }
    })
}

impl Relay {
    fn is_sse(&self) -> bool {
        matches!(self.tap, Tap::OpenAiStream { .. } | Tap::AnthropicStream)
    }

    /// Takes one upstream chunk: passes it on, whole or event by event.
    fn take(&mut self, chunk: Bytes) {
        match self.tap {
            Tap::None => self.out.push_back(chunk),
            Tap::OpenAiJson | Tap::AnthropicJson => {
                if self.captured.len() + chunk.len() <= CAPTURE_LIMIT {
                    self.captured.extend_from_slice(&chunk);
                }
                self.out.push_back(chunk);
            }
            Tap::OpenAiStream { .. } | Tap::AnthropicStream => {
                for event in self.framer.push(&chunk) {
                    self.take_event(event);
                }
            }
        }
    }

    fn take_event(&mut self, raw: Bytes) {
        let event = parse_event(&raw);
        match self.tap {
            Tap::OpenAiStream { drop_usage_chunk } => {
                match usage::inspect_openai_chunk(&event.data) {
                    OpenAiChunkInfo::Chunk { usage, usage_only } => {
                        if usage.is_some() {
                            self.usage = usage;
                        }
                        if usage_only && drop_usage_chunk {
                            return;
                        }
                    }
                    OpenAiChunkInfo::Done => self.saw_end_marker = true,
                    OpenAiChunkInfo::NotJson => {}
                }
                self.out.push_back(raw);
            }
            _ => {
                self.anthropic.observe(event.event.as_deref(), &event.data);
                if event.event.as_deref() == Some("message_stop") || self.anthropic.saw_error() {
                    self.saw_end_marker = true;
                }
                self.out.push_back(raw);
            }
        }
    }

    /// The upstream body ended normally.
    fn end(&mut self) {
        if let Some(rest) = self.framer.finish() {
            self.take_event(rest);
        }
        if self.is_sse() && !self.saw_end_marker {
            self.fail("upstream stream ended before its final event".into());
            return;
        }
        match self.tap {
            Tap::OpenAiJson => self.usage = usage::from_openai_body(&self.captured),
            Tap::AnthropicJson => self.usage = usage::from_anthropic_body(&self.captured),
            Tap::AnthropicStream => self.usage = self.anthropic.usage(),
            _ => {}
        }
        self.ending = Some(Ending::Delivered {
            status: self.status,
        });
    }

    /// The upstream failed mid-body: say so in the stream's own terms.
    fn fail(&mut self, error: String) {
        if let Tap::AnthropicStream = self.tap {
            self.usage = self.anthropic.usage();
        }
        if self.is_sse() {
            self.out.push_back(error_event(self.dialect, &error));
        }
        log::warn!("{error}");
        self.ending = Some(Ending::UpstreamBroke {
            status: self.status,
            error,
        });
    }

    fn finish(&mut self, ending: Ending) {
        if let Some(mut finisher) = self.finisher.take() {
            finisher.set_usage(self.usage);
            finisher.finish(ending);
        }
    }
}

/// The SSE event that tells a client its stream broke off.
pub fn error_event(dialect: Dialect, message: &str) -> Bytes {
    use crate::api::dialect::ErrorKind;
    let body = dialect.error_body(ErrorKind::Upstream, "stream_interrupted", message);
    match dialect {
        Dialect::OpenAi => data_frame(&body.to_string()),
        Dialect::Anthropic => named_frame("error", &body.to_string()),
    }
}
