//! `GET /health`: 200 when storage answers, 503 otherwise. No auth, so load
//! balancers can call it.
//!
//! With a shared Redis, a Redis that does not answer is reported as
//! `{"status":"degraded","redis":"down"}` with a 200: the instance still
//! serves (each limit follows its `on_redis_down_*` policy), so a load
//! balancer should keep it; taking every instance out would turn a Redis
//! outage into a full one.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::state::AppState;
use crate::storage::writer::Ping;

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let disk = match state.writer.send(Ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let redis = match &state.redis {
        None => None,
        Some(redis) => Some(match redis.ping().await {
            Ok(()) => "up",
            Err(_) => "down",
        }),
    };
    match (disk, redis) {
        (Err(error), redis) => HttpResponse::ServiceUnavailable().json(Health {
            status: "error",
            redis,
            error: Some(error),
        }),
        (Ok(()), Some("down")) => HttpResponse::Ok().json(Health {
            status: "degraded",
            redis: Some("down"),
            error: None,
        }),
        (Ok(()), redis) => HttpResponse::Ok().json(Health {
            status: "ok",
            redis,
            error: None,
        }),
    }
}
