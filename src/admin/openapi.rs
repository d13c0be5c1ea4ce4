//! `GET /admin/api/openapi.json`: the OpenAPI 3.0 document of every admin
//! route, written by hand next to nothing else so it is easy to keep true;
//! a test checks every registered route appears in it.

use actix_web::HttpResponse;
use serde_json::{json, Value};

use super::auth::Admin;

/// `GET /admin/api/openapi.json` (admin keys only, like every admin route).
pub async fn serve(_: Admin) -> HttpResponse {
    HttpResponse::Ok().json(document())
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema(name) } } })
}

fn answer(description: &str, name: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema(name) } } })
}

fn error(description: &str) -> Value {
    answer(description, "Error")
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn query_param(name: &str, description: &str, kind: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": kind } })
}

/// An operation with the answers every admin route can give added.
fn op(summary: &str, params: Vec<Value>, request: Option<Value>, mut responses: Value) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.insert("401".into(), error("No key, or not a key of this gateway."));
        map.insert(
            "403".into(),
            error("Not an admin key (`admin_only`), or the IP is banned or blocked."),
        );
        map.insert("429".into(), error("The per-IP request limit."));
    }
    let mut op = json!({ "summary": summary, "parameters": params, "responses": responses });
    if let (Some(request), Some(map)) = (request, op.as_object_mut()) {
        map.insert("requestBody".into(), request);
    }
    op
}

fn user_op(summary: &str, ok: Value) -> Value {
    op(
        summary,
        vec![path_param("id", "The user's id.")],
        None,
        json!({ "200": ok, "404": error("No such user."), "409": error("A user from the config file.") }),
    )
}

