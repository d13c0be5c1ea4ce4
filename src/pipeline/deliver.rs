//! Shaping the reply once an upstream (or the gateway itself) has answered:
//! same-format bodies are relayed with a usage tap, other formats are
//! translated (streams event by event, whole bodies at once), and an
//! upstream's refusal reaches the client in the client's dialect.

use std::time::Duration;

use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::finish::{Ending, Finisher};
use super::local;
use super::relay::{relay, BodyStream};
use super::route::{ApiCall, CallKind};
use super::send::{self, OutgoingBody, TransportFailure};
use super::transform::bedrock::BedrockToSse;
use super::transform::tap::{JsonTap, Passthrough, SseTap};
use super::transform::translated::TranslatedStream;
use super::transform::BodyTransform;
use crate::actors::key_pool::KeyLease;
use crate::api::{Dialect, RequestPeek};
use crate::config::EndpointConfig;
use crate::error::GatewayError;
use crate::providers::plan::ReplyPlan;
use crate::translate::body as translate_body;

/// Whole translated bodies larger than this are refused.
const TRANSLATED_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Bytes of an upstream refusal read to find its message.
const REFUSAL_BODY_LIMIT: usize = 64 * 1024;
/// Non-streamed JSON answers whose announced length is at most this are read
/// whole and sent with a length (one write to the client, and a body cut
/// short upstream can still be retried elsewhere); longer or unsized ones
/// are relayed chunk by chunk.
const WHOLE_BODY_LIMIT: u64 = 8 * 1024 * 1024;

/// What became of a successful upstream answer.
pub enum Delivery {
    Done(HttpResponse),
    /// Nothing reached the client and the answer was unusable (a stream that
    /// died before its first event, a body cut short): try elsewhere.
    Retry(TransportFailure),
    Failed(GatewayError),
}

pub fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY)
}

/// A 2xx from the upstream.
pub async fn success(
    response: awc::ClientResponse,
    reply: ReplyPlan,
    call: &ApiCall,
    peek: &RequestPeek,
    idle: Duration,
    finisher: &mut Option<Finisher>,
    lease: Option<KeyLease>,
) -> Delivery {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_sse = content_type.starts_with("text/event-stream");
    let json = content_type.starts_with("application/json");
    let content_length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut builder = HttpResponse::build(status);
    let native = matches!(reply, ReplyPlan::Native { .. });
    if native {
        for (name, value) in response.headers() {
            if send::forwards_response_header(name.as_str()) {
                builder.append_header((name.clone(), value.clone()));
            }
        }
    }
    let mut upstream = send::body_stream(response);
    let client_model = peek.model.clone().unwrap_or_default();

    let streaming = peek.stream && (is_sse || !native);
    if !streaming {
        if let ReplyPlan::Translated { format, .. } = reply {
            let body = match read_all(upstream, TRANSLATED_BODY_LIMIT, idle).await {
                Ok(body) => body,
                Err(reason) => return Delivery::Retry(reason),
            };
            let translated =
                translate_body::upstream_response_to_pivot(format, &body, &client_model).and_then(
                    |pivot| {
                        translate_body::pivot_to_client_response(call.dialect, pivot, &client_model)
                    },
                );
            let Some(mut finisher) = finisher.take() else {
                return Delivery::Failed(GatewayError::Internal("request already finished".into()));
            };
            finisher.keep_lease(lease);
            return match translated {
                Ok((bytes, usage)) => {
                    finisher.mark_first_byte();
                    finisher.set_usage(usage);
                    finisher.finish(Ending::Delivered {
                        status: status.as_u16(),
                    });
                    Delivery::Done(builder.content_type("application/json").body(bytes))
                }
                Err(e) => {
                    let error = GatewayError::Upstream {
                        status: 502,
                        message: e.to_string(),
                    };
                    finisher.finish(Ending::Rejected {
                        status: 502,
                        error: error.to_string(),
                    });
                    Delivery::Failed(error)
                }
            };
        }
    }

    // Peek the first chunk of a stream before committing the 200, so a
    // stream that dies at once can still go elsewhere.
    let first = match streaming {
        false => None,
        true => match tokio::time::timeout(idle, upstream.next()).await {
            Ok(Some(Ok(chunk))) => Some(chunk),
            Err(_) => return Delivery::Retry(TransportFailure::Timeout),
            Ok(Some(Err(e))) => return Delivery::Retry(TransportFailure::Other(e)),
            Ok(None) => {
                return Delivery::Retry(TransportFailure::Other(
                    "stream ended before its first event".into(),
                ))
            }
        },
    };
    let transform: Box<dyn BodyTransform> = match reply {
        ReplyPlan::Native { drop_usage_chunk } => {
            transform_for(call, peek.stream, drop_usage_chunk, is_sse)
        }
        ReplyPlan::BedrockAnthropic if streaming => {
            builder.content_type("text/event-stream");
            Box::new(BedrockToSse::default())
        }
        ReplyPlan::BedrockAnthropic => {
            builder.content_type("application/json");
            Box::new(JsonTap::new(Dialect::Anthropic))
        }
        ReplyPlan::Translated {
            format,
            include_usage,
        } => {
            builder.content_type("text/event-stream");
            builder.insert_header(("cache-control", "no-cache"));
            Box::new(TranslatedStream::new(
                format,
                call.dialect,
                &client_model,
                include_usage,
            ))
        }
    };
    if let (false, true, Some(length @ 0..=WHOLE_BODY_LIMIT)) = (streaming, json, content_length) {
        let reply = Whole {
            builder,
            length,
            transform,
            status: status.as_u16(),
        };
        return reply.deliver(upstream, idle, finisher, lease).await;
    }
    if let Some(f) = finisher.as_mut() {
        f.keep_lease(lease);
    }
    Delivery::Done(respond(
        builder,
        first,
        upstream,
        transform,
        status.as_u16(),
        idle,
        finisher,
    ))
}

