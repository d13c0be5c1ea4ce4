//! Step 5, send: build the upstream request (client headers minus the
//! hop-by-hop and credential ones, the endpoint's URL and key), send it with
//! awc, and classify what came back: deliver it, retry on another key, retry
//! on another endpoint, or hand it to the client as final.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;

use super::relay::BodyStream;
use crate::actors::key_pool::KeyOutcome;
use crate::providers::plan::UpstreamRequest;

/// Request headers never forwarded upstream: hop-by-hop, framing the
/// gateway redoes, the client's credentials, and the client's address.
/// (A `match` rather than a list: every header of every request is checked,
/// and the compiler sorts the names by length first.)
pub fn forwards_request_header(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "authorization"
            | "x-api-key"
            | "api-key"
            | "accept-encoding"
            | "cookie"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
            | "forwarded"
    )
}

/// Response headers not passed back: hop-by-hop, framing, upstream cookies.
pub fn forwards_response_header(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "transfer-encoding"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "set-cookie"
    )
}

/// The request body: bytes the gateway may resend on another attempt, or a
/// client stream (uploads) that can be sent once.
pub enum OutgoingBody {
    Bytes(Bytes),
    Stream(Option<actix_web::web::Payload>),
}

/// Why an attempt produced no response.
#[derive(Debug, Clone)]
pub enum TransportFailure {
    Timeout,
    Other(String),
}

/// Sends one planned attempt. The response body is left unread.
pub async fn send(
    client: &awc::Client,
    planned: UpstreamRequest,
    client_headers: &HeaderMap,
    timeout: Duration,
) -> Result<awc::ClientResponse, TransportFailure> {
    let mut request = client
        .request(planned.method, planned.url)
        .timeout(timeout)
        .no_decompress();
    if planned.forward_client_headers {
        for (name, value) in client_headers {
            if forwards_request_header(name.as_str()) {
                request = request.append_header((name.clone(), value.clone()));
            }
        }
    }
    for (name, value) in &planned.headers {
        request = request.insert_header((name.as_str(), value.as_str()));
    }
    let sent = match planned.body {
        OutgoingBody::Bytes(bytes) => request.send_body(bytes).await,
        OutgoingBody::Stream(Some(payload)) => request.send_stream(payload).await,
        OutgoingBody::Stream(None) => {
            return Err(TransportFailure::Other("request body already sent".into()))
        }
    };
    sent.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => TransportFailure::Timeout,
        other => TransportFailure::Other(other.to_string()),
    })
}

/// Turns an awc response body into the relay's stream type.
pub fn body_stream(response: awc::ClientResponse) -> BodyStream {
    response
        .map(|item| item.map_err(|e| e.to_string()))
        .boxed_local()
}

/// What to do with an upstream status.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Success: relay it.
    Deliver,
    /// The key is the problem: try another key (same endpoint allowed).
    OtherKey(KeyOutcome),
    /// The endpoint is the problem: try another endpoint.
    OtherEndpoint,
    /// The request itself was refused: the client gets it as-is.
    Final,
}

/// Classifies a status. `pooled_key`: the key was ours (a passthrough
/// client's own key being refused is the client's business).
pub fn classify(status: StatusCode, retry_after: Option<Duration>, pooled_key: bool) -> Verdict {
    match status.as_u16() {
        200..=399 => Verdict::Deliver,
        429 if pooled_key => Verdict::OtherKey(KeyOutcome::RateLimited { retry_after }),
        401 | 403 if pooled_key => Verdict::OtherKey(KeyOutcome::Revoked {
            status: status.as_u16(),
        }),
        500..=599 => Verdict::OtherEndpoint,
        _ => Verdict::Final,
    }
}

/// Retry-After in seconds (the HTTP-date form is rare from LLM APIs and is
/// treated as absent).
pub fn retry_after(headers: &awc::http::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Reads at most `limit` bytes of a body we are not going to relay (a failed
/// attempt), within `timeout`.
pub async fn read_bounded(mut stream: BodyStream, limit: usize, timeout: Duration) -> Bytes {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() >= limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(StatusCode::OK, None, true), Verdict::Deliver);
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(3)),
                true
            ),
            Verdict::OtherKey(KeyOutcome::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            })
        );
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, true),
            Verdict::OtherKey(KeyOutcome::Revoked { status: 401 })
        );
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, false),
            Verdict::Final
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, None, true),
            Verdict::OtherEndpoint
        );
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, true),
            Verdict::Final
        );
    }

    #[test]
    fn credentials_and_hop_headers_stay_behind() {
        let hop = [
            "connection",
            "keep-alive",
            "proxy-authenticate",
            "transfer-encoding",
            "trailer",
            "upgrade",
            "content-length",
        ];
        let client_only = [
            "proxy-authorization",
            "te",
            "host",
            "authorization",
            "x-api-key",
            "api-key",
            "accept-encoding",
            "cookie",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-real-ip",
            "forwarded",
        ];
        for name in hop.iter().chain(&client_only) {
            assert!(!forwards_request_header(name), "{name}");
        }
        for name in hop.iter().chain(&["set-cookie"]) {
            assert!(!forwards_response_header(name), "{name}");
        }
        for name in [
            "anthropic-beta",
            "content-type",
            "openai-organization",
            "x-request-id",
        ] {
            assert!(forwards_request_header(name), "{name}");
            assert!(forwards_response_header(name), "{name}");
        }
        assert!(forwards_response_header("cookie"));
    }
}
