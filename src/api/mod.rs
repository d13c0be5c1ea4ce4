//! Client-facing wire types: the two dialects clients speak (OpenAI and
//! Anthropic), their error bodies, and the few request fields the gateway
//! reads on the hot path.

pub mod anthropic;
pub mod dialect;
pub mod openai;
pub mod peek;

pub use dialect::Dialect;
pub use peek::RequestPeek;