/// The document.
pub fn document() -> Value {
    let id = || path_param("id", "The user's id.");
    let key_params = || {
        vec![
            path_param("endpoint", "The endpoint's id."),
            path_param("key_id", "The key's id (`k-…`)."),
        ]
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "aigate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Users, upstream keys, bans and usage of one aigate. Admin keys only, in `Authorization: Bearer` or `x-api-key`, never in the URL. Errors have the OpenAI shape."
        },
        "security": [{ "bearer": [] }, { "apiKey": [] }],
        "paths": {
            "/admin/api/openapi.json": { "get": op("This document.", vec![], None, json!({ "200": { "description": "OpenAPI 3.0 document." } })) },
            "/admin/api/users": {
                "get": op("List users.", vec![], None, json!({ "200": answer("Every user, by id.", "UserList") })),
                "post": op("Create a user; the answer holds the key, shown this once.", vec![], Some(body("NewUser")),
                    json!({ "201": answer("The user, `key` being the plain key.", "User"), "400": error("Invalid body (the message names the field).") }))
            },
            "/admin/api/users/{id}": {
                "get": op("One user.", vec![id()], None, json!({ "200": answer("The user.", "User"), "404": error("No such user.") })),
                "patch": op("Change a user: absent fields stay, `null` clears a limit.", vec![id()], Some(body("UserPatch")),
                    json!({ "200": answer("The user.", "User"), "400": error("Invalid body."), "404": error("No such user."), "409": error("A user from the config file.") })),
                "delete": user_op("Delete a user; the key stops working at once.", answer("Deleted.", "Deleted"))
            },
            "/admin/api/users/{id}/disable": { "post": user_op("Disable a user.", answer("The user.", "User")) },
            "/admin/api/users/{id}/enable": { "post": user_op("Enable a user (and forget the IPs seen).", answer("The user.", "User")) },
            "/admin/api/users/{id}/rotate": { "post": user_op("A new key, shown this once; the old one stops working.", answer("The user, `key` being the new plain key.", "User")) },
            "/admin/api/users/{id}/reset-quota": {
                "post": op("Start every quota of the user over.", vec![id()], None, json!({ "200": answer("The user.", "User"), "404": error("No such user.") }))
            },
            "/admin/api/blacklist": { "get": op("IPs banned now.", vec![], None, json!({ "200": answer("Bans.", "BanList") })) },
            "/admin/api/blacklist/{ip}": {
                "delete": op("Lift a ban.", vec![path_param("ip", "An IPv4 or IPv6 address.")], None,
                    json!({ "200": { "description": "Unbanned." }, "400": error("Not an IP address."), "404": error("Not banned.") }))
            },
            "/admin/api/usage": {
                "get": op("Usage records with totals per user, per endpoint and overall.", vec![
                    query_param("user", "A user id (the records' `client`).", "string"),
                    query_param("endpoint", "An endpoint id.", "string"),
                    query_param("model", "A model name or glob (`gpt-4o*`).", "string"),
                    query_param("from", "Inclusive: RFC 3339 or Unix seconds.", "string"),
                    query_param("to", "Exclusive: RFC 3339 or Unix seconds.", "string"),
                    query_param("limit", "Records returned, the newest (default 100, at most 10000); totals count all.", "integer"),
                ], None, json!({ "200": answer("Records, oldest first, and totals.", "UsageReport"), "400": error("A bad parameter.") }))
            },
            "/admin/api/keys": {
                "get": op("Upstream keys, by id and last 4 characters.", vec![query_param("endpoint", "Only this endpoint's keys.", "string")], None,
                    json!({ "200": answer("Keys.", "KeyList") })),
                "post": op("Add an upstream key (stored encrypted; needs a master key).", vec![], Some(body("AddKey")),
                    json!({ "201": answer("The key's id and hint.", "AddedKey"), "400": error("Invalid body."), "404": error("Unknown endpoint."), "409": error("No master key, or a duplicate.") }))
            },
            "/admin/api/keys/{endpoint}/{key_id}": {
                "delete": op("Remove a key added at runtime.", key_params(), None,
                    json!({ "200": answer("The removed key.", "KeyInfo"), "404": error("Unknown endpoint or key."), "409": error("A key from the config file.") }))
            },
            "/admin/api/keys/{endpoint}/{key_id}/disable": {
                "post": op("Take a key out of the pool.", key_params(), None, json!({ "200": answer("The key.", "KeyInfo"), "404": error("Unknown endpoint or key.") }))
            },
            "/admin/api/keys/{endpoint}/{key_id}/enable": {
                "post": op("Put a key back into the pool.", key_params(), None, json!({ "200": answer("The key.", "KeyInfo"), "404": error("Unknown endpoint or key.") }))
            },
            "/admin/api/config/reload": {
                "post": op("Reload the config file (as SIGHUP does): endpoints, keys, limits, users' config keys, pricing and routing change; counters, bans, users and usage stay; requests already running finish on the config they started with.", vec![], None,
                    json!({ "200": answer("What changed, and settings that need a restart.", "ReloadReport"), "409": error("Started without a config file, or the file does not load (nothing changed).") }))
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key" }
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let opt_int = json!({ "type": "integer", "nullable": true, "minimum": 0 });
    let role = json!({ "type": "string", "enum": ["admin", "user", "temporary"] });
    let user_fields = json!({
        "role": role,
        "rpm": opt_int, "tpm": opt_int,
        "quotas": { "type": "array", "items": schema("Quota") },
        "expires_at": { "type": "integer", "nullable": true, "description": "Unix seconds." },
        "expires_after_first_use_hours": opt_int,
        "max_ips": opt_int,
        "allowed_models": { "type": "array", "items": { "type": "string" }, "description": "Globs; empty = any." },
        "max_concurrent": opt_int
    });
    let with = |mut base: Value, extra: Value| {
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    };
    let totals = json!({ "type": "object", "properties": {
        "requests": { "type": "integer" }, "prompt_tokens": { "type": "integer" },
        "completion_tokens": { "type": "integer" }, "cost_usd": { "type": "number" } } });
    json!({
        "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
            "message": { "type": "string" }, "type": { "type": "string" },
            "param": { "type": "string", "nullable": true }, "code": { "type": "string" } } } } },
        "Quota": { "type": "object", "required": ["models", "tokens", "period"], "additionalProperties": false, "properties": {
            "models": { "type": "string", "description": "A model glob: `gpt-4o*`." },
            "tokens": { "type": "integer", "minimum": 0 },
            "period": { "type": "string", "enum": ["daily", "weekly", "monthly", "never"], "description": "UTC calendar periods." } } },
        "NewUser": { "type": "object", "required": ["name"], "additionalProperties": false,
            "properties": with(json!({ "name": { "type": "string" } }), user_fields.clone()) },
        "UserPatch": { "type": "object", "additionalProperties": false,
            "properties": with(json!({ "name": { "type": "string" }, "enabled": { "type": "boolean" } }), user_fields.clone()) },
        "User": { "type": "object", "properties": with(json!({
            "id": { "type": "string" }, "name": { "type": "string" },
            "key": { "type": "string", "description": "`…` and the last 4 characters; the plain key after create and rotate only." },
            "enabled": { "type": "boolean" }, "disabled_reason": { "type": "string", "nullable": true },
            "quotas": { "type": "array", "items": { "type": "object", "properties": {
                "models": { "type": "string" }, "tokens": { "type": "integer" }, "period": { "type": "string" },
                "used": { "type": "integer" }, "remaining": { "type": "integer" },
                "refreshes_at": { "type": "integer", "nullable": true } } } },
            "created_at": { "type": "integer" }, "first_used_at": { "type": "integer", "nullable": true },
            "last_used_at": { "type": "integer", "nullable": true }, "in_flight": { "type": "integer" },
            "totals": totals, "from_config": { "type": "boolean" } }), json!({ "role": role })) },
        "UserList": { "type": "object", "properties": { "data": { "type": "array", "items": schema("User") } } },
        "Deleted": { "type": "object", "properties": { "id": { "type": "string" }, "deleted": { "type": "boolean" } } },
        "ReloadReport": { "type": "object", "properties": {
            "source": { "type": "string", "description": "The file read." },
            "added": { "type": "array", "items": { "type": "string" }, "description": "Endpoint ids new in the file." },
            "removed": { "type": "array", "items": { "type": "string" }, "description": "Endpoint ids gone (counters and runtime keys are kept for their return)." },
            "kept": { "type": "array", "items": { "type": "string" }, "description": "Endpoint ids whose counters carried over." },
            "needs_restart": { "type": "array", "items": { "type": "string" }, "description": "Settings changed in the file that take effect at the next restart (server.listen, server.workers, server.data_dir, server.connect_timeout, log, storage)." } } },
        "BanList": { "type": "object", "properties": { "data": { "type": "array", "items": { "type": "object", "properties": {
            "ip": { "type": "string" }, "until": { "type": "string", "format": "date-time" }, "errors": { "type": "integer" } } } } } },
        "UsageReport": { "type": "object", "properties": {
            "records": { "type": "array", "items": { "type": "object", "additionalProperties": true,
                "description": "Usage records as logged (time, request_id, client, endpoint, model, tokens, cost_usd, status, …)." } },
            "matched": { "type": "integer" },
            "totals": { "type": "object", "properties": {
                "overall": totals,
                "by_user": { "type": "object", "additionalProperties": totals },
                "by_endpoint": { "type": "object", "additionalProperties": totals } } } } },
        "AddKey": { "type": "object", "required": ["endpoint", "key"], "additionalProperties": false, "properties": {
            "endpoint": { "type": "string" }, "key": { "type": "string" }, "budget_usd": { "type": "number", "nullable": true } } },
        "AddedKey": { "type": "object", "properties": {
            "endpoint": { "type": "string" }, "id": { "type": "string" }, "hint": { "type": "string" } } },
        "KeyInfo": { "type": "object", "properties": {
            "endpoint": { "type": "string" }, "id": { "type": "string" }, "hint": { "type": "string" },
            "source": { "type": "string", "enum": ["config", "runtime"] }, "state": { "type": "string" },
            "cooldown_until": { "type": "integer", "nullable": true }, "in_flight": { "type": "integer" },
            "latency_ms": { "type": "number", "nullable": true }, "last_error": { "type": "string", "nullable": true },
            "budget_usd": { "type": "number", "nullable": true }, "spent_usd": { "type": "number" },
            "added_at": { "type": "integer", "nullable": true } } },
        "KeyList": { "type": "object", "properties": { "keys": { "type": "array", "items": schema("KeyInfo") } } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_route_is_documented() {
        let doc = document();
        for route in super::super::routes() {
            let method = route.method.as_str().to_lowercase();
            assert!(
                doc["paths"][route.path][&method].is_object(),
                "{} {} is not in the OpenAPI document",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
