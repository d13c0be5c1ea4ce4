//! The admin API (JSON under `/admin/api`, admin keys only) and the CLI that
//! mirrors it for operators without a UI. Every route is listed once, in
//! [`routes`], which both registers it and lets a test prove the OpenAPI
//! document ([`openapi`]) describes it.
//!
//! - [`auth`]: the [`auth::Admin`] extractor every handler takes.
//! - [`error`]: admin errors → HTTP, in the OpenAI error shape.
//! - [`users`]: users: list, create, change, disable, rotate, reset quotas.
//! - [`blacklist`]: banned IPs, unban.
//! - [`usage`]: usage records by user, endpoint, model, time, with totals.
//! - [`keys`]: upstream keys at runtime (registers its own routes).
//! - [`openapi`]: the OpenAPI 3.0 document of every admin route.
//! - [`config`]: reload the config file.
//! - [`cli`]: `aigate users …`; [`keys_cli`]: `aigate keys …`.

pub mod auth;
pub mod blacklist;
pub mod cli;
pub mod config;
pub mod error;
pub mod keys;
pub mod keys_cli;
pub mod openapi;
pub mod usage;
pub mod users;

use actix_web::http::Method;
use actix_web::{web, Route};
use serde::de::DeserializeOwned;

use error::AdminError;

/// One admin route: the path (actix and OpenAPI share the `{param}`
/// syntax), the method, and the handler.
pub struct AdminRoute {
    pub path: &'static str,
    pub method: Method,
    pub to: fn() -> Route,
}

fn route(path: &'static str, method: Method, to: fn() -> Route) -> AdminRoute {
    AdminRoute { path, method, to }
}

/// Every route this module serves (the keys routes are registered by
/// [`keys::configure`]).
pub fn routes() -> Vec<AdminRoute> {
    const USER: &str = "/admin/api/users/{id}";
    vec![
        route("/admin/api/openapi.json", Method::GET, || {
            web::get().to(openapi::serve)
        }),
        route("/admin/api/users", Method::GET, || {
            web::get().to(users::list)
        }),
        route("/admin/api/users", Method::POST, || {
            web::post().to(users::create)
        }),
        route(USER, Method::GET, || web::get().to(users::get)),
        route(USER, Method::PATCH, || web::patch().to(users::update)),
        route(USER, Method::DELETE, || web::delete().to(users::delete)),
        route("/admin/api/users/{id}/disable", Method::POST, || {
            web::post().to(users::disable)
        }),
        route("/admin/api/users/{id}/enable", Method::POST, || {
            web::post().to(users::enable)
        }),
        route("/admin/api/users/{id}/rotate", Method::POST, || {
            web::post().to(users::rotate)
        }),
        route("/admin/api/users/{id}/reset-quota", Method::POST, || {
            web::post().to(users::reset_quota)
        }),
        route("/admin/api/blacklist", Method::GET, || {
            web::get().to(blacklist::list)
        }),
        route("/admin/api/blacklist/{ip}", Method::DELETE, || {
            web::delete().to(blacklist::unban)
        }),
        route("/admin/api/usage", Method::GET, || {
            web::get().to(usage::query)
        }),
        route("/admin/api/config/reload", Method::POST, || {
            web::post().to(config::reload)
        }),
    ]
}

/// Where the admin API lives.
pub const API_PREFIX: &str = "/admin/api";

/// Registers the admin API; must come before the proxy's default service.
/// One scope: its static prefix is all a proxied request is compared with,
/// so the parametrised admin paths cost it no regex match.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes = routes();
    let mut paths: Vec<&'static str> = routes.iter().map(|r| r.path).collect();
    paths.dedup();
    let mut scope = web::scope(API_PREFIX)
        .configure(keys::configure)
        .default_service(web::to(error::unknown_route));
    for path in paths {
        let relative = path.strip_prefix(API_PREFIX).unwrap_or(path);
        let resource = routes
            .iter()
            .filter(|r| r.path == path)
            .fold(web::resource(relative), |resource, r| {
                resource.route((r.to)())
            })
            .default_service(web::to(error::method_not_allowed));
        scope = scope.service(resource);
    }
    cfg.service(scope);
}

/// A JSON body into `T`, strictly: errors name the field (`quotas[0].period:
/// unknown variant …`).
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        AdminError::BadRequest(match path.as_str() {
            "." => format!("Invalid JSON body: {inner}"),
            _ => format!("Invalid JSON body at {path}: {inner}"),
        })
    })?;
    deserializer
        .end()
        .map_err(|e| AdminError::BadRequest(format!("Invalid JSON body: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::actor::{NewUser, UserPatch};

    #[test]
    fn bodies_are_strict_and_errors_name_the_field() {
        let e = parse_body::<NewUser>(br#"{"name":"a","colour":"red"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = parse_body::<NewUser>(
            br#"{"name":"a","quotas":[{"models":"gpt-*","tokens":5,"period":"hourly"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("quotas[0].period"), "{e}");
        let e = parse_body::<UserPatch>(br#"{"rpm":"fast"}"#).unwrap_err();
        assert!(e.to_string().contains("rpm"), "{e}");
        let patch = parse_body::<UserPatch>(br#"{"rpm":null}"#).unwrap();
        assert_eq!(patch.rpm, Some(None));
        assert!(parse_body::<UserPatch>(b"{} x").is_err());
    }

    #[test]
    fn paths_of_one_resource_are_adjacent() {
        // `configure` groups routes by consecutive path.
        let routes = routes();
        let mut seen: Vec<&str> = Vec::new();
        for pair in routes.windows(2) {
            if pair[0].path != pair[1].path {
                assert!(!seen.contains(&pair[1].path), "{} split", pair[1].path);
                seen.push(pair[0].path);
            }
        }
    }
}