/// A sized answer, read whole, passed through its transform and sent with
/// its length; the request is finished before the reply leaves.
struct Whole {
    builder: HttpResponseBuilder,
    /// The upstream's content-length.
    length: u64,
    transform: Box<dyn BodyTransform>,
    status: u16,
}

impl Whole {
    async fn deliver(
        mut self,
        upstream: BodyStream,
        idle: Duration,
        finisher: &mut Option<Finisher>,
        lease: Option<KeyLease>,
    ) -> Delivery {
        let body = match read_all(upstream, WHOLE_BODY_LIMIT as usize, idle).await {
            Ok(body) => body,
            Err(reason) => return Delivery::Retry(reason),
        };
        // A connection closed early can end the body without an error.
        if body.len() as u64 != self.length {
            return Delivery::Retry(TransportFailure::Other(format!(
                "upstream body cut short: {} of {} bytes",
                body.len(),
                self.length
            )));
        }
        let Some(mut finisher) = finisher.take() else {
            return Delivery::Failed(GatewayError::Internal("request already finished".into()));
        };
        finisher.keep_lease(lease);
        let mut out = std::collections::VecDeque::new();
        self.transform.push(body, &mut out);
        if let Err(error) = self.transform.end(&mut out) {
            let error = GatewayError::Upstream {
                status: 502,
                message: error,
            };
            finisher.finish(Ending::Rejected {
                status: 502,
                error: error.to_string(),
            });
            return Delivery::Failed(error);
        }
        let body = match out.len() {
            1 => out.pop_front().unwrap_or_default(),
            _ => {
                let mut joined = Vec::with_capacity(out.iter().map(Bytes::len).sum());
                out.iter().for_each(|chunk| joined.extend_from_slice(chunk));
                Bytes::from(joined)
            }
        };
        finisher.mark_first_byte();
        finisher.set_usage(self.transform.usage());
        finisher.finish(Ending::Delivered {
            status: self.status,
        });
        Delivery::Done(self.builder.body(body))
    }
}

/// A final 4xx from the upstream: as-is when it is in the client's format,
/// else its message in the client's dialect with the upstream's status.
pub async fn upstream_refusal(
    response: awc::ClientResponse,
    reply: ReplyPlan,
    idle: Duration,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    let status = response.status();
    if let ReplyPlan::Native { .. } = reply {
        let mut builder = HttpResponse::build(status);
        for (name, value) in response.headers() {
            if send::forwards_response_header(name.as_str()) {
                builder.append_header((name.clone(), value.clone()));
            }
        }
        let body = send::body_stream(response);
        return Ok(respond(
            builder,
            None,
            body,
            Box::new(Passthrough),
            status.as_u16(),
            idle,
            finisher,
        ));
    }
    let body = send::read_bounded(
        send::body_stream(response),
        REFUSAL_BODY_LIMIT,
        Duration::from_secs(5),
    )
    .await;
    Err(GatewayError::Upstream {
        status: status.as_u16(),
        message: translate_body::upstream_error_message(&body),
    })
}

