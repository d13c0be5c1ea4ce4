//! Token usage read from upstream responses and streams, for limits and the
//! usage log. Only the usage fields are deserialized, and stream chunks that
//! cannot carry usage are recognised without parsing them at all.

use serde::Deserialize;

use crate::json::field as json_field;

/// Tokens one request consumed. `prompt_tokens` includes cached prompt tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// OpenAI's `usage` object (chat completions, embeddings; the Responses API names
/// are accepted as aliases).
#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(alias = "input_tokens")]
    prompt_tokens: Option<u64>,
    #[serde(alias = "output_tokens")]
    completion_tokens: Option<u64>,
    #[serde(alias = "input_tokens_details")]
    prompt_tokens_details: Option<OpenAiPromptDetails>,
}

#[derive(Deserialize)]
struct OpenAiPromptDetails {
    cached_tokens: Option<u64>,
}

impl From<OpenAiUsage> for TokenUsage {
    fn from(usage: OpenAiUsage) -> Self {
        TokenUsage {
            prompt_tokens: usage.prompt_tokens.unwrap_or(0),
            completion_tokens: usage.completion_tokens.unwrap_or(0),
            cached_tokens: usage
                .prompt_tokens_details
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
        }
    }
}

impl OpenAiUsage {
    /// From the raw `usage` value of a whole body (see [`json_field`]):
    /// `None` unless it is an object; a count that is not a non-negative
    /// integer counts as absent.
    fn from_raw(raw: &[u8]) -> Option<Self> {
        if !raw.starts_with(b"{") {
            return None;
        }
        let mut usage = OpenAiUsage {
            prompt_tokens: None,
            completion_tokens: None,
            prompt_tokens_details: None,
        };
        for (name, value) in json_field::members(raw) {
            match name {
                b"prompt_tokens" | b"input_tokens" => {
                    usage.prompt_tokens = json_field::u64_value(value)
                }
                b"completion_tokens" | b"output_tokens" => {
                    usage.completion_tokens = json_field::u64_value(value)
                }
                b"prompt_tokens_details" | b"input_tokens_details" => {
                    usage.prompt_tokens_details = Some(OpenAiPromptDetails {
                        cached_tokens: json_field::top_level(value, "cached_tokens")
                            .and_then(json_field::u64_value),
                    })
                }
                _ => {}
            }
        }
        Some(usage)
    }
}

/// From a non-streamed OpenAI body (chat completion or embeddings): only its
/// top-level `usage` value is read.
pub fn from_openai_body(body: &[u8]) -> Option<TokenUsage> {
    let usage = json_field::top_level(body, "usage")?;
    OpenAiUsage::from_raw(usage).map(TokenUsage::from)
}

/// What one OpenAI stream chunk (a `data:` payload) tells the usage tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiChunkInfo {
    /// The `[DONE]` sentinel.
    Done,
    /// A JSON chunk. `usage_only` marks the `"choices": []` chunk that
    /// `stream_options.include_usage` adds, which the relay drops when the
    /// client did not ask for it.
    Chunk {
        usage: Option<TokenUsage>,
        usage_only: bool,
    },
    /// Not a JSON object. Why only the first byte is checked for chunks without
    /// `"usage"`: those are most chunks, and validating each would cost a parse.
    NotJson,
}

#[derive(Deserialize)]
struct OpenAiChunk {
    choices: Option<Vec<serde::de::IgnoredAny>>,
    usage: Option<OpenAiUsage>,
}

pub fn inspect_openai_chunk(data: &str) -> OpenAiChunkInfo {
    let data = data.trim();
    if data == "[DONE]" {
        return OpenAiChunkInfo::Done;
    }
    if !data.contains("\"usage\"") {
        return if data.starts_with('{') {
            OpenAiChunkInfo::Chunk {
                usage: None,
                usage_only: false,
            }
        } else {
            OpenAiChunkInfo::NotJson
        };
    }
    let Ok(chunk) = serde_json::from_str::<OpenAiChunk>(data) else {
        return OpenAiChunkInfo::NotJson;
    };
    let usage = chunk.usage.map(TokenUsage::from);
    let no_choices = chunk.choices.is_none_or(|choices| choices.is_empty());
    OpenAiChunkInfo::Chunk {
        usage,
        usage_only: usage.is_some() && no_choices,
    }
}

