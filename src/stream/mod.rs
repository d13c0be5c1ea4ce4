//! Streaming: SSE framing and the usage taps the relay runs over every stream.

pub mod sse;
pub mod usage;
