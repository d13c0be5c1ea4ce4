//! The offline `mock` provider: answers locally in either dialect, so demos,
//! tests and benchmarks need no upstream.
//!
//! Replies echo the last user message (`Echo: …`); a system prompt saying
//! exactly `mock:lorem N` asks for N words of lorem ipsum instead, to benchmark
//! long streams. Token counts are estimates (about four characters a token).
//!
//! Layout: this file reads chat requests of both dialects; `openai`,
//! `anthropic` and `embeddings` write the replies.

use serde_json::Value;

mod anthropic;
mod embeddings;
mod openai;

pub use anthropic::{anthropic_count_tokens, anthropic_message, anthropic_stream};
pub use embeddings::openai_embeddings;
pub use openai::{openai_chat, openai_chat_stream};

/// A request the mock cannot answer, worded for the client.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("{0}")]
    BadRequest(String),
}

fn bad_request(message: &str) -> MockError {
    MockError::BadRequest(message.to_owned())
}

/// About `chars / 4`, rounded up: at least 1 for non-empty text.
pub fn estimate_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(4) as u64
}

/// What the mock needs from a chat request, whatever its dialect.
struct ChatInput {
    prompt_tokens: u64,
    reply: String,
    /// The reply was cut to fit the client's token limit.
    truncated: bool,
}

impl ChatInput {
    fn completion_tokens(&self) -> u64 {
        estimate_tokens(&self.reply)
    }
}

/// The text of a content value: a string, or the text parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

/// Reads the messages, the separate system prompt (Anthropic's `system`) and
/// the reply limit (`None`: unlimited).
fn chat_input(
    messages: &Value,
    system: Option<&Value>,
    limit: Option<u64>,
) -> Result<ChatInput, MockError> {
    let messages = messages
        .as_array()
        .filter(|messages| !messages.is_empty())
        .ok_or_else(|| bad_request("messages: required, a non-empty array"))?;
    let system_messages = messages
        .iter()
        .filter(|m| m["role"] == "system" || m["role"] == "developer");
    let system_texts: Vec<String> = system
        .into_iter()
        .chain(system_messages.map(|m| &m["content"]))
        .map(content_text)
        .collect();
    let mut prompt: Vec<String> = system.map(content_text).into_iter().collect();
    prompt.extend(messages.iter().map(|m| content_text(&m["content"])));
    let last_user = messages.iter().rev().find(|m| m["role"] == "user");
    let lorem_words = system_texts.iter().find_map(|text| {
        let count = text.trim().strip_prefix("mock:lorem ")?;
        count.trim().parse::<usize>().ok()
    });
    let mut reply = match lorem_words {
        Some(words) => lorem(words),
        None => format!(
            "Echo: {}",
            last_user
                .map(|m| content_text(&m["content"]))
                .unwrap_or_default()
        ),
    };
    let truncated = limit.is_some_and(|limit| limit < estimate_tokens(&reply));
    if let Some(limit) = limit.filter(|_| truncated) {
        let keep = usize::try_from(limit.saturating_mul(4)).unwrap_or(usize::MAX);
        reply = reply.chars().take(keep).collect();
    }
    Ok(ChatInput {
        prompt_tokens: estimate_tokens(&prompt.join("\n")).max(1),
        reply,
        truncated,
    })
}

/// A positive integer field, or `None` when absent.
fn token_limit(req: &Value, field: &str) -> Result<Option<u64>, MockError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(limit) if limit > 0 => Ok(Some(limit)),
            _ => Err(MockError::BadRequest(format!(
                "{field}: must be a positive integer"
            ))),
        },
    }
}

const LOREM: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua";

/// Why a cap: a request must not make the mock build an unbounded reply.
const MAX_LOREM_WORDS: usize = 100_000;

fn lorem(words: usize) -> String {
    let words = words.min(MAX_LOREM_WORDS);
    let mut text = String::with_capacity(words * 7);
    for (i, word) in LOREM.split(' ').cycle().take(words).enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

/// Pieces a reply is streamed in: one word each, its trailing space included.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

/// Parses frames back into events, checking each frame is exactly one event.
#[cfg(test)]
fn sse_events(frames: &[bytes::Bytes]) -> Vec<crate::stream::sse::SseEvent> {
    let mut framer = crate::stream::sse::SseFramer::new();
    let raw: Vec<bytes::Bytes> = frames.iter().flat_map(|f| framer.push(f)).collect();
    assert_eq!(raw.len(), frames.len(), "one whole event per frame");
    assert_eq!(framer.finish(), None);
    raw.iter()
        .map(|r| crate::stream::sse::parse_event(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimates_tokens() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééééé"), 2);
    }

    #[test]
    fn rejects_missing_messages() {
        for req in [
            json!({}),
            json!({"messages": []}),
            json!({"messages": "hi"}),
        ] {
            let err = openai_chat(&req, "m").unwrap_err();
            assert_eq!(err.to_string(), "messages: required, a non-empty array");
        }
    }

    #[test]
    fn lorem_directive_in_either_dialect() {
        let req = json!({"messages": [{"role": "system", "content": "mock:lorem 5"}, {"role": "user", "content": "go"}]});
        let reply = openai_chat(&req, "m").unwrap();
        assert_eq!(
            reply["choices"][0]["message"]["content"],
            "lorem ipsum dolor sit amet"
        );
        let req = json!({"max_tokens": 100_000, "system": [{"type": "text", "text": "mock:lorem 40"}],
            "messages": [{"role": "user", "content": "go"}]});
        let text = anthropic_message(&req, "m").unwrap()["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(text.split(' ').count(), 40);
        assert!(text.starts_with("lorem ipsum"));
    }
}
