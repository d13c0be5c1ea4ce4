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
