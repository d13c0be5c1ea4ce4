//! Streams in another format than the client's: an upstream decoder turns
//! the upstream's frames into pivot events, a client encoder turns those into
//! the client's SSE frames. Both are per-stream state machines.

use std::collections::VecDeque;

use bytes::Bytes;

use super::BodyTransform;
use crate::api::Dialect;
use crate::providers::bedrock::event_stream::{EventMessage, EventStreamDecoder, MessageKind};
use crate::providers::bedrock::invoke;
use crate::stream::sse::{parse_event, SseFramer};
use crate::stream::usage::TokenUsage;
use crate::translate::{anthropic, converse, gemini, openai, PivotEvent};

/// The body format an upstream answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFormat {
    OpenAiChat,
    AnthropicMessages,
    Gemini,
    /// Bedrock Converse, in AWS event-stream frames when streamed.
    Converse,
    /// Anthropic Messages through Bedrock InvokeModel: event-stream frames
    /// whose payloads carry Anthropic events.
    BedrockAnthropic,
}

enum Decoder {
    OpenAi(SseFramer, openai::StreamDecoder),
    Anthropic(SseFramer, anthropic::StreamDecoder),
    Gemini(SseFramer, gemini::StreamDecoder),
    Converse(EventStreamDecoder, converse::StreamDecoder),
    BedrockAnthropic(EventStreamDecoder, anthropic::StreamDecoder),
}

