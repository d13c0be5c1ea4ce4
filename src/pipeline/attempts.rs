//! The attempt loop: select an endpoint and a key, plan the upstream request
//! with the endpoint's adapter, send it, and classify the answer. Retries go
//! to another key (429, 401/403) or another endpoint (connect errors,
//! timeouts, 5xx) up to `max_attempts`, and only while nothing has reached
//! the client.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use super::deliver::{self, Delivery};
use super::finish::{Ending, Finisher};
use super::route::{ApiCall, CallKind};
use super::select::{self, NoCapacity};
use super::send::{self, OutgoingBody, TransportFailure, Verdict};
use crate::actors::key_pool::{KeyOutcome, DEFAULT_COOLDOWN};
use crate::api::RequestPeek;
use crate::config::{ProviderKind, Secret};
use crate::error::{GatewayError, LimitScope};
use crate::providers::plan::{PlanError, PlanInput, ReplyPlan};
use crate::providers::{self, PlanContext};
use crate::state::{AppState, Live};

/// Bytes of a failed attempt's body kept, in case it is the final answer.
const FAILED_BODY_LIMIT: usize = 64 * 1024;

/// Looked up as a static: by `&str`, a non-standard name is parsed and
/// copied to the heap on every request.
static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");

/// What stays the same across the attempts of one client request.
pub struct Request<'a> {
    pub req: &'a HttpRequest,
    pub state: &'a AppState,
    /// The snapshot the request started with.
    pub live: &'a Live,
    pub http: &'a awc::Client,
    pub call: &'a ApiCall,
    pub peek: &'a RequestPeek,
    pub candidates: Vec<usize>,
    /// A passthrough client's own key.
    pub own_key: Option<Secret>,
}

/// The last thing that went wrong, for the answer when no attempt is left.
enum Failure {
    Transport(TransportFailure),
    Response {
        status: u16,
        content_type: Option<HeaderValue>,
        body: Bytes,
        retry_after: Option<Duration>,
        /// The body is in the upstream's format, not the client's.
        foreign: bool,
    },
}

/// Why the loop stopped without delivering.
enum Stop {
    Exhausted,
    NoCapacity(NoCapacity),
}

pub async fn run(
    request: Request<'_>,
    mut body: OutgoingBody,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    let Request {
        req,
        state,
        live,
        http,
        call,
        peek,
        candidates,
        own_key,
    } = request;
    let config = live.config.clone();
    let max_attempts = match body {
        OutgoingBody::Stream(_) => 1,
        OutgoingBody::Bytes(_) => config.limits.max_attempts,
    };
    let idle = config.server.request_timeout;
    let client_model = peek.model.as_deref().unwrap_or("");
    let client_version = req
        .headers()
        .get(&ANTHROPIC_VERSION)
        .and_then(|v| v.to_str().ok());
    let context = PlanContext {
        http,
        vertex: &state.vertex,
        client_anthropic_version: client_version,
    };

    let mut excluded = Vec::new();
    let mut last: Option<Failure> = None;
    let mut attempts = 0;
    let mut refreshed_token = false;
    let stop = loop {
        if attempts >= max_attempts {
            break Stop::Exhausted;
        }
        let selected = match select::select(
            state,
            live,
            &candidates,
            &excluded,
            own_key.is_some(),
            client_model,
        )
        .await?
        {
            Ok(selected) => selected,
            Err(no_capacity) => break Stop::NoCapacity(no_capacity),
        };
        attempts += 1;
        let endpoint = &config.endpoints[selected.endpoint];
        let upstream_model = endpoint.upstream_model(client_model);
        if let Some(f) = finisher.as_mut() {
            f.begin_attempt(
                selected.endpoint,
                &endpoint.id,
                (!client_model.is_empty()).then_some(upstream_model),
            );
        }

        // Answers the gateway gives itself.
        let local = match (endpoint.provider, call.kind) {
            (ProviderKind::Mock, _) => true,
            (kind, CallKind::CountTokens) => !providers::counts_tokens_upstream(kind),
            _ => false,
        };
        if local {
            if let Some(lease) = selected.lease {
                state.key_pool.report(lease, KeyOutcome::Unused);
            }
            return deliver::local(call, peek, &body, endpoint, idle, finisher);
        }

        let key = selected
            .lease
            .as_ref()
            .map(|lease| lease.key.expose())
            .or(own_key.as_ref().map(|k| k.expose()));
        let input = PlanInput {
            endpoint,
            call,
            method: req.method(),
            query: req.query_string(),
            peek,
            client_model,
            upstream_model,
            key,
        };
        let planned = match providers::plan(&input, &mut body, &context).await {
            Ok(planned) => planned,
            Err(PlanError::Final(e)) => {
                if let Some(lease) = selected.lease {
                    state.key_pool.report(lease, KeyOutcome::Unused);
                }
                return Err(e);
            }
            Err(PlanError::Attempt {
                reason,
                key_outcome,
            }) => {
                log::warn!("endpoint {}: {reason}", endpoint.id);
                if let Some(lease) = selected.lease {
                    state.key_pool.report(lease, key_outcome);
                }
                last = Some(Failure::Transport(TransportFailure::Other(reason)));
                continue;
            }
        };
        let reply = planned.reply;
        let sent = send::send(http, planned, req.headers(), idle).await;
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
        let mut verdict = send::classify(status, retry_after, selected.lease.is_some());
        // A Vertex 401 may be an expired token: refresh it once first.
        if status == 401 && endpoint.provider == ProviderKind::Vertex && !refreshed_token {
            if let Some(key) = key {
                state.vertex.invalidate(key);
                refreshed_token = true;
                verdict = Verdict::OtherKey(KeyOutcome::Unused);
            }
        }
        match verdict {
            Verdict::Deliver => {
                match Box::pin(deliver::success(
                    response,
                    reply,
                    call,
                    peek,
                    idle,
                    finisher,
                    selected.lease.clone(),
                ))
                .await
                {
                    Delivery::Done(response) => return Ok(response),
                    Delivery::Failed(error) => return Err(error),
                    Delivery::Retry(reason) => {
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
                }
            }
            Verdict::Final => {
                if let Some(f) = finisher.as_mut() {
                    f.keep_lease(selected.lease);
                }
                return deliver::upstream_refusal(response, reply, idle, finisher).await;
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
        let content_type = response.headers().get("content-type").cloned();
        let body = send::read_bounded(
            send::body_stream(response),
            FAILED_BODY_LIMIT,
            Duration::from_secs(5),
        )
        .await;
        last = Some(Failure::Response {
            status: status.as_u16(),
            content_type,
            body,
            retry_after,
            foreign: !matches!(reply, ReplyPlan::Native { .. }),
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
            body,
            foreign: true,
            ..
        }) => Err(GatewayError::Upstream {
            status,
            message: crate::translate::body::upstream_error_message(&body),
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
            let mut builder = HttpResponse::build(deliver::status_code(status));
            if let Some(content_type) = content_type {
                builder.insert_header(("content-type", content_type));
            }
            Ok(builder.body(body))
        }
    }
}