/// An answer the gateway makes itself (the mock provider, count_tokens
/// estimates for upstreams that have no such call).
pub fn local(
    call: &ApiCall,
    peek: &RequestPeek,
    body: &OutgoingBody,
    endpoint: &EndpointConfig,
    idle: Duration,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    let OutgoingBody::Bytes(bytes) = body else {
        return Err(GatewayError::UnknownRoute {
            method: "POST".into(),
            path: format!("{} (the mock endpoint does not serve it)", call.api_path),
        });
    };
    let latency = match endpoint.provider {
        crate::config::ProviderKind::Mock => Duration::from_millis(endpoint.latency_ms),
        _ => Duration::ZERO,
    };
    // Like an upstream, the mock is asked for stream usage on the client's
    // behalf, so the usage record has real numbers.
    let ask_stream_usage =
        call.kind == CallKind::ChatCompletions && peek.stream && !peek.include_usage;
    let rewrite = crate::api::peek::BodyRewrite {
        model: None,
        ask_stream_usage,
    };
    let bytes = rewrite
        .apply(bytes.clone())
        .map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let model = peek.model.as_deref().unwrap_or_default();
    let reply = local::mock_reply(call, &bytes, model, peek.stream, latency)?;
    let mut builder = HttpResponse::build(status_code(reply.status));
    builder.content_type(reply.content_type);
    let transform = transform_for(call, peek.stream, ask_stream_usage, peek.stream);
    Ok(respond(
        builder,
        None,
        reply.body,
        transform,
        reply.status,
        idle,
        finisher,
    ))
}

pub fn respond(
    mut builder: HttpResponseBuilder,
    first: Option<Bytes>,
    body: BodyStream,
    transform: Box<dyn BodyTransform>,
    status: u16,
    idle: Duration,
    finisher: &mut Option<Finisher>,
) -> HttpResponse {
    match finisher.take() {
        Some(finisher) => builder.streaming(relay(first, body, transform, status, idle, finisher)),
        None => builder.finish(),
    }
}

/// How a same-format reply is relayed: streams event by event with a usage
/// tap, known JSON bodies with a usage tap, anything else untouched.
fn transform_for(
    call: &ApiCall,
    stream: bool,
    drop_usage_chunk: bool,
    is_sse: bool,
) -> Box<dyn BodyTransform> {
    match (call.kind, stream && is_sse) {
        (CallKind::ChatCompletions | CallKind::Messages, true) => {
            Box::new(SseTap::new(call.dialect, drop_usage_chunk))
        }
        (CallKind::ChatCompletions | CallKind::Messages | CallKind::Embeddings, _) => {
            Box::new(JsonTap::new(call.dialect))
        }
        (CallKind::CountTokens | CallKind::Other, _) => Box::new(Passthrough),
    }
}

/// Reads a whole body, bounded in size and by the idle timeout per chunk.
async fn read_all(
    mut body: BodyStream,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, TransportFailure> {
    // A body that arrives in one chunk (most answers) is that chunk, not a copy.
    let mut first = Bytes::new();
    let mut joined = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => return Err(TransportFailure::Timeout),
            Ok(None) if joined.is_empty() => return Ok(first),
            Ok(None) => return Ok(joined.freeze()),
            Ok(Some(Err(e))) => return Err(TransportFailure::Other(e)),
            Ok(Some(Ok(chunk))) => {
                if first.len() + joined.len() + chunk.len() > limit {
                    return Err(TransportFailure::Other(format!(
                        "upstream body over {limit} bytes"
                    )));
                }
                if first.is_empty() && joined.is_empty() {
                    first = chunk;
                } else {
                    if joined.is_empty() {
                        joined.extend_from_slice(&std::mem::take(&mut first));
                    }
                    joined.extend_from_slice(&chunk);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> BodyStream {
        let items: Vec<Result<Bytes, String>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures_util::stream::iter(items).boxed_local()
    }

    #[actix_web::test]
    async fn read_all_keeps_a_single_chunk_and_joins_several() {
        let idle = Duration::from_secs(5);
        let one: &'static [u8] = b"{\"a\":1}";
        let read = read_all(chunks(&[one]), 100, idle).await.unwrap();
        assert_eq!(read.as_ptr(), one.as_ptr(), "a lone chunk is not copied");
        for parts in [
            &[&b"ab"[..], b"", b"cd", b"e"][..],
            &[b"", b"abcde"],
            &[b"abc", b"de", b""],
        ] {
            assert_eq!(
                read_all(chunks(parts), 100, idle).await.unwrap(),
                &b"abcde"[..]
            );
        }
        assert_eq!(read_all(chunks(&[]), 100, idle).await.unwrap(), &b""[..]);
        let over = read_all(chunks(&[b"abc", b"de"]), 4, idle).await;
        assert!(matches!(over, Err(TransportFailure::Other(m)) if m.contains("over 4 bytes")));
    }
}