impl Decoder {
    fn new(format: UpstreamFormat, client_model: &str) -> Self {
        match format {
            UpstreamFormat::OpenAiChat => {
                Decoder::OpenAi(SseFramer::new(), openai::StreamDecoder::default())
            }
            UpstreamFormat::AnthropicMessages => Decoder::Anthropic(
                SseFramer::new(),
                anthropic::StreamDecoder::new(client_model),
            ),
            UpstreamFormat::Gemini => {
                Decoder::Gemini(SseFramer::new(), gemini::StreamDecoder::new(client_model))
            }
            UpstreamFormat::Converse => Decoder::Converse(
                EventStreamDecoder::new(),
                converse::StreamDecoder::new(client_model),
            ),
            UpstreamFormat::BedrockAnthropic => Decoder::BedrockAnthropic(
                EventStreamDecoder::new(),
                anthropic::StreamDecoder::new(client_model),
            ),
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<PivotEvent>, String> {
        let mut events = Vec::new();
        match self {
            Decoder::OpenAi(framer, inner) => {
                for raw in framer.push(chunk) {
                    events.extend(inner.data(&parse_event(&raw).data));
                }
            }
            Decoder::Anthropic(framer, inner) => {
                for raw in framer.push(chunk) {
                    let event = parse_event(&raw);
                    events.extend(inner.event(event.event.as_deref(), &event.data));
                }
            }
            Decoder::Gemini(framer, inner) => {
                for raw in framer.push(chunk) {
                    events.extend(inner.data(&parse_event(&raw).data));
                }
            }
            Decoder::Converse(frames, inner) => {
                for message in frames.push(chunk).map_err(|e| e.to_string())? {
                    events.extend(converse_message(inner, &message));
                }
            }
            Decoder::BedrockAnthropic(frames, inner) => {
                for message in frames.push(chunk).map_err(|e| e.to_string())? {
                    events.extend(bedrock_anthropic_message(inner, &message));
                }
            }
        }
        Ok(events)
    }

    /// The upstream ended: drain what is buffered and check it was complete.
    fn end(&mut self) -> Result<Vec<PivotEvent>, String> {
        let mut events = Vec::new();
        let finished = match self {
            Decoder::OpenAi(framer, inner) => {
                if let Some(raw) = framer.finish() {
                    events.extend(inner.data(&parse_event(&raw).data));
                }
                inner.finished()
            }
            Decoder::Anthropic(framer, inner) => {
                if let Some(raw) = framer.finish() {
                    let event = parse_event(&raw);
                    events.extend(inner.event(event.event.as_deref(), &event.data));
                }
                inner.finished()
            }
            Decoder::Gemini(framer, inner) => {
                if let Some(raw) = framer.finish() {
                    events.extend(inner.data(&parse_event(&raw).data));
                }
                inner.finished()
            }
            Decoder::Converse(frames, inner) => {
                frames.finish().map_err(|e| e.to_string())?;
                if !inner.finished() {
                    events.extend(inner.flush());
                }
                inner.finished() || !events.is_empty()
            }
            Decoder::BedrockAnthropic(frames, inner) => {
                frames.finish().map_err(|e| e.to_string())?;
                inner.finished()
            }
        };
        match finished {
            true => Ok(events),
            false => Err("upstream stream ended before its final event".into()),
        }
    }

    fn usage(&self) -> Option<TokenUsage> {
        match self {
            Decoder::OpenAi(_, inner) => inner.usage(),
            Decoder::Anthropic(_, inner) | Decoder::BedrockAnthropic(_, inner) => inner.usage(),
            Decoder::Gemini(_, inner) => inner.usage(),
            Decoder::Converse(_, inner) => inner.usage(),
        }
    }
}

fn converse_message(
    inner: &mut converse::StreamDecoder,
    message: &EventMessage,
) -> Vec<PivotEvent> {
    match message.kind() {
        MessageKind::Event(kind) => inner.event(kind, &message.payload),
        MessageKind::Exception(kind) => inner.exception(kind, &message.payload),
        MessageKind::Error { code, message } => vec![PivotEvent::Error {
            message: format!("{code}: {message}"),
        }],
        MessageKind::Unknown => Vec::new(),
    }
}

fn bedrock_anthropic_message(
    inner: &mut anthropic::StreamDecoder,
    message: &EventMessage,
) -> Vec<PivotEvent> {
    match message.kind() {
        MessageKind::Event("chunk") => match invoke::chunk_payload(&message.payload) {
            Ok(event) => inner.event(None, &event),
            Err(e) => vec![PivotEvent::Error {
                message: e.to_string(),
            }],
        },
        MessageKind::Event(_) | MessageKind::Unknown => Vec::new(),
        MessageKind::Exception(kind) => vec![PivotEvent::Error {
            message: format!(
                "{kind}: {}",
                invoke::exception_message(&message.payload).unwrap_or_default()
            ),
        }],
        MessageKind::Error { code, message } => vec![PivotEvent::Error {
            message: format!("{code}: {message}"),
        }],
    }
}

enum Encoder {
    OpenAi(openai::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
}

impl Encoder {
    fn chunk(&mut self, chunk: &crate::api::openai::ChatChunk) -> Vec<Bytes> {
        match self {
            Encoder::OpenAi(e) => e.chunk(chunk),
            Encoder::Anthropic(e) => e.chunk(chunk),
        }
    }
    fn finish(&mut self) -> Vec<Bytes> {
        match self {
            Encoder::OpenAi(e) => e.finish(),
            Encoder::Anthropic(e) => e.finish(),
        }
    }
    fn error(&mut self, message: &str) -> Vec<Bytes> {
        match self {
            Encoder::OpenAi(e) => e.error(message),
            Encoder::Anthropic(e) => e.error(message),
        }
    }
}

/// A stream translated from an upstream format to the client's dialect.
pub struct TranslatedStream {
    decoder: Decoder,
    encoder: Encoder,
    /// The upstream reported an error in-stream (already told the client).
    error: Option<String>,
}

impl TranslatedStream {
    pub fn new(
        format: UpstreamFormat,
        client: Dialect,
        client_model: &str,
        include_usage: bool,
    ) -> Self {
        let encoder = match client {
            Dialect::OpenAi => {
                Encoder::OpenAi(openai::StreamEncoder::new(client_model, include_usage))
            }
            Dialect::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new(
                client_model,
                format!("msg_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..)),
            )),
        };
        TranslatedStream {
            decoder: Decoder::new(format, client_model),
            encoder,
            error: None,
        }
    }

    fn emit(&mut self, events: Vec<PivotEvent>, out: &mut VecDeque<Bytes>) {
        for event in events {
            if self.error.is_some() {
                return;
            }
            match event {
                PivotEvent::Chunk(chunk) => out.extend(self.encoder.chunk(&chunk)),
                PivotEvent::Error { message } => {
                    out.extend(self.encoder.error(&message));
                    self.error = Some(message);
                }
            }
        }
    }
}

impl BodyTransform for TranslatedStream {
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        match self.decoder.push(&chunk) {
            Ok(events) => self.emit(events, out),
            Err(error) => {
                let message = format!("unreadable upstream stream: {error}");
                self.emit(vec![PivotEvent::Error { message }], out);
            }
        }
    }

    fn end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), String> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let events = self.decoder.end()?;
        self.emit(events, out);
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        out.extend(self.encoder.finish());
        Ok(())
    }

    fn fail(&mut self, error: &str, out: &mut VecDeque<Bytes>) -> bool {
        if self.error.is_none() {
            out.extend(self.encoder.error(error));
            self.error = Some(error.to_string());
        }
        true
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.decoder.usage()
    }
}
