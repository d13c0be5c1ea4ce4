//! `POST /admin/api/config/reload`: reloads the config file the gateway was
//! started with (the same as SIGHUP) and answers what changed. A file that
//! does not load changes nothing and is answered with its error.

use actix_web::{web, HttpResponse};

use super::auth::Admin;
use super::error::AdminError;
use crate::state::reload::ReloadError;
use crate::state::AppState;

pub async fn reload(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let report = state.reload().await?;
    log::info!("admin {}: config reloaded", admin.user_id);
    Ok(HttpResponse::Ok().json(report))
}

impl From<ReloadError> for AdminError {
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::NoConfigFile => AdminError::Conflict {
                code: "no_config_file",
                message: e.to_string(),
            },
            ReloadError::Config(_) => AdminError::Conflict {
                code: "invalid_config",
                message: format!("The config file does not load; nothing changed. {e}"),
            },
            ReloadError::State(_) => AdminError::Internal(e.to_string()),
        }
    }
}
