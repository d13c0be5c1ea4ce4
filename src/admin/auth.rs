//! Admin-only access. Every admin handler takes an [`Admin`] argument, so a
//! route cannot be added without the check. The key comes from
//! `Authorization: Bearer` or `x-api-key`, never from the URL (URLs end up
//! in logs and browser histories). The guard step applies first (blocked
//! networks, bans, the per-IP limit); an unknown key is a 401 that counts
//! against the IP like any other wrong key; a valid non-admin key is a 403.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::error::AdminError;
use crate::error::GatewayError;
use crate::pipeline::{auth, guard};
use crate::state::AppState;
use crate::users::model::Role;

/// Proof that the request carries an admin key.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin's user id (for logs).
    pub user_id: String,
}

/// Guard, then the key: the admin's user id, or why not.
pub async fn require_admin(req: &HttpRequest, state: &AppState) -> Result<Admin, AdminError> {
    let live = state.live();
    let ip = guard::client_ip(req, &live.config.server.trusted_proxies);
    guard::guard(&live, ip).await?;
    match auth::identify(state, req.headers()).await {
        Ok((user_id, Role::Admin)) => Ok(Admin { user_id }),
        Ok(_) => Err(AdminError::AdminOnly),
        Err(e) => {
            if matches!(e, GatewayError::Unauthorized) {
                live.blacklist
                    .record_error(ip, live.config.auth.invalid_key_weight);
            }
            Err(e.into())
        }
    }
}

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AdminError::Internal("no application state".into()))?;
            require_admin(&req, state).await
        })
    }
}