/// Anthropic's `usage` object, in a message body, `message_start` or `message_delta`.
#[derive(Debug, Default, Deserialize)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Later reports replace earlier ones field by field: the counts are cumulative.
    fn update(&mut self, newer: AnthropicUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    fn to_token_usage(&self) -> TokenUsage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(cache_read)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0));
        TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: cache_read,
        }
    }
}

#[derive(Deserialize)]
struct AnthropicBody {
    usage: Option<AnthropicUsage>,
}

/// From a non-streamed Anthropic message (only its top-level `usage` value is
/// read, as [`OpenAiUsage::from_raw`] reads OpenAI's). Cache reads and writes
/// count as prompt tokens; `cached_tokens` is the cache reads.
pub fn from_anthropic_body(body: &[u8]) -> Option<TokenUsage> {
    let raw = json_field::top_level(body, "usage")?;
    if !raw.starts_with(b"{") {
        return None;
    }
    let mut usage = AnthropicUsage::default();
    for (name, value) in json_field::members(raw) {
        let count = json_field::u64_value(value);
        match name {
            b"input_tokens" => usage.input_tokens = count,
            b"output_tokens" => usage.output_tokens = count,
            b"cache_read_input_tokens" => usage.cache_read_input_tokens = count,
            b"cache_creation_input_tokens" => usage.cache_creation_input_tokens = count,
            _ => {}
        }
    }
    Some(usage.to_token_usage())
}

/// The parts of an Anthropic stream event that carry usage.
#[derive(Deserialize)]
struct AnthropicFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<AnthropicBody>,
    usage: Option<AnthropicUsage>,
}

/// Accumulates usage over an Anthropic stream: `message_start` carries
/// `message.usage`, `message_delta` carries the cumulative `usage.output_tokens`
/// (the latest wins) and possibly input counts.
#[derive(Debug, Default)]
pub struct AnthropicUsageTracker {
    usage: Option<AnthropicUsage>,
    saw_error: bool,
}

impl AnthropicUsageTracker {
    /// Looks at one event; `event` is its `event:` name if the frame had one.
    pub fn observe(&mut self, event: Option<&str>, data: &str) {
        match event {
            Some("message_start" | "message_delta") => {}
            Some("error") => {
                self.saw_error = true;
                return;
            }
            Some(_) => return,
            None if data.contains("\"usage\"") || data.contains("\"error\"") => {}
            None => return,
        }
        let Ok(frame) = serde_json::from_str::<AnthropicFrame>(data) else {
            return;
        };
        if frame.kind.as_deref() == Some("error") {
            self.saw_error = true;
        }
        let newer = frame
            .message
            .and_then(|message| message.usage)
            .or(frame.usage);
        if let Some(newer) = newer {
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .update(newer);
        }
    }

