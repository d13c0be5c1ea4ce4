//! Limits and abuse: endpoint RPM/RPD, the per-IP limit, the blacklist fed by
//! client errors, X-Forwarded-For only from trusted proxies. A refused
//! request never reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};

fn endpoint(url: &str, extra: &str) -> String {
    format!("[[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{url}\"\nkeys = [\"sk-1\"]\n{extra}\n")
}

#[actix_web::test]
async fn endpoint_rpm_refuses_with_retry_after_and_spares_the_upstream() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = -1\n{}",
        endpoint(&upstream.url, "rpm = 3")
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..3 {
        assert_eq!(
            post_json(&url, "fk-test", &chat("gpt-4o", "x")).await.0,
            200
        );
    }
    let (status, headers, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 429);
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(json_of(&body)["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        upstream.hits(),
        3,
        "the limited request must not reach the upstream"
    );

    let status = common::status_of(&gw.url, "fk-test").await;
    assert_eq!(status["endpoints"][0]["usage"]["rpm"], 3);
    assert_eq!(status["endpoints"][0]["usage"]["rpd"], 3);
    assert_eq!(status["endpoints"][0]["limits"]["rpm"], 3);
    assert_eq!(status["endpoints"][0]["available"], false);
}

#[actix_web::test]
async fn endpoint_rpd_and_disabled_endpoints() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n{}",
        endpoint(&upstream.url, "rpd = 1")
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    assert_eq!(
        post_json(&url, "fk-test", &chat("gpt-4o", "x")).await.0,
        200
    );
    let (status, headers, _) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 429);
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 3600, "a day window frees up in hours, got {retry}");
    assert_eq!(upstream.hits(), 1);

    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n{}",
        endpoint(&upstream.url, "rpm = 0")
    ));
    let (status, _, _) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 404, "rpm = 0 disables the endpoint");
    assert_eq!(upstream.hits(), 1);
}

#[actix_web::test]
async fn per_ip_limit() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = 2\nip_interval_secs = 60\n{}",
        endpoint(&upstream.url, "")
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    assert_eq!(
        post_json(&url, "fk-test", &chat("gpt-4o", "x")).await.0,
        200
    );
    assert_eq!(
        post_json(&url, "fk-test", &chat("gpt-4o", "x")).await.0,
        200
    );
    let (status, headers, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert!(json_of(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("your IP"));
    assert_eq!(upstream.hits(), 2);
}

#[actix_web::test]
async fn repeated_client_errors_blacklist_the_ip() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = -1\nip_error_threshold = 3\nip_error_window_secs = 600\n{}",
        endpoint(&upstream.url, "")
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..3 {
        assert_eq!(
            post_json(&url, "wrong-key", &chat("gpt-4o", "x")).await.0,
            401
        );
    }
    // Now even a valid key from this IP is refused, in dialect, before auth.
    let (status, headers, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 403);
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&retry), "{retry}");
    assert_eq!(json_of(&body)["error"]["type"], "permission_error");
    let mut response = common::client()
        .post(format!("{}/v1/messages", gw.url))
        .insert_header(("x-api-key", "fk-test"))
        .send_json(&serde_json::json!({"model": "claude", "max_tokens": 5, "messages": []}))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        json_of(&response.body().await.unwrap())["error"]["type"],
        "permission_error"
    );
    assert_eq!(
        upstream.hits(),
        0,
        "a blacklisted IP never reaches the upstream"
    );
}

#[actix_web::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let base = |trusted: &str| {
        format!(
            "[server]\nworkers = 1\ntrusted_proxies = [{trusted}]\n[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = -1\nip_error_threshold = 2\n{}",
            endpoint(&upstream.url, "")
        )
    };
    let send = |gw_url: String, key: &'static str, xff: &'static str| async move {
        common::client()
            .post(format!("{gw_url}/v1/chat/completions"))
            .insert_header(("authorization", format!("Bearer {key}")))
            .insert_header(("x-forwarded-for", xff))
            .send_json(&chat("gpt-4o", "x"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    // Untrusted peer: a spoofed header changes nothing; the socket IP is banned.
    let gw = TestGateway::start(&base(""));
    assert_eq!(send(gw.url.clone(), "bad", "198.51.100.1").await, 401);
    assert_eq!(send(gw.url.clone(), "bad", "198.51.100.2").await, 401);
    assert_eq!(send(gw.url.clone(), "fk-test", "198.51.100.3").await, 403);

    // Trusted loopback proxy: each forwarded client is judged on its own.
    let gw = TestGateway::start(&base("\"127.0.0.0/8\""));
    assert_eq!(send(gw.url.clone(), "bad", "198.51.100.1").await, 401);
    assert_eq!(send(gw.url.clone(), "bad", "198.51.100.1").await, 401);
    assert_eq!(send(gw.url.clone(), "fk-test", "198.51.100.1").await, 403);
    assert_eq!(send(gw.url.clone(), "fk-test", "198.51.100.2").await, 200);
    let records = gw.usage_records().await;
    assert_eq!(records.last().unwrap()["ip"], "198.51.100.2");
}
