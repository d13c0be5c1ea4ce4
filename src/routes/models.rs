//! `GET /v1/models`: the union of the models the enabled endpoints declare,
//! in OpenAI's list shape.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::pipeline::route::{available_models, is_open};
use crate::state::AppState;

pub async fn list_models(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = super::admit(&req, &state, false).await {
        return e.to_response(super::dialect_of(&req));
    }
    let config = state.config();
    let endpoints = &config.endpoints;
    let data: Vec<_> = available_models(endpoints.iter().filter(|e| is_open(e)))
        .into_iter()
        .map(|id| {
            let owner = endpoints
                .iter()
                .find(|e| {
                    e.serves(&id) && (e.models.contains(&id) || e.model_mapping.contains_key(&id))
                })
                .map_or("aigate", |e| e.provider.as_str());
            json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}
