//! The request pipeline: guard → auth → route → select → send → finish, each
//! step a module that can be read and tested alone. [`handle`] is the one
//! entry point the proxied routes call; it runs the steps, retries on another
//! key or endpoint while nothing has reached the client, and makes sure the
//! finish step runs whatever happens.

pub mod auth;
pub mod finish;
pub mod guard;
pub mod local;
pub mod relay;
pub mod route;
pub mod select;
pub mod send;
pub mod transform;

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::actors::key_pool::{KeyOutcome, DEFAULT_COOLDOWN};
use crate::api::peek::BodyRewrite;
use crate::api::{Dialect, RequestPeek};
use crate::config::ProviderKind;
use crate::error::{GatewayError, LimitScope};
use crate::state::AppState;
use auth::Client;
use finish::{Ending, Finisher};
use relay::{relay, BodyStream};
use route::{ApiCall, CallKind};
use select::NoCapacity;
use send::{Attempt, OutgoingBody, TransportFailure, Verdict};
use transform::tap::{JsonTap, Passthrough, SseTap};
use transform::BodyTransform;

/// Bytes of a failed attempt's body kept, in case it is the final answer.
const FAILED_BODY_LIMIT: usize = 64 * 1024;

/// Header carrying the gateway's id of the request.
pub const REQUEST_ID_HEADER: &str = "x-aigate-request-id";

/// The last thing that went wrong, for the answer when no attempt is left.
enum Failure {
    Transport(TransportFailure),
    Response {
        status: u16,
        content_type: Option<HeaderValue>,
        body: Bytes,
        retry_after: Option<Duration>,
    },
}

/// Why the attempt loop stopped without delivering.
enum Stop {
    Exhausted,
    NoCapacity(NoCapacity),
}

