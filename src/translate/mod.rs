//! Translation between wire formats. The OpenAI Chat Completions types in
//! [`crate::api::openai`] are the pivot: a client dialect converts into them,
//! an upstream format converts out of them, and back again for responses and
//! streams. Each format is one folder, split by direction:
//!
//! - [`anthropic`]: Anthropic Messages, both as a client dialect and as an
//!   upstream format (requests, responses, stream decoder and encoder).
//! - [`gemini`]: Gemini `generateContent` (AI Studio and Vertex).
//! - [`converse`]: Bedrock's Converse API.
//! - [`openai`]: the pivot's own SSE decoder and encoder.
//!
//! Stream translation is a pair of state machines: an upstream decoder turns
//! upstream events into [`PivotEvent`]s, a client encoder turns those into
//! the client's SSE frames.

use crate::api::openai::ChatChunk;

/// One step of a translated stream, in pivot terms.
#[derive(Debug, Clone, PartialEq)]
pub enum PivotEvent {
    Chunk(ChatChunk),
    /// The upstream reported an error inside the stream.
    Error {
        message: String,
    },
}

/// Why a translation cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslateError {
    /// The client asked for something the target cannot do (e.g. `n` > 1
    /// on Anthropic): a 400 naming the feature.
    #[error("{0}")]
    Unsupported(String),
    /// The client's body is not a valid request of its dialect.
    #[error("{0}")]
    InvalidRequest(String),
    /// The upstream answered something that is not its own format.
    #[error("the upstream sent a body that could not be read: {0}")]
    BadUpstream(String),
}

pub mod anthropic;
pub mod body;
pub mod converse;
pub mod gemini;
pub mod openai;

/// Current Unix time in seconds, for `created` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Finish reasons in OpenAI's vocabulary, from any upstream's.
pub mod finish_reason {
    pub const STOP: &str = "stop";
    pub const LENGTH: &str = "length";
    pub const TOOL_CALLS: &str = "tool_calls";
    pub const CONTENT_FILTER: &str = "content_filter";
}
