//! Config reload (`POST /admin/api/config/reload`; SIGHUP is in
//! tests/restart.rs): new limits, endpoints and keys apply at once, counters
//! carry over, requests already running finish on their config, and a file
//! that does not load changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use serde_json::Value;

const AUTH: &str = "[auth]\nclient_keys = [\"fk-user\"]\nadmin_keys = [\"fk-admin\"]\n[limits]\nip_requests = -1\n";

fn endpoint(id: &str, url: &str, extra: &str) -> String {
    format!("[[endpoints]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"{url}\"\nkeys = [\"sk-{id}\"]\n{extra}\n")
}

async fn reload(gw: &TestGateway, key: &str) -> (u16, Value) {
    let mut response = common::client()
        .post(format!("{}/admin/api/config/reload", gw.url))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_of(&response.body().await.unwrap()))
}

async fn ask(gw: &TestGateway, key: &str, model: &str) -> u16 {
    let url = format!("{}/v1/chat/completions", gw.url);
    post_json(&url, key, &chat(model, "x")).await.0
}

#[actix_web::test]
async fn new_limits_and_endpoints_apply_and_counters_carry_over() {
    let a = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "from a")));
    let b = FakeUpstream::always(Reply::json(openai_completion("other", "from b")));
    let gw = TestGateway::start_file(&format!(
        "{AUTH}{}",
        endpoint("a", &a.url, "rpm = 5\nmodels = [\"gpt-4o\"]")
    ));
    for _ in 0..2 {
        assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 200);
    }
    assert_eq!(ask(&gw, "fk-user", "other").await, 404);

    // rpm 5 → 2: the two requests already counted fill the new window.
    gw.rewrite_config(&format!(
        "{AUTH}{}{}",
        endpoint("a", &a.url, "rpm = 2\nmodels = [\"gpt-4o\"]"),
        endpoint("b", &b.url, "models = [\"other\"]")
    ));
    let (status, report) = reload(&gw, "fk-admin").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["added"], serde_json::json!(["b"]));
    assert_eq!(report["kept"], serde_json::json!(["a"]));
    assert_eq!(report["removed"], serde_json::json!([]));
    assert_eq!(report["needs_restart"], serde_json::json!([]));

    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 429);
    assert_eq!(a.hits(), 2, "the limited request must not reach a");
    assert_eq!(ask(&gw, "fk-user", "other").await, 200);
    assert_eq!(b.hits(), 1);
    assert_eq!(b.requests()[0].header("authorization"), Some("Bearer sk-b"));

    let status = common::status_of(&gw.url, "fk-user").await;
    assert_eq!(status["endpoints"][0]["id"], "a");
    assert_eq!(status["endpoints"][0]["usage"]["rpm"], 2);
    assert_eq!(status["endpoints"][0]["limits"]["rpm"], 2);
    assert_eq!(status["endpoints"][1]["id"], "b");
    assert_eq!(status["endpoints"][1]["usage"]["rpm"], 1);
    gw.stop().await;
}

