//! Reading the client's body: bounded by `max_body_mb`, buffered only when
//! the gateway must read it (known JSON operations, JSON bodies), streamed
//! through otherwise (uploads).

use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::route::{ApiCall, CallKind};
use super::send::OutgoingBody;
use crate::api::RequestPeek;
use crate::error::GatewayError;

/// The body as the gateway will forward it, and what it read from it.
pub async fn take(
    req: &HttpRequest,
    payload: web::Payload,
    call: &ApiCall,
    limit: usize,
) -> Result<(OutgoingBody, RequestPeek), GatewayError> {
    if declared_length(req).is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit_bytes: limit });
    }
    if call.kind == CallKind::Other && !is_json(req) {
        return Ok((OutgoingBody::Stream(Some(payload)), RequestPeek::default()));
    }
    let bytes = read(payload, limit).await?;
    let peek = match bytes.is_empty() && call.kind == CallKind::Other {
        true => RequestPeek::default(),
        false => {
            RequestPeek::from_json(&bytes).map_err(|e| GatewayError::InvalidJson(e.to_string()))?
        }
    };
    Ok((OutgoingBody::Bytes(bytes), peek))
}

/// Estimated prompt tokens of a body (about 4 bytes a token): used to
/// reserve tokens against TPM limits and quotas before the real count is
/// known, and for prompt caps.
pub fn prompt_estimate(body: &OutgoingBody, call: &ApiCall) -> u64 {
    match (body, call.kind) {
        (
            OutgoingBody::Bytes(bytes),
            CallKind::ChatCompletions | CallKind::Messages | CallKind::Embeddings,
        ) => (bytes.len() as u64).div_ceil(4),
        _ => 0,
    }
}

/// The index of the first reject phrase the body contains, if any
/// (case-insensitive; phrases are stored lowercased).
pub fn rejected_phrase(body: &OutgoingBody, phrases: &[String]) -> Option<usize> {
    let OutgoingBody::Bytes(bytes) = body else {
        return None;
    };
    if phrases.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    phrases.iter().position(|p| text.contains(p.as_str()))
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get("content-length")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Reads the whole request body, refusing more than `limit` bytes.
async fn read(mut payload: web::Payload, limit: usize) -> Result<Bytes, GatewayError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            GatewayError::BadRequest(format!("could not read the request body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge { limit_bytes: limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
