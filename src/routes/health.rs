//! `GET /health`: 200 when storage answers, 503 otherwise. No auth, so load
//! balancers can call it.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;
use crate::storage::writer::Ping;

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match state.writer.send(Ping).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "error", "error": e.to_string()})),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "error", "error": e.to_string()})),
    }
}
