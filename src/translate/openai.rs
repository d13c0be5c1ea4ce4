//! The pivot's own stream format: OpenAI SSE chunks. The decoder reads an
//! OpenAI-format upstream stream into [`PivotEvent`]s; the encoder writes
//! pivot chunks to an OpenAI client, honouring `stream_options.include_usage`
//! (usage travels in one extra chunk with no choices, just before `[DONE]`).

use bytes::Bytes;

use super::PivotEvent;
use crate::api::openai::{ChatChunk, Usage};
use crate::stream::sse::data_frame;
use crate::stream::usage::TokenUsage;

/// OpenAI-format upstream stream → pivot events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    usage: Option<TokenUsage>,
    finished: bool,
}

impl StreamDecoder {
    /// One SSE `data:` payload.
    pub fn data(&mut self, data: &str) -> Vec<PivotEvent> {
        let data = data.trim();
        if data == "[DONE]" {
            self.finished = true;
            return Vec::new();
        }
        if data.is_empty() {
            return Vec::new();
        }
        if let Some(message) = error_message(data) {
            return vec![PivotEvent::Error { message }];
        }
        match serde_json::from_str::<ChatChunk>(data) {
            Ok(chunk) => {
                if let Some(usage) = &chunk.usage {
                    self.usage = Some(token_usage(usage));
                }
                vec![PivotEvent::Chunk(chunk)]
            }
            Err(e) => vec![PivotEvent::Error {
                message: format!("unreadable chunk from upstream: {e}"),
            }],
        }
    }

    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    pub fn finished(&self) -> bool {
        self.finished
    }
}

/// `{"error": {"message": …}}` inside a stream.
fn error_message(data: &str) -> Option<String> {
    if !data.contains("\"error\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let error = value.get("error")?;
    Some(
        error
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string()),
    )
}

pub fn token_usage(usage: &Usage) -> TokenUsage {
    TokenUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cached_tokens: usage.cached_tokens(),
    }
}

/// Pivot chunks → an OpenAI client's SSE frames.
#[derive(Debug)]
pub struct StreamEncoder {
    client_model: String,
    include_usage: bool,
    usage: Option<Usage>,
    /// id and created of the stream, for the usage chunk.
    id: String,
    created: u64,
    done: bool,
}

impl StreamEncoder {
    pub fn new(client_model: &str, include_usage: bool) -> Self {
        StreamEncoder {
            client_model: client_model.to_string(),
            include_usage,
            usage: None,
            id: String::new(),
            created: super::unix_now(),
            done: false,
        }
    }

    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<Bytes> {
        let mut chunk = chunk.clone();
        if self.id.is_empty() {
            self.id = chunk.id.clone();
            self.created = chunk.created;
        }
        chunk.model = self.client_model.clone();
        if let Some(usage) = chunk.usage.take() {
            self.usage = Some(usage);
        }
        if chunk.choices.is_empty() {
            // A usage-only chunk: it is re-sent at the end if asked for.
            return Vec::new();
        }
        if self.include_usage {
            // OpenAI sends `"usage": null` on every chunk when asked.
            let mut value = serde_json::to_value(&chunk).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("usage".into(), serde_json::Value::Null);
            }
            return vec![data_frame(&value.to_string())];
        }
        vec![data_frame(
            &serde_json::to_string(&chunk).unwrap_or_default(),
        )]
    }

    /// The usage chunk (when asked) and `[DONE]`, once.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut frames = Vec::new();
        if self.include_usage {
            let usage_chunk = ChatChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.client_model.clone(),
                choices: Vec::new(),
                usage: Some(self.usage.clone().unwrap_or_default()),
            };
            frames.push(data_frame(
                &serde_json::to_string(&usage_chunk).unwrap_or_default(),
            ));
        }
        frames.push(data_frame("[DONE]"));
        frames
    }

    /// An error chunk, as OpenAI sends one mid-stream; no `[DONE]` follows.
    pub fn error(&mut self, message: &str) -> Vec<Bytes> {
        self.done = true;
        let body = crate::api::Dialect::OpenAi.error_body(
            crate::api::dialect::ErrorKind::Upstream,
            "stream_interrupted",
            message,
        );
        vec![data_frame(&body.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openai::{ChunkChoice, Delta};

    fn chunk(content: &str, finish: Option<&str>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: "c1".into(),
            object: "chat.completion.chunk".into(),
            created: 7,
            model: "upstream-model".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: Some(content.into()),
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_string),
                logprobs: None,
            }],
            usage,
        }
    }

    #[test]
    fn encoder_moves_usage_to_its_own_chunk_when_asked() {
        let mut encoder = StreamEncoder::new("client-model", true);
        let mut frames = encoder.chunk(&chunk("hi", None, None));
        frames.extend(encoder.chunk(&chunk("", Some("stop"), Some(Usage::new(3, 2, 0)))));
        frames.extend(encoder.finish());
        let text: String = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).to_string())
            .collect();
        assert!(text.contains("\"model\":\"client-model\""));
        assert!(!text.contains("upstream-model"));
        let last_json = text
            .split("data: ")
            .filter(|s| s.starts_with('{'))
            .last()
            .unwrap();
        let usage_chunk: serde_json::Value = serde_json::from_str(last_json.trim()).unwrap();
        assert_eq!(usage_chunk["choices"], serde_json::json!([]));
        assert_eq!(usage_chunk["usage"]["total_tokens"], 5);
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn encoder_without_usage_sends_none() {
        let mut encoder = StreamEncoder::new("m", false);
        let mut frames = encoder.chunk(&chunk("", Some("stop"), Some(Usage::new(3, 2, 0))));
        frames.extend(encoder.finish());
        let text: String = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).to_string())
            .collect();
        assert!(!text.contains("usage"));
        assert_eq!(encoder.finish(), Vec::<Bytes>::new());
    }

    #[test]
    fn decoder_reads_chunks_usage_done_and_errors() {
        let mut decoder = StreamDecoder::default();
        let events = decoder.data(r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}"#);
        assert_eq!(events.len(), 1);
        assert_eq!(decoder.usage().unwrap().completion_tokens, 6);
        assert!(!decoder.finished());
        assert!(decoder.data("[DONE]").is_empty());
        assert!(decoder.finished());
        let events = decoder.data(r#"{"error":{"message":"overloaded","type":"server_error"}}"#);
        assert_eq!(
            events,
            vec![PivotEvent::Error {
                message: "overloaded".into()
            }]
        );
    }
}
