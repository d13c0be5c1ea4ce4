//! `/admin/api/users`: list, create, read, change, delete, disable, enable,
//! rotate a key, reset quotas. The Users actor does the work; this file only
//! turns HTTP into its messages. A plain key appears in exactly two answers
//! (create and rotate), once, marked `Cache-Control: no-store`.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use super::parse_body;
use crate::state::AppState;
use crate::users::actor::{Create, Delete, Get, List, NewUser, Rotate, Update, UserPatch};
use crate::users::view::UserView;

#[derive(Serialize)]
struct UserList {
    data: Vec<UserView>,
}

#[derive(Serialize)]
struct Deleted {
    id: String,
    deleted: bool,
}

type Answer = Result<HttpResponse, AdminError>;

/// The view with the plain key in place of its hint: shown this once.
fn with_key(mut view: UserView, key: String, created: bool) -> HttpResponse {
    view.key = key;
    let mut response = match created {
        true => HttpResponse::Created(),
        false => HttpResponse::Ok(),
    };
    response
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(view)
}

/// `GET /admin/api/users`: every user, by id.
pub async fn list(_: Admin, state: web::Data<AppState>) -> Answer {
    let mut data = Vec::new();
    for view in state.users.send(List).await? {
        data.push(state.users.with_shared_usage(view).await);
    }
    Ok(HttpResponse::Ok().json(UserList { data }))
}

/// `POST /admin/api/users`: 201 with the new key, shown this once.
pub async fn create(admin: Admin, state: web::Data<AppState>, body: web::Bytes) -> Answer {
    let new: NewUser = parse_body(&body)?;
    let (view, key) = state.users.send(Create(new)).await??;
    log::info!("admin {}: created user {}", admin.user_id, view.id);
    Ok(with_key(view, key, true))
}

/// `GET /admin/api/users/{id}`.
pub async fn get(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    let view = state.users.send(Get(id.into_inner())).await??;
    let view = state.users.with_shared_usage(view).await;
    Ok(HttpResponse::Ok().json(view))
}

/// `PATCH /admin/api/users/{id}`: absent fields stay, `null` clears a limit.
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Answer {
    let patch: UserPatch = parse_body(&body)?;
    let id = id.into_inner();
    let view = state.users.send(Update { id, patch }).await??;
    let view = state.users.with_shared_usage(view).await;
    log::info!("admin {}: updated user {}", admin.user_id, view.id);
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /admin/api/users/{id}`: the key stops working at once.
pub async fn delete(admin: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    let id = id.into_inner();
    state.users.send(Delete(id.clone())).await??;
    log::info!("admin {}: deleted user {id}", admin.user_id);
    Ok(HttpResponse::Ok().json(Deleted { id, deleted: true }))
}

async fn set_enabled(state: &AppState, id: String, enabled: bool) -> Answer {
    let patch = UserPatch {
        enabled: Some(enabled),
        ..UserPatch::default()
    };
    let view = state.users.send(Update { id, patch }).await??;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /admin/api/users/{id}/disable`.
pub async fn disable(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    set_enabled(&state, id.into_inner(), false).await
}

/// `POST /admin/api/users/{id}/enable`: also forgets the IPs seen, so a user
/// disabled for too many IPs starts over.
pub async fn enable(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    set_enabled(&state, id.into_inner(), true).await
}

/// `POST /admin/api/users/{id}/rotate`: a new key, shown this once; the old
/// one stops working at once.
pub async fn rotate(admin: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    let (view, key) = state.users.send(Rotate(id.into_inner())).await??;
    log::info!(
        "admin {}: rotated the key of user {}",
        admin.user_id,
        view.id
    );
    Ok(with_key(view, key, false))
}

/// `POST /admin/api/users/{id}/reset-quota`: every quota starts over.
pub async fn reset_quota(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Answer {
    let view = state.users.reset_quota(id.into_inner()).await??;
    Ok(HttpResponse::Ok().json(view))
}
