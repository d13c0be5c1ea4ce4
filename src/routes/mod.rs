//! The whole route table, in one `configure` function: the gateway's own
//! endpoints (health, status, models) and everything proxied.

mod health;
mod models;
mod status;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::Dialect;
use crate::error::GatewayError;
use crate::pipeline::{self, auth, guard};
use crate::realtime;
use crate::state::{AppState, Worker};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/v1/status", web::get().to(status::status))
        .route("/v1/models", web::get().to(models::list_models))
        .route("/v1/realtime", web::get().to(realtime::handle))
        .configure(crate::admin::configure)
        // Everything else: /v1/* and /{route_prefix}/v1/*, any method.
        .default_service(web::to(unnamed));
}

/// The paths the table does not name: proxied, except a GET of
/// `/{route_prefix}/v1/realtime`, a Realtime session. Told apart by the
/// path's end rather than by a `/{prefix:.+}/v1/realtime` route, which actix
/// would match with a regex against every proxied request.
async fn unnamed(
    req: HttpRequest,
    payload: web::Payload,
    worker: web::Data<Worker>,
) -> HttpResponse {
    if req.method() == Method::GET && req.path().ends_with("/v1/realtime") {
        let state = worker.state().clone();
        return Box::pin(realtime::handle(req, payload, state)).await;
    }
    // Boxed, like the steps inside (see `pipeline::handle`): actix moves this
    // handler's future into a box of its own for every request.
    Box::pin(pipeline::handle(req, payload, worker)).await
}

/// Guard and auth for the gateway's own endpoints; errors count against the
/// IP like any other. `keys_only`: passthrough clients are not enough.
async fn admit(req: &HttpRequest, state: &AppState, keys_only: bool) -> Result<(), GatewayError> {
    let live = state.live();
    let config = &live.config;
    let ip = guard::client_ip(req, &config.server.trusted_proxies);
    guard::guard(&live, ip).await?;
    let admitted = match auth::identify(state, req.headers()).await {
        Ok(_) => Ok(()),
        Err(GatewayError::Unauthorized) if !keys_only && config.auth.passthrough => {
            match auth::presented_key(req.headers()) {
                Some(_) => Ok(()),
                None => Err(GatewayError::Unauthorized),
            }
        }
        Err(GatewayError::Unauthorized) if config.auth.allow_anonymous => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = &admitted {
        if e.counts_against_ip() {
            live.blacklist
                .record_error(ip, config.auth.invalid_key_weight);
        }
    }
    admitted
}

/// Own endpoints answer in the OpenAI dialect, unless the client sent
/// Anthropic's version header.
fn dialect_of(req: &HttpRequest) -> Dialect {
    match req.headers().contains_key("anthropic-version") {
        true => Dialect::Anthropic,
        false => Dialect::OpenAi,
    }
}