    /// The usage so far; `None` until an event reported any.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(AnthropicUsage::to_token_usage)
    }

    /// True once an `error` event was seen.
    pub fn saw_error(&self) -> bool {
        self.saw_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chat_body() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":"hi \"usage\""},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
            "prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":0}}}"#;
        let usage = from_openai_body(body);
        let expected = TokenUsage {
            prompt_tokens: 19,
            completion_tokens: 10,
            cached_tokens: 8,
        };
        assert_eq!(usage, Some(expected));
        assert_eq!(expected.total(), 29);
    }

    #[test]
    fn openai_embeddings_body_and_missing_usage() {
        let body =
            br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],
            "model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#;
        let usage = from_openai_body(body);
        assert_eq!(
            usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((5, 0))
        );
        assert_eq!(from_openai_body(br#"{"id":"x","usage":null}"#), None);
        assert_eq!(from_openai_body(b"not json"), None);
    }

    #[test]
    fn openai_stream_chunks() {
        let content = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        let with_null_usage = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
        let usage_only = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}"#;
        let quiet = OpenAiChunkInfo::Chunk {
            usage: None,
            usage_only: false,
        };
        assert_eq!(inspect_openai_chunk(content), quiet);
        assert_eq!(inspect_openai_chunk(with_null_usage), quiet);
        let usage = TokenUsage {
            prompt_tokens: 9,
            completion_tokens: 12,
            cached_tokens: 0,
        };
        assert_eq!(
            inspect_openai_chunk(usage_only),
            OpenAiChunkInfo::Chunk {
                usage: Some(usage),
                usage_only: true
            }
        );
        assert_eq!(inspect_openai_chunk(" [DONE]"), OpenAiChunkInfo::Done);
        assert_eq!(inspect_openai_chunk("hello"), OpenAiChunkInfo::NotJson);
        assert_eq!(
            inspect_openai_chunk("{\"usage\": oops"),
            OpenAiChunkInfo::NotJson
        );
    }

    #[test]
    fn usage_on_a_chunk_with_choices_is_not_usage_only() {
        let chunk = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        let OpenAiChunkInfo::Chunk { usage, usage_only } = inspect_openai_chunk(chunk) else {
            panic!("expected a chunk");
        };
        assert_eq!(usage.map(|u| u.total()), Some(3));
        assert!(!usage_only);
    }

    #[test]
    fn anthropic_body_counts_cache_into_prompt() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":50,"output_tokens":7}}"#;
        let usage = from_anthropic_body(body);
        let expected = TokenUsage {
            prompt_tokens: 162,
            completion_tokens: 7,
            cached_tokens: 50,
        };
        assert_eq!(usage, Some(expected));
    }

    #[test]
    fn whole_bodies_read_the_top_level_usage_only() {
        let openai = br#"{"choices":[{"message":{"content":"{\"usage\":{\"prompt_tokens\":99}}"},
            "usage":{"prompt_tokens":98}}],"usage" : { "input_tokens" : 4 , "output_tokens":5,
            "input_tokens_details":{"cached_tokens":2}}}"#;
        let expected = TokenUsage {
            prompt_tokens: 4,
            completion_tokens: 5,
            cached_tokens: 2,
        };
        assert_eq!(from_openai_body(openai), Some(expected));
        // A count that is not a non-negative integer counts as absent.
        let odd = br#"{"usage":{"prompt_tokens":1.5,"completion_tokens":3,"prompt_tokens_details":null}}"#;
        assert_eq!(
            from_openai_body(odd).map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((0, 3))
        );
        assert_eq!(from_openai_body(br#"{"usage":[1]}"#), None);
        assert_eq!(from_anthropic_body(br#"{"usage":null}"#), None);
        assert_eq!(
            from_anthropic_body(br#"{"usage":{"output_tokens":"7","input_tokens":3}}"#),
            Some(TokenUsage {
                prompt_tokens: 3,
                completion_tokens: 0,
                cached_tokens: 0
            })
        );
    }

    #[test]
    fn anthropic_stream_takes_latest_output_count() {
        let events = [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type": "ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\"usage\""}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let mut tracker = AnthropicUsageTracker::default();
        assert_eq!(tracker.usage(), None);
        for (name, data) in events {
            tracker.observe(Some(name), data);
        }
        let expected = TokenUsage {
            prompt_tokens: 35,
            completion_tokens: 15,
            cached_tokens: 10,
        };
        assert_eq!(tracker.usage(), Some(expected));
        assert!(!tracker.saw_error());
    }

    #[test]
    fn anthropic_stream_without_event_names_and_errors() {
        let mut tracker = AnthropicUsageTracker::default();
        tracker.observe(
            None,
            r#"{"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}"#,
        );
        tracker.observe(
            None,
            r#"{"type":"message_delta","delta":{},"usage":{"input_tokens":4,"output_tokens":2}}"#,
        );
        assert_eq!(
            tracker
                .usage()
                .map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((4, 2))
        );
        tracker.observe(
            None,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(tracker.saw_error());

        let mut named = AnthropicUsageTracker::default();
        named.observe(
            Some("error"),
            r#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
        );
        assert!(named.saw_error());
        assert_eq!(named.usage(), None);
    }
}