#[actix_web::test]
async fn a_request_running_during_a_reload_finishes_on_its_config() {
    let slow = Reply::Slow {
        delay: Duration::from_millis(800),
        then: Box::new(Reply::json(openai_completion("gpt-4o", "slow answer"))),
    };
    let a = FakeUpstream::always(slow);
    let b = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "from b")));
    let gw = TestGateway::start_file(&format!("{AUTH}{}", endpoint("a", &a.url, "")));
    let url = format!("{}/v1/chat/completions", gw.url);
    let running =
        actix_web::rt::spawn(async move { post_json(&url, "fk-user", &chat("gpt-4o", "x")).await });
    // Wait until the upstream has the request, then take its endpoint away.
    while a.hits() == 0 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    gw.rewrite_config(&format!("{AUTH}{}", endpoint("b", &b.url, "")));
    let (status, report) = reload(&gw, "fk-admin").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["removed"], serde_json::json!(["a"]));

    let (status, _, body) = running.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body)["choices"][0]["message"]["content"],
        "slow answer"
    );
    // New requests go to the new endpoint only.
    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 200);
    assert_eq!((a.hits(), b.hits()), (1, 1));

    let records = gw.usage_records().await;
    let endpoints: Vec<&str> = records
        .iter()
        .filter(|r| r["path"] == "/v1/chat/completions")
        .map(|r| r["endpoint"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(endpoints.len(), 2, "{records:?}");
    assert!(
        endpoints.contains(&"a") && endpoints.contains(&"b"),
        "{endpoints:?}"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn client_keys_follow_the_file_and_a_bad_file_changes_nothing() {
    let a = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start_file(&format!("{AUTH}{}", endpoint("a", &a.url, "")));
    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 200);
    assert_eq!(ask(&gw, "fk-new", "gpt-4o").await, 401);

    // A user key may not reload.
    let (status, body) = reload(&gw, "fk-user").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("admin_only"))
    );

    // A file that does not validate: 409 naming the key, nothing changed.
    gw.rewrite_config(&format!(
        "[auth]\nclient_keys = [\"fk-new\"]\nadmin_keys = [\"fk-admin\"]\n{}",
        endpoint("a", &a.url, "rpm = \"many\"")
    ));
    let (status, body) = reload(&gw, "fk-admin").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "invalid_config");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("rpm"),
        "{body}"
    );
    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 200);
    assert_eq!(ask(&gw, "fk-new", "gpt-4o").await, 401);

    // Fixed: the new key works, the removed one stops at once; a changed
    // restart-only setting is named and not applied.
    gw.rewrite_config(&format!(
        "[server]\nworkers = 3\n[auth]\nclient_keys = [\"fk-new\"]\nadmin_keys = [\"fk-admin\"]\n[limits]\nip_requests = -1\n{}",
        endpoint("a", &a.url, "")
    ));
    let (status, report) = reload(&gw, "fk-admin").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["needs_restart"],
        serde_json::json!(["server.workers"])
    );
    assert_eq!(ask(&gw, "fk-new", "gpt-4o").await, 200);
    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 401);
    gw.stop().await;
}

#[actix_web::test]
async fn a_gateway_started_without_a_file_has_nothing_to_reload() {
    let a = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start(&format!("{AUTH}{}", endpoint("a", &a.url, "")));
    let (status, body) = reload(&gw, "fk-admin").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "no_config_file");
    assert_eq!(ask(&gw, "fk-user", "gpt-4o").await, 200);
    gw.stop().await;
}

#[actix_web::test]
async fn bans_and_runtime_users_survive_a_reload() {
    let a = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let limits = "[limits]\nip_requests = -1\nip_error_threshold = 2\n";
    let config = format!(
        "[server]\nworkers = 1\ntrusted_proxies = [\"127.0.0.1/32\"]\n[auth]\nclient_keys = [\"fk-user\"]\nadmin_keys = [\"fk-admin\"]\n{limits}{}",
        endpoint("a", &a.url, "")
    );
    let gw = TestGateway::start_file(&config);
    let mut created = common::client()
        .post(format!("{}/admin/api/users", gw.url))
        .insert_header(("authorization", "Bearer fk-admin"))
        .send_json(&serde_json::json!({"name": "runtime", "rpm": 1}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = json_of(&created.body().await.unwrap());
    let runtime_key = created["key"].as_str().unwrap().to_string();
    assert_eq!(ask(&gw, &runtime_key, "gpt-4o").await, 200);

    // Ban 203.0.113.9 with two wrong keys.
    for _ in 0..2 {
        let status = common::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .insert_header(("authorization", "Bearer fk-wrong"))
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .send_json(&chat("gpt-4o", "x"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }

    gw.rewrite_config(&config.replace("ip_error_threshold = 2", "ip_error_threshold = 5"));
    assert_eq!(reload(&gw, "fk-admin").await.0, 200);

    // The user's RPM window is the one it had: its second request is refused.
    assert_eq!(ask(&gw, &runtime_key, "gpt-4o").await, 429);
    let mut bans = common::client()
        .get(format!("{}/admin/api/blacklist", gw.url))
        .insert_header(("authorization", "Bearer fk-admin"))
        .send()
        .await
        .unwrap();
    let bans = json_of(&bans.body().await.unwrap());
    assert_eq!(bans["data"][0]["ip"], "203.0.113.9", "{bans}");
    gw.stop().await;
}
