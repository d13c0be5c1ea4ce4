//! The request pipeline: guard → auth → route → select → send → finish, each
//! step a module that can be read and tested alone. [`handle`] is the one
//! entry point the proxied routes call; [`attempts`] tries keys and
//! endpoints while nothing has reached the client, [`deliver`] shapes the
//! reply, and the finish step runs whatever happens.

pub mod attempts;
pub mod auth;
pub mod body;
pub mod deliver;
pub mod finish;
pub mod guard;
pub mod local;
pub mod relay;
pub mod route;
pub mod route_index;
pub mod select;
pub mod send;
pub mod transform;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::Dialect;
use crate::error::GatewayError;
use crate::state::{AppState, Live, Worker};
use crate::textfmt;
use auth::Client;
use finish::{Ending, Finisher};
use route::ApiCall;

/// Header carrying the gateway's id of the request.
pub const REQUEST_ID_HEADER: &str = "x-aigate-request-id";

/// `req_` and 24 random hex digits.
pub fn new_request_id() -> String {
    textfmt::random_id("req_")
}

/// Runs one proxied request end to end.
///
/// The big steps (`proxy`, `attempts::run`, `deliver::success`) are awaited
/// boxed. An awaited future's state is stored inside its caller's, and rustc
/// lays an async call out about twice (the call's value and the awaited
/// state), so the sizes compounded: unboxed, the handler's future was 46 KB
/// (attempts 4 KB → proxy 9 KB → handle 19 KB → route handler 46 KB), all
/// of it copied when actix boxes the handler's future, once per request.
/// Boxed, no future on the path is over 3.5 KB, for four small allocations.
///
/// Shared state is reached through the worker's handle (see
/// `state::worker`), so the request counts no reference another core
/// counts too.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    worker: web::Data<Worker>,
) -> HttpResponse {
    // One snapshot for the whole request: a reload meanwhile does not
    // change the endpoints it chose from.
    let live = worker.live();
    let state = worker.state();
    let config = &live.config;
    let ip = guard::client_ip(&req, &config.server.trusted_proxies);
    let request_id = new_request_id();
    let id_header = HeaderValue::from_str(&request_id).ok();
    let mut finisher = Some(Finisher::new(
        worker.clone(),
        live.clone(),
        request_id,
        ip,
        req.method().as_str(),
        req.path(),
    ));
    let call = route::classify(req.path(), config);
    let dialect = call.as_ref().map_or(Dialect::OpenAi, |c| c.dialect);
    let result = match guard::guard(&live, ip).await {
        Err(e) => Err(e),
        Ok(()) => match &call {
            Some(call) => {
                let context = Context {
                    state,
                    live: &live,
                    http: worker.http(),
                    ip,
                };
                Box::pin(proxy(&req, payload, context, call, &mut finisher)).await
            }
            None => Err(GatewayError::UnknownRoute {
                method: req.method().to_string(),
                path: req.path().to_string(),
            }),
        },
    };
    let mut response = result.unwrap_or_else(|err| {
        if err.counts_against_ip() {
            let weight = match err {
                GatewayError::Unauthorized => config.auth.invalid_key_weight,
                _ => 1,
            };
            live.blacklist.record_error(ip, weight);
        }
        if let Some(finisher) = finisher.take() {
            finisher.finish(Ending::Rejected {
                status: err.status().as_u16(),
                error: err.to_string(),
            });
        }
        err.to_response(dialect)
    });
    if let Some(value) = id_header {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

/// What one request carries through its steps.
struct Context<'a> {
    state: &'a AppState,
    live: &'a Live,
    http: &'a awc::Client,
    ip: std::net::IpAddr,
}

/// Auth, body, route; then the attempts.
async fn proxy(
    req: &HttpRequest,
    payload: web::Payload,
    context: Context<'_>,
    call: &ApiCall,
    finisher: &mut Option<Finisher>,
) -> Result<HttpResponse, GatewayError> {
    let Context {
        state,
        live,
        http,
        ip,
    } = context;
    let config = &live.config;
    // A request with no key is refused before its body is read.
    let key = auth::presented_key(req.headers());
    if key.is_none() && !config.auth.allow_anonymous {
        return Err(GatewayError::Unauthorized);
    }
    let (body, peek) = body::take(req, payload, call, config.server.max_body_bytes).await?;
    if let Some(f) = finisher.as_mut() {
        f.set_request(peek.model.as_deref(), peek.stream);
    }
    if let Some(phrase) = body::rejected_phrase(&body, &config.limits.reject_phrases) {
        log::warn!("refused a request from {ip}: it contains reject phrase #{phrase}");
        return Err(GatewayError::Forbidden {
            code: "content_refused",
            message: "This request contains content this gateway refuses.".into(),
        });
    }
    let who = auth::admit(
        state,
        &config.auth,
        key,
        req.conn_data::<auth::ConnectionKey>(),
        ip,
        peek.model.as_deref(),
        body::prompt_estimate(&body, call),
    )
    .await?;
    if let Some(f) = finisher.as_mut() {
        f.set_client(who.log_id());
        if let Client::User {
            id, reservation, ..
        } = &who
        {
            f.set_user(id.clone(), reservation.clone());
        }
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let candidates = route::candidates(config, call, host, peek.model.as_deref())?;
    let own_key = match who {
        Client::Passthrough { key } => Some(key),
        _ => None,
    };
    let request = attempts::Request {
        req,
        state,
        live,
        http,
        call,
        peek: &peek,
        candidates,
        own_key,
    };
    Box::pin(attempts::run(request, body, finisher)).await
}
