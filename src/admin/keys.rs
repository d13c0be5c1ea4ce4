//! `/admin/api/keys`: upstream keys of an endpoint, managed at runtime. Keys
//! are listed by id and hint (`…` and the last 4 characters), never by
//! value; a new key is sealed by the vault before it is stored, so without
//! a master key adding is refused (409 `no_master_key`). Admin role only
//! (the [`Admin`] extractor).
//!
//! - `GET /admin/api/keys[?endpoint=ID]` → `{"keys": [KeyInfo]}`
//! - `POST /admin/api/keys` `{endpoint, key, budget_usd?}` → 201 `{endpoint, id, hint}`
//! - `DELETE /admin/api/keys/{endpoint}/{key_id}` → the removed `KeyInfo`
//! - `POST /admin/api/keys/{endpoint}/{key_id}/disable|enable` → `KeyInfo`

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::AdminError;
use crate::actors::key_pool::{KeyAdminError, KeyInfo};
use crate::config::Secret;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| {
        web::resource(path.to_string()).default_service(web::to(super::error::method_not_allowed))
    };
    cfg.service(resource("/keys").get(list).post(add))
        .service(resource("/keys/{endpoint}/{key_id}").delete(remove))
        .service(resource("/keys/{endpoint}/{key_id}/disable").post(disable))
        .service(resource("/keys/{endpoint}/{key_id}/enable").post(enable));
}

/// The body of `POST /admin/api/keys`. No `Debug`: it holds the key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddKeyRequest {
    pub endpoint: String,
    pub key: String,
    #[serde(default)]
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    endpoint: Option<String>,
}

/// `GET /admin/api/keys`.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// The one mapping of key-management errors to admin errors (and so HTTP).
impl From<KeyAdminError> for AdminError {
    fn from(e: KeyAdminError) -> Self {
        let message = e.to_string();
        let conflict = |code| AdminError::Conflict {
            code,
            message: message.clone(),
        };
        let not_found = |code| AdminError::NotFound {
            code,
            message: message.clone(),
        };
        match e {
            KeyAdminError::NoMasterKey => conflict("no_master_key"),
            KeyAdminError::ConfigKey { .. } => conflict("config_key"),
            KeyAdminError::Duplicate { .. } => conflict("duplicate_key"),
            KeyAdminError::NotLoaded { .. } => conflict("key_not_loaded"),
            KeyAdminError::UnknownEndpoint(_) => not_found("unknown_endpoint"),
            KeyAdminError::UnknownKey { .. } => not_found("unknown_key"),
            KeyAdminError::Invalid(_) => AdminError::BadRequest(message),
            KeyAdminError::Storage(_) => AdminError::Internal(message),
        }
    }
}

type Answer = Result<HttpResponse, AdminError>;

async fn list(_: Admin, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| AdminError::BadRequest(format!("Bad query string: {e}")))?
        .into_inner();
    let keys = state.key_pool.list_keys(query.endpoint.as_deref()).await?;
    Ok(HttpResponse::Ok().json(KeyList { keys }))
}

async fn add(_: Admin, body: web::Bytes, state: web::Data<AppState>) -> Answer {
    let request: AddKeyRequest = super::parse_body(&body)?;
    let added = state
        .key_pool
        .add_key(
            &request.endpoint,
            Secret::new(request.key),
            request.budget_usd,
        )
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(added))
}

async fn remove(_: Admin, path: web::Path<(String, String)>, state: web::Data<AppState>) -> Answer {
    let (endpoint, key_id) = path.into_inner();
    let removed = state.key_pool.remove_key(&endpoint, &key_id).await?;
    Ok(HttpResponse::Ok().json(removed))
}

async fn set_disabled(
    path: web::Path<(String, String)>,
    state: &AppState,
    disabled: bool,
) -> Answer {
    let (endpoint, key_id) = path.into_inner();
    let key = state
        .key_pool
        .set_key_disabled(&endpoint, &key_id, disabled)
        .await?;
    Ok(HttpResponse::Ok().json(key))
}

async fn disable(
    _: Admin,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Answer {
    set_disabled(path, &state, true).await
}

async fn enable(_: Admin, path: web::Path<(String, String)>, state: web::Data<AppState>) -> Answer {
    set_disabled(path, &state, false).await
}
