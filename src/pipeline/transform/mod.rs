//! What the relay does to a body on its way back: pass it through, tap it
//! for usage, or translate it into the client's format. Each kind is a
//! [`BodyTransform`]; the relay drives it chunk by chunk.

pub mod bedrock;
pub mod tap;
pub mod translated;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::api::Dialect;
use crate::stream::usage::TokenUsage;

/// Turns upstream bytes into client bytes, learning usage on the way.
pub trait BodyTransform {
    /// One upstream chunk; client-ready bytes go to `out`.
    fn push(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>);
    /// The upstream body ended. `Err` when it ended before its format's end
    /// marker (a cut-off stream); closing frames go to `out`.
    fn end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), String>;
    /// The upstream failed mid-body: write an error frame if the format can
    /// carry one, and say whether it did.
    fn fail(&mut self, error: &str, out: &mut VecDeque<Bytes>) -> bool;
    fn usage(&self) -> Option<TokenUsage>;
}

/// The SSE event that tells a client its stream broke off.
pub fn error_event(dialect: Dialect, message: &str) -> Bytes {
    use crate::api::dialect::ErrorKind;
    use crate::stream::sse::{data_frame, named_frame};
    let body = dialect.error_body(ErrorKind::Upstream, "stream_interrupted", message);
    match dialect {
        Dialect::OpenAi => data_frame(&body.to_string()),
        Dialect::Anthropic => named_frame("error", &body.to_string()),
    }
}