pub fn new_request_id() -> String {
    format!("req_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}

/// Runs one proxied request end to end.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let config = state.config.clone();
    let ip = guard::client_ip(&req, &config.server.trusted_proxies);
    let request_id = new_request_id();
    let mut finisher = Some(Finisher::new(
        state.clone(),
        &request_id,
        ip,
        req.method().as_str(),
        req.path(),
    ));
    let call = route::classify(req.path(), &config);
    let dialect = call.as_ref().map_or(Dialect::OpenAi, |c| c.dialect);
    let result = match guard::guard(&state, ip).await {
        Err(e) => Err(e),
        Ok(()) => match &call {
            Some(call) => proxy(&req, payload, &state, &client, call, &mut finisher).await,
            None => Err(GatewayError::UnknownRoute {
                method: req.method().to_string(),
                path: req.path().to_string(),
            }),
        },
    };
    let mut response = result.unwrap_or_else(|err| {
        if err.counts_against_ip() {
            state.blacklist.record_error(ip);
        }
        if let Some(finisher) = finisher.take() {
            finisher.finish(Ending::Rejected {
                status: err.status().as_u16(),
                error: err.to_string(),
            });
        }
        err.to_response(dialect)
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

async fn proxy(
    req: &HttpRequest,
    payload: web::Payload,
    state: &web::Data<AppState>,
    client: &awc::Client,
    call: &ApiCall,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    let config = state.config.clone();
    let who = auth::authenticate(req.headers(), &state.client_keys, &config.auth)?;
    if let Some(f) = finisher.as_mut() {
        f.set_client(who.log_id());
    }
    let own_key = match &who {
        Client::Passthrough { key } => Some(key.clone()),
        _ => None,
    };

    let limit = config.server.max_body_bytes;
    if declared_length(req).is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit_bytes: limit });
    }
    let buffered = call.kind != CallKind::Other || is_json(req);
    let (mut body, peek) = match buffered {
        true => {
            let bytes = read_body(payload, limit).await?;
            let peek = match bytes.is_empty() && call.kind == CallKind::Other {
                true => RequestPeek::default(),
                false => RequestPeek::from_json(&bytes)
                    .map_err(|e| GatewayError::InvalidJson(e.to_string()))?,
            };
            (OutgoingBody::Bytes(bytes), peek)
        }
        false => (OutgoingBody::Stream(Some(payload)), RequestPeek::default()),
    };
    if let Some(f) = finisher.as_mut() {
        f.set_request(peek.model.as_deref(), peek.stream);
    }

    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let candidates = route::candidates(&config, call, host, peek.model.as_deref())?;
    let max_attempts = match body {
        OutgoingBody::Stream(_) => 1,
        OutgoingBody::Bytes(_) => config.limits.max_attempts,
    };
    let idle = config.server.request_timeout;
    let query = req.query_string();

    let mut excluded = Vec::new();
    let mut last: Option<Failure> = None;
    let mut attempts = 0;
    let stop = loop {
        if attempts >= max_attempts {
            break Stop::Exhausted;
        }
        let selected =
            match select::select(state, &candidates, &excluded, own_key.is_some()).await? {
                Ok(selected) => selected,
                Err(no_capacity) => break Stop::NoCapacity(no_capacity),
            };
        attempts += 1;
        let endpoint = &config.endpoints[selected.endpoint];
        let upstream_model = peek.model.as_deref().map(|m| endpoint.upstream_model(m));
        if let Some(f) = finisher.as_mut() {
            f.begin_attempt(selected.endpoint, &endpoint.id, upstream_model);
        }
        let rewrite = BodyRewrite {
            model: upstream_model
                .filter(|up| Some(*up) != peek.model.as_deref())
                .map(str::to_string),
            ask_stream_usage: call.kind == CallKind::ChatCompletions
                && peek.stream
                && !peek.include_usage,
        };
        let mut attempt_body = match &mut body {
            OutgoingBody::Bytes(bytes) => OutgoingBody::Bytes(
                rewrite
                    .apply(bytes.clone())
                    .map_err(|e| GatewayError::InvalidJson(e.to_string()))?,
            ),
            OutgoingBody::Stream(payload) => OutgoingBody::Stream(payload.take()),
        };
        let drop_usage_chunk = rewrite.ask_stream_usage;

        if endpoint.provider == ProviderKind::Mock {
            let OutgoingBody::Bytes(bytes) = &attempt_body else {
                return Err(GatewayError::UnknownRoute {
                    method: req.method().to_string(),
                    path: format!("{} (the mock endpoint does not serve it)", call.api_path),
                });
            };
            let reply = local::mock_reply(
                call,
                bytes,
                peek.model.as_deref().unwrap_or_default(),
                peek.stream,
                Duration::from_millis(endpoint.latency_ms),
            )?;
            let mut builder = HttpResponse::build(status_code(reply.status));
            builder.content_type(reply.content_type);
            let transform = transform_for(call, peek.stream, drop_usage_chunk, peek.stream);
            return Ok(respond(
                builder,
                None,
                reply.body,
                transform,
                reply.status,
                idle,
                finisher,
            ));
        }

        let key = selected
            .lease
            .as_ref()
            .map(|lease| lease.key.expose())
            .or(own_key.as_ref().map(|k| k.expose()));
        let sent = send::send(
            client,
            Attempt {
                endpoint,
                method: req.method(),
                api_path: &call.api_path,
                query,
                client_headers: req.headers(),
                key,
                timeout: idle,
            },
            &mut attempt_body,
        )
        .await;
        let response = match sent {
            Ok(response) => response,
            Err(failure) => {
                log::warn!("endpoint {} failed: {failure:?}", endpoint.id);
                if let Some(lease) = selected.lease {
                    state.key_pool.report(
                        lease,
                        KeyOutcome::Failed {
                            reason: format!("{failure:?}"),
                        },
                    );
                }
                excluded.push(selected.endpoint);
                last = Some(Failure::Transport(failure));
                continue;
            }
        };
        let status = response.status();
        let retry_after = send::retry_after(response.headers());
        let verdict = send::classify(status, retry_after, selected.lease.is_some());
        let mut builder = HttpResponse::build(status);
        for (name, value) in response.headers() {
            if send::forwards_response_header(name.as_str()) {
                builder.append_header((name.clone(), value.clone()));
            }
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let content_type = response.headers().get("content-type").cloned();
        let mut upstream = send::body_stream(response);
        match verdict {
            Verdict::Deliver => {
                let transform = transform_for(call, peek.stream, drop_usage_chunk, is_sse);
                // Peek the first chunk of a stream before committing the 200,
                // so a stream that dies at once can still go elsewhere.
                let first = match is_sse {
                    false => None,
                    true => match tokio::time::timeout(idle, upstream.next()).await {
                        Ok(Some(Ok(chunk))) => Some(chunk),
                        other => {
                            let reason = match other {
                                Err(_) => TransportFailure::Timeout,
                                Ok(Some(Err(e))) => TransportFailure::Other(e),
                                _ => TransportFailure::Other(
                                    "stream ended before its first event".into(),
                                ),
                            };
                            if let Some(lease) = selected.lease {
                                state.key_pool.report(
                                    lease,
                                    KeyOutcome::Failed {
                                        reason: format!("{reason:?}"),
                                    },
                                );
                            }
                            excluded.push(selected.endpoint);
                            last = Some(Failure::Transport(reason));
                            continue;
                        }
                    },
                };
                if let Some(f) = finisher.as_mut() {
                    f.keep_lease(selected.lease);
                }
                return Ok(respond(
                    builder,
                    first,
                    upstream,
                    transform,
                    status.as_u16(),
                    idle,
                    finisher,
                ));
            }
            Verdict::Final => {
                if let Some(f) = finisher.as_mut() {
                    f.keep_lease(selected.lease);
                }
                return Ok(respond(
                    builder,
                    None,
                    upstream,
                    Box::new(Passthrough),
                    status.as_u16(),
                    idle,
                    finisher,
                ));
            }
            Verdict::OtherKey(outcome) => {
                log::warn!(
                    "endpoint {} answered {status}; trying another key",
                    endpoint.id
                );
                if let Some(lease) = selected.lease {
                    state.key_pool.report(lease, outcome);
                }
            }
            Verdict::OtherEndpoint => {
                log::warn!(
                    "endpoint {} answered {status}; trying another endpoint",
                    endpoint.id
                );
                if let Some(lease) = selected.lease {
                    state.key_pool.report(
                        lease,
                        KeyOutcome::Failed {
                            reason: format!("upstream answered {status}"),
                        },
                    );
                }
                excluded.push(selected.endpoint);
            }
        }
        let body = send::read_bounded(upstream, FAILED_BODY_LIMIT, Duration::from_secs(5)).await;
        last = Some(Failure::Response {
            status: status.as_u16(),
            content_type,
            body,
            retry_after,
        });
    };
    give_up(stop, last, attempts, finisher)
}

/// The answer when no attempt delivered.
fn give_up(
    stop: Stop,
    last: Option<Failure>,
    attempts: u32,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    if let Stop::NoCapacity(NoCapacity::Busy { retry_after }) = stop {
        return Err(GatewayError::RateLimited {
            scope: LimitScope::Endpoints,
            retry_after,
        });
    }
    match last {
        None => Err(GatewayError::NoUsableKey),
        Some(Failure::Transport(TransportFailure::Timeout)) => {
            Err(GatewayError::UpstreamTimeout { attempts })
        }
        Some(Failure::Transport(TransportFailure::Other(message))) => {
            Err(GatewayError::UpstreamUnavailable {
                attempts,
                last: message,
            })
        }
        Some(Failure::Response {
            status: 429,
            retry_after,
            ..
        }) => Err(GatewayError::RateLimited {
            scope: LimitScope::Endpoints,
            retry_after: retry_after.unwrap_or(DEFAULT_COOLDOWN),
        }),
        Some(Failure::Response {
            status: status @ (401 | 403),
            ..
        }) => Err(GatewayError::UpstreamUnavailable {
            attempts,
            last: format!("upstream refused the gateway's key ({status})"),
        }),
        Some(Failure::Response {
            status,
            content_type,
            body,
            ..
        }) => {
            // The upstream's own error (a 5xx) is the most useful answer.
            if let Some(f) = finisher.take() {
                f.finish(Ending::Rejected {
                    status,
                    error: format!("upstream answered {status} after {attempts} attempt(s)"),
                });
            }
            let mut builder = HttpResponse::build(status_code(status));
            if let Some(content_type) = content_type {
                builder.insert_header(("content-type", content_type));
            }
            Ok(builder.body(body))
        }
    }
}

fn respond(
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

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY)
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
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, GatewayError> {
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
