//! Gemini `generateContent` ⇄ pivot, for Google AI Studio and Vertex AI
//! Gemini models (both speak the same body; only URLs and auth differ, and
//! those belong to the provider).
//!
//! - [`wire`]: the Gemini REST types.
//! - [`request`]: pivot request → `GenerateContentRequest`.
//! - [`response`]: `GenerateContentResponse` → pivot response.
//! - [`stream`]: `streamGenerateContent?alt=sse` events → [`PivotEvent`]s.
//! - private helpers of `request`: `media` (content parts), `generation`
//!   (`generationConfig`), `schema` (JSON Schema → Gemini's OpenAPI subset).
//!
//! [`PivotEvent`]: crate::translate::PivotEvent

mod generation;
mod media;
pub mod request;
pub mod response;
mod schema;
pub mod stream;
pub mod wire;

pub use request::request_from_pivot;
pub use response::response_to_pivot;
pub use stream::StreamDecoder;

/// Joins a tool-call id and the Gemini thought signature of that call:
/// `call_<hex>__thought__<signature>`. Why in the id: Gemini 3 rejects a
/// follow-up turn whose function calls lack their signatures, the pivot has no
/// field for them, and every client echoes tool-call ids verbatim. The same
/// convention is used by other gateways, so histories stay portable.
pub const SIGNATURE_SEPARATOR: &str = "__thought__";

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod stream_tests;
