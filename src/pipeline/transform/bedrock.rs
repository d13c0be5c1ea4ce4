//! Bedrock InvokeModel streams for an Anthropic client: the events are
//! Anthropic's own, wrapped in AWS event-stream frames with base64 payloads.
//! They are unwrapped and re-framed as the SSE the client expects, unchanged.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{error_event, BodyTransform};
use crate::api::Dialect;
use crate::providers::bedrock::event_stream::{EventStreamDecoder, MessageKind};
use crate::providers::bedrock::invoke;
use crate::stream::sse::named_frame;
use crate::stream::usage::{AnthropicUsageTracker, TokenUsage};

#[derive(Default)]
pub struct BedrockToSse {
    frames: EventStreamDecoder,
    usage: AnthropicUsageTracker,
    saw_stop: bool,
    error: Option<String>,
}

impl BedrockToSse {
    fn error(&mut self, message: String, out: &mut VecDeque<Bytes>) {
        if self.error.is_none() {
            out.push_back(error_event(Dialect::Anthropic, &message));
            self.error = Some(message);
        }
    }
}

/// The `type` of an Anthropic event, which is also its SSE event name.
fn event_name(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(json).ok().map(|t| t.kind)
}

impl BodyTransform for BedrockToSse {
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        let messages = match self.frames.push(&chunk) {
            Ok(messages) => messages,
            Err(e) => return self.error(format!("unreadable upstream stream: {e}"), out),
        };
        for message in messages {
            match message.kind() {
                MessageKind::Event("chunk") => match invoke::chunk_payload(&message.payload) {
                    Ok(json) => {
                        let name = event_name(&json).unwrap_or_else(|| "message".into());
                        self.usage.observe(Some(&name), &json);
                        if name == "message_stop" {
                            self.saw_stop = true;
                        }
                        out.push_back(named_frame(&name, &json));
                    }
                    Err(e) => self.error(e.to_string(), out),
                },
                MessageKind::Exception(kind) => {
                    let detail = invoke::exception_message(&message.payload).unwrap_or_default();
                    self.error(format!("{kind}: {detail}"), out);
                }
                MessageKind::Error { code, message } => {
                    self.error(format!("{code}: {message}"), out)
                }
                MessageKind::Event(_) | MessageKind::Unknown => {}
            }
        }
    }

    fn end(&mut self, _: &mut VecDeque<Bytes>) -> Result<(), String> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        self.frames.finish().map_err(|e| e.to_string())?;
        match self.saw_stop {
            true => Ok(()),
            false => Err("upstream stream ended before its final event".into()),
        }
    }

    fn fail(&mut self, error: &str, out: &mut VecDeque<Bytes>) -> bool {
        self.error(error.to_string(), out);
        true
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage.usage()
    }
}
