//! `/admin/api/blacklist`: the IPs banned now, and lifting a ban.

use std::net::IpAddr;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use crate::actors::blacklist::BanInfo;
use crate::state::AppState;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct BanView {
    pub ip: IpAddr,
    /// RFC 3339, UTC.
    pub until: String,
    /// Errors counted in the current error window.
    pub errors: u64,
}

impl From<BanInfo> for BanView {
    fn from(ban: BanInfo) -> Self {
        let until = chrono::DateTime::from_timestamp_millis(ban.banned_until_ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        BanView {
            ip: ban.ip,
            until,
            errors: ban.errors,
        }
    }
}

#[derive(Serialize)]
struct BanList {
    data: Vec<BanView>,
}

#[derive(Serialize)]
struct Unbanned {
    ip: IpAddr,
    unbanned: bool,
}

/// `GET /admin/api/blacklist`.
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let bans = state.live().blacklist.list().await?;
    let data = bans.into_iter().map(BanView::from).collect();
    Ok(HttpResponse::Ok().json(BanList { data }))
}

/// `DELETE /admin/api/blacklist/{ip}`: 404 when the IP is not banned.
pub async fn unban(
    admin: Admin,
    state: web::Data<AppState>,
    ip: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| AdminError::BadRequest(format!("'{ip}' is not an IP address.")))?;
    let banned = state
        .live()
        .blacklist
        .list()
        .await?
        .iter()
        .any(|b| b.ip == ip);
    if !banned {
        return Err(AdminError::NotFound {
            code: "not_banned",
            message: format!("{ip} is not banned."),
        });
    }
    state.live().blacklist.unban(ip).await?;
    log::info!("admin {}: unbanned {ip}", admin.user_id);
    Ok(HttpResponse::Ok().json(Unbanned { ip, unbanned: true }))
}
