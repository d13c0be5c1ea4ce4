//! AWS Bedrock's Converse API as an upstream format: pivot requests become
//! Converse bodies, Converse responses and `ConverseStream` events become
//! pivot responses and chunks. Only JSON bodies are translated here; SigV4
//! signing and the binary event-stream framing belong to the Bedrock
//! provider, which hands each decoded frame to [`StreamDecoder`].
//!
//! - [`wire`]: typed Converse bodies and stream event payloads.
//! - [`request`]: pivot request → Converse request.
//! - [`response`]: Converse response → pivot response.
//! - [`stream`]: `ConverseStream` events → pivot chunks.

pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

pub use request::request_from_pivot;
pub use response::response_to_pivot;
pub use stream::StreamDecoder;
pub use wire::{ConverseRequest, ConverseResponse};

/// A fresh OpenAI-style completion id (`chatcmpl-` and 24 hex digits).
fn completion_id() -> String {
    format!(
        "chatcmpl-{:016x}{:08x}",
        fastrand::u64(..),
        fastrand::u32(..)
    )
}
