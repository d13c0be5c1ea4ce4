//! The admin API against the real app: admin-only access on every route the
//! OpenAPI document lists, users (create, use, rotate, disable, limits,
//! quotas, expiry, max IPs), the blacklist, usage queries, and the `aigate
//! users` CLI offline and against a running server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use awc::http::Method;
use serde_json::{json, Value};

use common::{chat, json_of, post_json, TestGateway};

const ADMIN: &str = "ak-admin-test";
const USER: &str = "fk-user";

fn config(extra: &str) -> String {
    format!(
        r#"[auth]
admin_keys = ["{ADMIN}"]
client_keys = ["{USER}"]
[limits]
ip_requests = -1
{extra}
[[endpoints]]
id = "mock"
provider = "mock"
models = ["gpt-4o-mini", "claude-3-5-haiku-latest"]
"#
    )
}

/// Calls an admin route; returns status, headers and the JSON body.
async fn call(
    gw: &TestGateway,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, awc::http::header::HeaderMap, Value) {
    let mut request = common::client().request(method, format!("{}{path}", gw.url));
    if let Some(key) = key {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut response = match body {
        Some(body) => request.send_json(&body).await.unwrap(),
        None => request.send().await.unwrap(),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.body().await.unwrap();
    let value = match bytes.is_empty() {
        true => Value::Null,
        false => json_of(&bytes),
    };
    (status, headers, value)
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, value) = call(gw, method, path, Some(ADMIN), body).await;
    (status, value)
}

/// Creates a user; returns (id, key).
async fn create(gw: &TestGateway, body: Value) -> (String, String) {
    let (status, user) = admin(gw, Method::POST, "/admin/api/users", Some(body)).await;
    assert_eq!(status, 201, "{user}");
    (
        user["id"].as_str().unwrap().to_string(),
        user["key"].as_str().unwrap().to_string(),
    )
}

async fn chat_as(gw: &TestGateway, key: &str, model: &str, text: &str) -> (u16, Value) {
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, _, body) = post_json(&url, key, &chat(model, text)).await;
    (status, json_of(&body))
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        match path.is_dir() {
            true => files_contain(&path, needle),
            false => std::fs::read(&path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false),
        }
    })
}

#[actix_web::test]
async fn a_user_key_gets_403_on_every_admin_route() {
    let gw = TestGateway::start(&config(""));
    let (status, doc) = admin(&gw, Method::GET, "/admin/api/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{paths:?}");
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "u-000000000000")
            .replace("{ip}", "192.0.2.1")
            .replace("{endpoint}", "mock")
            .replace("{key_id}", "k-0");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST || method == Method::PATCH).then(|| json!({}));
            let (status, _, answer) = call(&gw, method.clone(), &concrete, Some(USER), body).await;
            assert_eq!(status, 403, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "admin_only", "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} routes");

    // No key, an unknown key, or the admin key in the URL: 401.
    let (status, _, answer) = call(&gw, Method::GET, "/admin/api/users", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "invalid_api_key");
    let unknown = call(&gw, Method::GET, "/admin/api/users", Some("ak-wrong"), None).await;
    assert_eq!(unknown.0, 401);
    let in_url = format!("/admin/api/users?key={ADMIN}&api_key={ADMIN}");
    assert_eq!(call(&gw, Method::GET, &in_url, None, None).await.0, 401);
    // x-api-key works as well as Bearer.
    let mut response = common::client()
        .get(format!("{}/admin/api/users", gw.url))
        .insert_header(("x-api-key", ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list = json_of(&response.body().await.unwrap());
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        2,
        "the two config keys"
    );
    // A wrong method on an admin path.
    assert_eq!(
        admin(&gw, Method::PUT, "/admin/api/users", None).await.0,
        405
    );
}

