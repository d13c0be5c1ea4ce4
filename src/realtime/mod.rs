//! The OpenAI Realtime API, relayed over WebSocket: voice apps point their
//! socket at the gateway instead of the provider and get the gateway's keys,
//! limits and usage log.
//!
//! `GET /v1/realtime?model=…` (also under a route prefix) runs the HTTP
//! pipeline's steps — guard, auth, route, select — then dials the upstream
//! and only answers the client's upgrade once the upstream has accepted, so a
//! refused handshake can still go to another key or endpoint, and a session
//! that cannot open is an ordinary HTTP error in the OpenAI dialect.
//!
//! - `client.rs`: what the upgrade request says (key, subprotocols, model).
//! - `dial.rs`: candidates and the handshake attempts.
//! - `upstream.rs`: URL and auth per provider kind, one handshake.
//! - `relay.rs`: the two-way pump, backpressure, close handling, idle timeout.
//! - `frame.rs`: frames and close codes between the two WebSocket libraries.
//! - `usage.rs`: token usage from `response.done` events.
//! - `record.rs`: usage records, key outcome and log lines of a session.
//! - `sessions.rs`: the per-user cap on concurrent sessions.
//! - `error.rs`: refusals, mapped to HTTP.

pub mod client;
pub mod dial;
pub mod error;
pub mod frame;
pub mod record;
pub mod relay;
pub mod sessions;
pub mod upstream;
pub mod usage;

use std::net::IpAddr;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::GatewayError;
use crate::pipeline::auth::{self, Client};
use crate::pipeline::{guard, new_request_id, route, REQUEST_ID_HEADER};
use crate::state::{AppState, Live};
use crate::users::admission::Used;
use error::RealtimeError;
use record::SessionLog;

/// The API path this module serves.
pub const REALTIME_PATH: &str = "/v1/realtime";

/// `GET /v1/realtime` and `GET /{route_prefix}/v1/realtime`.
pub async fn handle(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let live = state.live();
    let ip = guard::client_ip(&req, &live.config.server.trusted_proxies);
    let session_id = new_request_id();
    let mut log = SessionLog::new(state.clone(), &session_id, ip, req.path());
    let mut response = match admit(&req, &state, &live, ip, &mut log).await {
        Ok(admitted) => start(&req, body, &live, ip, admitted, log),
        Err(err) => refuse(&live, ip, log, &err),
    };
    if let Ok(value) = HeaderValue::from_str(&session_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

/// A session whose upstream socket is open, waiting for the client's upgrade.
struct Admitted {
    upstream: upstream::UpstreamSocket,
    slot: sessions::SessionSlot,
    limits: relay::Limits,
}

/// Guard, route, auth, the session cap, then the handshake attempts.
async fn admit(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    live: &Live,
    ip: IpAddr,
    log: &mut SessionLog,
) -> Result<Admitted, RealtimeError> {
    let config = live.config.clone();
    guard::guard(live, ip).await?;
    let call = route::classify(req.path(), &config)
        .filter(|call| call.api_path.trim_end_matches('/') == REALTIME_PATH)
        .ok_or_else(|| GatewayError::UnknownRoute {
            method: req.method().to_string(),
            path: req.path().to_string(),
        })?;
    if !client::is_upgrade(req) {
        return Err(RealtimeError::NotUpgrade);
    }
    let headers = client::auth_headers(req.headers());
    let key = auth::presented_key(&headers);
    if key.is_none() && !config.auth.allow_anonymous {
        return Err(GatewayError::Unauthorized.into());
    }
    let model = client::model(req.query_string()).ok_or(GatewayError::ModelMissing)?;
    // The user's rules apply at connect (expiry, models, IPs, RPM); the
    // session holds no token reservation: each `response.done` is charged
    // as it comes.
    let who = auth::admit(state, &config.auth, key, None, ip, Some(&model), 0).await?;
    if let Client::User {
        id, reservation, ..
    } = &who
    {
        state.users.charge(
            id.clone(),
            reservation.clone(),
            Used {
                counted: true,
                ..Used::default()
            },
        );
        log.set_user(id.clone());
    }
    let user = who.log_id();
    log.set_client(user.clone());
    log.set_model(&model);
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let candidates = dial::candidates(&config, &call, host, &model)?;
    let cap = config.realtime.max_sessions_per_user;
    let slot = sessions::claim(state, &user, cap).ok_or(RealtimeError::TooManySessions {
        limit: cap.unwrap_or(0),
    })?;

    let beta = client::beta(req.headers());
    let extra_query = client::other_params(req.query_string());
    let plan = dial::Plan {
        model: &model,
        extra_query: &extra_query,
        beta: beta.as_deref(),
        own_key: match &who {
            Client::Passthrough { key } => Some(key),
            _ => None,
        },
    };
    let dialed = dial::dial(state, live, &candidates, &plan, log).await?;
    log.opened(dialed.lease);
    Ok(Admitted {
        upstream: dialed.socket,
        slot,
        limits: relay::Limits {
            idle: config.realtime.idle_timeout,
            max_queued_bytes: config.realtime.max_queued_bytes,
        },
    })
}

/// Answers the client's upgrade and runs the session on its own task,
/// which owns the session's accounting from here on.
fn start(
    req: &HttpRequest,
    body: web::Payload,
    live: &Live,
    ip: IpAddr,
    admitted: Admitted,
    mut log: SessionLog,
) -> HttpResponse {
    let Admitted {
        upstream,
        slot,
        limits,
    } = admitted;
    let (response, session, stream) =
        match actix_ws::handle_with_protocols(req, body, &[client::REALTIME_PROTOCOL]) {
            Ok(parts) => parts,
            Err(e) => {
                let err = GatewayError::BadRequest(format!("WebSocket handshake: {e}"));
                return refuse(live, ip, log, &err.into());
            }
        };
    let stream = stream
        .max_frame_size(limits.max_queued_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_queued_bytes);
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let mut on_text = |text: &str| {
            if let Some(usage) = usage::response_done(text) {
                log.response(usage);
            }
        };
        let outcome = relay::relay(session, stream, upstream, limits, &mut on_text).await;
        log.closed(outcome);
    });
    response
}

/// The HTTP answer to a session that did not open, and its record.
fn refuse(live: &Live, ip: IpAddr, log: SessionLog, err: &RealtimeError) -> HttpResponse {
    if err.counts_against_ip() {
        let weight = match err {
            RealtimeError::Gateway(GatewayError::Unauthorized) => {
                live.config.auth.invalid_key_weight
            }
            _ => 1,
        };
        live.blacklist.record_error(ip, weight);
    }
    log.rejected(err.status().as_u16(), err.to_string());
    err.to_response()
}
