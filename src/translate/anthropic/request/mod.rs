//! Requests, both ways: an Anthropic client's request → the pivot (sent to
//! OpenAI-format upstreams), and the pivot → an Anthropic upstream's request.
//!
//! Choices where the formats differ:
//! - Tool results are separate `tool` messages in OpenAI and user blocks in
//!   Anthropic; a user turn becomes its tool messages first, then its text.
//! - Anthropic needs alternating turns starting with the user: same-role
//!   messages are merged, and a history that starts with the assistant gets a
//!   minimal user turn (".") in front.
//! - `response_format` has no Anthropic counterpart: it becomes a system
//!   instruction to answer with JSON only (the schema included), which models
//!   follow well but which is not enforced.
//! - Reasoning of earlier assistant turns is not sent to Anthropic: thinking
//!   blocks must carry Anthropic's signature, which other text does not have.
//! - With thinking on, `temperature` and `top_p` are dropped (Anthropic
//!   rejects them then); otherwise `temperature` is capped at Anthropic's 1.0.
//! - `top_k`, `cache_control` breakpoints and Anthropic-only fields have no
//!   OpenAI counterpart and are dropped; so are OpenAI-only fields (`seed`,
//!   `logit_bias`, …) on the way to Anthropic.

mod from_pivot;
mod to_pivot;

pub use from_pivot::request_from_pivot;
pub use to_pivot::request_to_pivot;