#[actix_web::test]
async fn created_users_work_and_their_key_is_stored_nowhere() {
    let gw = TestGateway::start(&config(""));
    let (id, key) = create(&gw, json!({"name": "alice", "rpm": 100})).await;
    assert!(key.starts_with("ak-") && id.starts_with("u-"));
    let (status, body) = chat_as(&gw, &key, "gpt-4o-mini", "hello").await;
    assert_eq!(status, 200, "{body}");
    let records = gw.usage_records().await;
    assert_eq!(records.last().unwrap()["client"], id.as_str());

    let (status, user) = admin(&gw, Method::GET, &format!("/admin/api/users/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(user["name"], "alice");
    assert_eq!(user["totals"]["requests"], 1);
    assert_eq!(user["key"], format!("…{}", &key[key.len() - 4..]));
    let (_, list) = admin(&gw, Method::GET, "/admin/api/users", None).await;
    assert!(!list.to_string().contains(&key) && !user.to_string().contains(&key));

    // Persisted (the actor writes every second, and at shutdown) as a digest only.
    gw.state.persist_all().await;
    let data_dir = gw.data_dir.path();
    assert!(
        files_contain(data_dir, id.as_bytes()),
        "the user was not stored"
    );
    assert!(
        !files_contain(data_dir, key.as_bytes()),
        "the plain key is on disk"
    );
}

#[actix_web::test]
async fn rotate_disable_enable_patch_delete() {
    let gw = TestGateway::start(&config(""));
    let (id, old) = create(&gw, json!({"name": "bob"})).await;
    let (status, rotated) = admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(chat_as(&gw, &old, "gpt-4o-mini", "x").await.0, 401);
    assert_eq!(chat_as(&gw, &new, "gpt-4o-mini", "x").await.0, 200);

    let (status, user) = admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!((status, user["enabled"].clone()), (200, json!(false)));
    let (status, body) = chat_as(&gw, &new, "gpt-4o-mini", "x").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("user_disabled"))
    );
    admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(chat_as(&gw, &new, "gpt-4o-mini", "x").await.0, 200);

    // Limits, on a fresh user: RPM 1, then cleared with null.
    let (limited, limited_key) = create(&gw, json!({"name": "carol"})).await;
    let limited = format!("/admin/api/users/{limited}");
    let (status, user) = admin(&gw, Method::PATCH, &limited, Some(json!({"rpm": 1}))).await;
    assert_eq!((status, user["rpm"].clone()), (200, json!(1)));
    assert_eq!(chat_as(&gw, &limited_key, "gpt-4o-mini", "x").await.0, 200);
    let (status, body) = chat_as(&gw, &limited_key, "gpt-4o-mini", "x").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (429, json!("rate_limit_exceeded"))
    );
    let (_, user) = admin(&gw, Method::PATCH, &limited, Some(json!({"rpm": null}))).await;
    assert_eq!(user["rpm"], Value::Null);
    assert_eq!(chat_as(&gw, &limited_key, "gpt-4o-mini", "x").await.0, 200);
    let path = format!("/admin/api/users/{id}");

    // Invalid bodies name the field; unknown fields are refused.
    let (status, e) = admin(&gw, Method::PATCH, &path, Some(json!({"tpm": "lots"}))).await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("tpm"),
        "{e}"
    );
    let bad_quota =
        json!({"name": "q", "quotas": [{"models": "gpt-*", "tokens": 1, "period": "hourly"}]});
    let (status, e) = admin(&gw, Method::POST, "/admin/api/users", Some(bad_quota)).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quotas[0].period"),
        "{e}"
    );
    let (status, _) = admin(
        &gw,
        Method::POST,
        "/admin/api/users",
        Some(json!({"name": "x", "admin": true})),
    )
    .await;
    assert_eq!(status, 400);

    // Unknown ids 404; config users 409.
    let (status, e) = admin(&gw, Method::GET, "/admin/api/users/u-nope", None).await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (404, json!("user_not_found"))
    );
    let (_, list) = admin(&gw, Method::GET, "/admin/api/users", None).await;
    let config_user = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["from_config"] == true && u["role"] == "user")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, e) = admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{config_user}/disable"),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (409, json!("user_from_config"))
    );

    let (status, deleted) = admin(&gw, Method::DELETE, &path, None).await;
    assert_eq!((status, deleted["deleted"].clone()), (200, json!(true)));
    assert_eq!(chat_as(&gw, &new, "gpt-4o-mini", "x").await.0, 401);
    assert_eq!(admin(&gw, Method::GET, &path, None).await.0, 404);
}

#[actix_web::test]
async fn quota_refuses_with_its_refresh_time_until_reset() {
    let gw = TestGateway::start(&config(""));
    let quota = json!([{"models": "gpt-*", "tokens": 50, "period": "daily"}]);
    let (id, key) = create(&gw, json!({"name": "q", "quotas": quota})).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut refused = None;
    for _ in 0..40 {
        let (status, headers, body) =
            post_json(&url, &key, &chat("gpt-4o-mini", "a few words")).await;
        if status != 200 {
            refused = Some((status, headers, json_of(&body)));
            break;
        }
    }
    let (status, headers, body) = refused.expect("the quota never refused");
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-*") && message.contains("refreshes at"),
        "{message}"
    );
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    // Other model families are not covered by the quota.
    assert_eq!(
        chat_as(&gw, &key, "claude-3-5-haiku-latest", "x").await.0,
        200
    );

    let (status, user) = admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{id}/reset-quota"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["quotas"][0]["used"], 0);
    assert_eq!(chat_as(&gw, &key, "gpt-4o-mini", "x").await.0, 200);
}

