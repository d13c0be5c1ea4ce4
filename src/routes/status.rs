//! `GET /v1/status`: every endpoint with its limits, current usage and keys
//! (by id only: `…` and the last 4 characters, never the key).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::pipeline::route::is_open;
use crate::state::AppState;

pub async fn status(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = super::admit(&req, &state, true).await {
        return e.to_response(super::dialect_of(&req));
    }
    let keys = match state.key_pool.snapshot().await {
        Ok(keys) => keys,
        Err(e) => return e.to_response(super::dialect_of(&req)),
    };
    let live = state.live();
    let mut endpoints = Vec::with_capacity(live.config.endpoints.len());
    for (index, endpoint) in live.config.endpoints.iter().enumerate() {
        let usage = match live.rate_limiters[index].snapshot().await {
            Ok(usage) => usage,
            Err(e) => return e.to_response(super::dialect_of(&req)),
        };
        let endpoint_keys = keys.get(index).cloned().unwrap_or_default();
        let needs_keys = endpoint.provider != crate::config::ProviderKind::Mock;
        let has_key = !needs_keys || endpoint_keys.iter().any(|k| k.state == "active");
        endpoints.push(json!({
            "id": endpoint.id,
            "name": endpoint.name,
            "provider": endpoint.provider.as_str(),
            "enabled": endpoint.enabled,
            "available": is_open(endpoint) && usage.has_room && has_key,
            "limits": {"rpm": endpoint.rpm.as_i64(), "rpd": endpoint.rpd.as_i64()},
            "usage": {"rpm": usage.rpm, "rpd": usage.rpd},
            "keys": endpoint_keys,
        }));
    }
    HttpResponse::Ok().json(json!({
        "service": "aigate",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "uptime_secs": state.started.elapsed().as_secs(),
        "endpoints": endpoints,
    }))
}
