//! Replies the gateway makes itself: the `mock` provider's answers, shaped as
//! an upstream body so they go through the same relay, taps and accounting.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use super::relay::BodyStream;
use super::route::{ApiCall, CallKind};
use crate::error::GatewayError;
use crate::providers::mock::{self, MockError};

pub struct LocalReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: BodyStream,
}

/// Answers `call` the way the mock provider does; `body` is the request as
/// the upstream would have received it.
pub fn mock_reply(
    call: &ApiCall,
    body: &Bytes,
    model: &str,
    stream: bool,
    latency: Duration,
) -> Result<LocalReply, GatewayError> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let bad = |e: MockError| GatewayError::BadRequest(e.to_string());
    let frames: Vec<Bytes> = match (call.kind, stream) {
        (CallKind::ChatCompletions, true) => {
            mock::openai_chat_stream(&request, model).map_err(bad)?
        }
        (CallKind::Messages, true) => mock::anthropic_stream(&request, model).map_err(bad)?,
        (CallKind::ChatCompletions, false) => {
            json(mock::openai_chat(&request, model).map_err(bad)?)
        }
        (CallKind::Messages, false) => json(mock::anthropic_message(&request, model).map_err(bad)?),
        (CallKind::Embeddings, _) => json(mock::openai_embeddings(&request, model).map_err(bad)?),
        (CallKind::CountTokens, _) => json(mock::anthropic_count_tokens(&request).map_err(bad)?),
        (CallKind::Other, _) => {
            return Err(GatewayError::UnknownRoute {
                method: "POST".into(),
                path: format!("{} (the mock endpoint does not serve it)", call.api_path),
            })
        }
    };
    let is_stream = stream && matches!(call.kind, CallKind::ChatCompletions | CallKind::Messages);
    let body = futures_util::stream::iter(frames)
        .enumerate()
        .then(move |(index, frame)| async move {
            if index == 0 && !latency.is_zero() {
                tokio::time::sleep(latency).await;
            } else if index > 0 {
                // Let each frame leave as its own chunk, as a real stream's would.
                tokio::task::yield_now().await;
            }
            Ok::<Bytes, String>(frame)
        })
        .boxed_local();
    Ok(LocalReply {
        status: 200,
        content_type: match is_stream {
            true => "text/event-stream",
            false => "application/json",
        },
        body,
    })
}

fn json(value: Value) -> Vec<Bytes> {
    vec![Bytes::from(value.to_string())]
}