#[actix_web::test]
async fn temporary_users_expire() {
    let gw = TestGateway::start(&config(""));
    let past = chrono::Utc::now().timestamp() - 60;
    let body = json!({"name": "t", "role": "temporary", "expires_after_first_use_hours": 1, "expires_at": past});
    let (_, expired) = create(&gw, body).await;
    let (status, body) = chat_as(&gw, &expired, "gpt-4o-mini", "x").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("key_expired"))
    );

    let (id, key) = create(
        &gw,
        json!({"name": "t2", "role": "temporary", "expires_after_first_use_hours": 2}),
    )
    .await;
    let path = format!("/admin/api/users/{id}");
    assert_eq!(
        admin(&gw, Method::GET, &path, None).await.1["expires_at"],
        Value::Null
    );
    assert_eq!(chat_as(&gw, &key, "gpt-4o-mini", "x").await.0, 200);
    let (_, user) = admin(&gw, Method::GET, &path, None).await;
    let first = user["first_used_at"].as_u64().unwrap();
    assert_eq!(user["expires_at"].as_u64().unwrap(), first + 7200);
}

#[actix_web::test]
async fn a_second_ip_disables_a_max_ips_user() {
    let gw = TestGateway::start(&config("").replace(
        "[auth]",
        "[server]\nworkers = 1\ntrusted_proxies = [\"127.0.0.0/8\"]\n[auth]",
    ));
    let (id, key) = create(&gw, json!({"name": "m", "max_ips": 1})).await;
    let from = |ip: &'static str| {
        let url = format!("{}/v1/chat/completions", gw.url);
        let key = key.clone();
        async move {
            common::client()
                .post(url)
                .insert_header(("authorization", format!("Bearer {key}")))
                .insert_header(("x-forwarded-for", ip))
                .send_json(&chat("gpt-4o-mini", "x"))
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(from("203.0.113.1").await, 200);
    assert_eq!(from("203.0.113.1").await, 200);
    assert_eq!(from("203.0.113.2").await, 403);
    assert_eq!(from("203.0.113.1").await, 403, "the user stays disabled");
    let (_, user) = admin(&gw, Method::GET, &format!("/admin/api/users/{id}"), None).await;
    assert_eq!(user["enabled"], false);
    assert!(
        user["disabled_reason"].as_str().unwrap().contains("IP"),
        "{user}"
    );
    admin(
        &gw,
        Method::POST,
        &format!("/admin/api/users/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(from("203.0.113.2").await, 200);
}

#[actix_web::test]
async fn blacklist_lists_and_unbans() {
    let gw = TestGateway::start(&config("ip_error_threshold = 3").replace(
        "[auth]",
        "[server]\nworkers = 1\ntrusted_proxies = [\"127.0.0.0/8\"]\n[auth]",
    ));
    let bad = || async {
        common::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .insert_header(("authorization", "Bearer fk-wrong"))
            .insert_header(("x-forwarded-for", "198.51.100.7"))
            .send_json(&chat("gpt-4o-mini", "x"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..3 {
        assert_eq!(bad().await, 401);
    }
    actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(bad().await, 403, "banned");
    let (status, bans) = admin(&gw, Method::GET, "/admin/api/blacklist", None).await;
    assert_eq!(status, 200);
    assert_eq!(bans["data"][0]["ip"], "198.51.100.7");
    assert!(bans["data"][0]["errors"].as_u64().unwrap() >= 3);
    assert!(bans["data"][0]["until"].as_str().unwrap().ends_with('Z'));

    let path = "/admin/api/blacklist/198.51.100.7";
    assert_eq!(admin(&gw, Method::DELETE, path, None).await.0, 200);
    assert_eq!(bad().await, 401, "unbanned");
    let (status, e) = admin(
        &gw,
        Method::DELETE,
        "/admin/api/blacklist/198.51.100.8",
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (404, json!("not_banned"))
    );
    assert_eq!(
        admin(&gw, Method::DELETE, "/admin/api/blacklist/nope", None)
            .await
            .0,
        400
    );
}

/// Lets the finishers run, hands the buffered records to disk as one batch
/// and returns a time after them all (milliseconds, as records have).
async fn close_batch(gw: &TestGateway) -> String {
    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    gw.state.usage.flush().await.unwrap();
    actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    time
}

async fn matched(gw: &TestGateway, query: &str) -> Vec<(String, String)> {
    let (status, body) = admin(gw, Method::GET, &format!("/admin/api/usage?{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let client = r["client"].as_str().unwrap().to_string();
            (client, r["model"].as_str().unwrap().to_string())
        })
        .collect()
}

#[actix_web::test]
async fn usage_ranges_cut_across_batches() {
    let gw = TestGateway::start(&config(""));
    let (a, key_a) = create(&gw, json!({"name": "a"})).await;
    let (b, key_b) = create(&gw, json!({"name": "b"})).await;
    let (gpt, claude) = ("gpt-4o-mini", "claude-3-5-haiku-latest");
    let mut cuts = Vec::new();
    for batch in [
        [(&key_a, gpt), (&key_b, claude)],
        [(&key_a, claude), (&key_b, gpt)],
        [(&key_b, gpt), (&key_a, gpt)],
    ] {
        for (key, model) in batch {
            assert_eq!(chat_as(&gw, key, model, "count me").await.0, 200);
        }
        cuts.push(close_batch(&gw).await);
    }
    let pair = |user: &str, model: &str| (user.to_string(), model.to_string());
    assert_eq!(matched(&gw, "").await.len(), 6);
    assert_eq!(
        matched(&gw, &format!("from={}&to={}", cuts[0], cuts[1])).await,
        [pair(&a, claude), pair(&b, gpt)]
    );
    assert_eq!(
        matched(&gw, &format!("from={}&user={b}", cuts[0])).await,
        [pair(&b, gpt), pair(&b, gpt)]
    );
    assert_eq!(
        matched(&gw, &format!("to={}&model=claude-*", cuts[1])).await,
        [pair(&b, claude), pair(&a, claude)]
    );
    assert!(matched(&gw, &format!("from={}", cuts[2])).await.is_empty());
    let (_, totals) = admin(
        &gw,
        Method::GET,
        &format!("/admin/api/usage?from={}&limit=1", cuts[0]),
        None,
    )
    .await;
    assert_eq!(
        (
            totals["matched"].clone(),
            totals["totals"]["by_user"][&a]["requests"].clone()
        ),
        (json!(4), json!(2))
    );
}

#[actix_web::test]
async fn usage_is_filtered_and_totalled() {
    let gw = TestGateway::start(&config(""));
    let (a, key_a) = create(&gw, json!({"name": "a"})).await;
    let (b, key_b) = create(&gw, json!({"name": "b"})).await;
    let before = chrono::Utc::now().timestamp();
    for (key, model) in [
        (&key_a, "gpt-4o-mini"),
        (&key_a, "claude-3-5-haiku-latest"),
        (&key_b, "gpt-4o-mini"),
    ] {
        assert_eq!(chat_as(&gw, key, model, "count me").await.0, 200);
    }
    // Finishers run when the response body is done.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, all) = admin(&gw, Method::GET, "/admin/api/usage", None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["matched"], 3);
    assert_eq!(all["totals"]["overall"]["requests"], 3);
    assert_eq!(all["totals"]["by_user"][&a]["requests"], 2);
    assert_eq!(all["totals"]["by_user"][&b]["requests"], 1);
    assert_eq!(all["totals"]["by_endpoint"]["mock"]["requests"], 3);
    let tokens = all["totals"]["overall"]["prompt_tokens"].as_u64().unwrap();
    let per_record: u64 = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prompt_tokens"].as_u64().unwrap())
        .sum();
    assert!(tokens > 0 && tokens == per_record);
    assert!(all["totals"]["overall"]["cost_usd"].is_number());

    let (_, only_a) = admin(
        &gw,
        Method::GET,
        &format!("/admin/api/usage?user={a}&model=gpt-*"),
        None,
    )
    .await;
    assert_eq!(only_a["matched"], 1);
    assert_eq!(only_a["records"][0]["client"], a.as_str());
    assert_eq!(only_a["records"][0]["model"], "gpt-4o-mini");
    let (_, newest) = admin(&gw, Method::GET, "/admin/api/usage?limit=1", None).await;
    assert_eq!(
        (
            newest["matched"].clone(),
            newest["records"].as_array().unwrap().len()
        ),
        (json!(3), 1)
    );
    assert_eq!(newest["records"][0]["client"], b.as_str(), "newest last");

    let (_, in_range) = admin(
        &gw,
        Method::GET,
        &format!("/admin/api/usage?from={}&endpoint=mock", before - 1),
        None,
    )
    .await;
    assert_eq!(in_range["matched"], 3);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, none) = admin(
        &gw,
        Method::GET,
        &format!("/admin/api/usage?from={}", future.replace('+', "%2B")),
        None,
    )
    .await;
    assert_eq!(none["matched"], 0);
    let (_, none) = admin(
        &gw,
        Method::GET,
        &format!("/admin/api/usage?to={}", before - 3600),
        None,
    )
    .await;
    assert_eq!(none["matched"], 0);
    let (status, e) = admin(&gw, Method::GET, "/admin/api/usage?from=yesterday", None).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("from"),
        "{e}"
    );
    assert_eq!(
        admin(&gw, Method::GET, "/admin/api/usage?colour=red", None)
            .await
            .0,
        400
    );
}

/// Runs the built `aigate` with a clean environment.
async fn aigate(args: Vec<String>, dir: &Path, admin_key: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aigate"));
    command.args(args).current_dir(dir).env_clear();
    if let Some(key) = admin_key {
        command.env("AIGATE_ADMIN_KEY", key);
    }
    // The server's actors may run on this thread: never block it.
    let output = actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn cli_adds_users_offline_and_lists_them_through_the_running_server() {
    let data_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let config_path = work.path().join("aigate.toml");
    let toml = format!("[server]\nworkers = 1\n{}", config(""));
    std::fs::write(&config_path, &toml).unwrap();
    let data_path = data_dir.path().to_path_buf();
    let common_args = |more: &[&str]| {
        let mut args: Vec<String> = more.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--config".into(),
            config_path.display().to_string(),
            "--data-dir".into(),
            data_path.display().to_string(),
        ]);
        args
    };
    let add = common_args(&[
        "users",
        "add",
        "--name",
        "cli-user",
        "--rpm",
        "30",
        "--quota",
        "gpt-*=10k/daily",
        "--model",
        "gpt-*",
    ]);
    let (ok, out, err) = aigate(add, work.path(), None).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("not be shown again"), "{out}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string();
    assert!(key.starts_with("ak-"));

    // The server starts on that data dir and knows the user.
    let cli = aigate::config::CliOverrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.path().to_path_buf()),
    };
    let config = aigate::config::from_toml_str(&toml, &Default::default(), &cli).unwrap();
    let gw = TestGateway::start_config(config, data_dir);
    assert_eq!(chat_as(&gw, &key, "gpt-4o-mini", "hi").await.0, 200);
    let (status, body) = chat_as(&gw, &key, "claude-3-5-haiku-latest", "hi").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("model_not_allowed"))
    );

    // While it runs: through the admin API, which needs the admin key.
    let online = |more: &[&str]| {
        let mut args = common_args(more);
        args.extend(["--url".into(), gw.url.clone()]);
        args
    };
    let (ok, _, err) = aigate(online(&["users", "list"]), work.path(), None).await;
    assert!(
        !ok && err.contains("AIGATE_ADMIN_KEY") && err.contains("lock"),
        "{err}"
    );
    let (ok, out, err) = aigate(online(&["users", "list"]), work.path(), Some(ADMIN)).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("cli-user") && out.contains("gpt-*: ") && !out.contains(&key),
        "{out}"
    );
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("u-"))
        .unwrap()
        .to_string();
    let (ok, out, err) = aigate(online(&["users", "disable", &id]), work.path(), Some(ADMIN)).await;
    assert!(ok && out.contains("disabled"), "{out}{err}");
    assert_eq!(chat_as(&gw, &key, "gpt-4o-mini", "hi").await.0, 403);
    let (ok, out, _) = aigate(online(&["users", "enable", &id]), work.path(), Some(ADMIN)).await;
    assert!(ok && out.contains("enabled"), "{out}");
    let (ok, out, _) = aigate(online(&["users", "rotate", &id]), work.path(), Some(ADMIN)).await;
    assert!(ok, "{out}");
    let new_key = out.lines().find_map(|l| l.strip_prefix("key: ")).unwrap();
    assert_eq!(chat_as(&gw, &key, "gpt-4o-mini", "hi").await.0, 401);
    assert_eq!(chat_as(&gw, new_key, "gpt-4o-mini", "hi").await.0, 200);
    let (ok, _, err) = aigate(online(&["users", "list"]), work.path(), Some("fk-user")).await;
    assert!(!ok && err.contains("403"), "{err}");
}

#[actix_web::test]
async fn unknown_admin_paths_and_methods_get_admin_errors() {
    let gw = TestGateway::start(&config(""));
    let (status, body) = admin(&gw, Method::GET, "/admin/api/nothing-here", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_route"))
    );
    let (status, body) = admin(&gw, Method::PUT, "/admin/api/keys", None).await;
    assert_eq!(status, 405, "{body}");
    let (status, _) = admin(&gw, Method::GET, "/admin/api/keys", None).await;
    assert_eq!(status, 200);
    gw.stop().await;
}
