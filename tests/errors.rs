//! Bad input gets a clear error in the client's dialect with the right
//! status, and never reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use serde_json::json;

fn config(upstream: &FakeUpstream) -> String {
    format!(
        r#"
[server]
workers = 1
max_body_mb = 1
[auth]
client_keys = ["fk-test"]
[limits]
ip_requests = -1
ip_error_threshold = -1
[[endpoints]]
id = "up"
provider = "openai"
base_url = "{}"
keys = ["sk-1"]
models = ["gpt-4o", "gpt-4o-mini"]
"#,
        upstream.url
    )
}

async fn raw_post(
    url: &str,
    key: Option<&str>,
    body: Vec<u8>,
) -> (u16, awc::http::header::HeaderMap, serde_json::Value) {
    let mut request = common::client()
        .post(url)
        .insert_header(("content-type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut response = request.send_body(body).await.unwrap();
    let headers = response.headers().clone();
    (
        response.status().as_u16(),
        headers,
        json_of(&response.body().await.unwrap()),
    )
}

#[actix_web::test]
async fn each_client_mistake_has_its_status_and_body() {
    let upstream = FakeUpstream::always(Reply::json(json!({})));
    let gw = TestGateway::start(&config(&upstream));
    let url = format!("{}/v1/chat/completions", gw.url);

    let (status, _, body) = raw_post(&url, Some("fk-test"), b"{\"model\":".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, _, body) = raw_post(&url, None, b"{}".to_vec()).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": {"message": "Incorrect or missing API key. Provide a valid key in 'Authorization: Bearer <key>' or 'x-api-key'.",
                         "type": "authentication_error", "param": null, "code": "invalid_api_key"}})
    );

    let (status, _, body) = raw_post(
        &url,
        Some("fk-test"),
        serde_json::to_vec(&chat("gpt-5-nope", "x")).unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-5-nope") && message.contains("gpt-4o, gpt-4o-mini"),
        "{message}"
    );

    let (status, _, body) = raw_post(
        &url,
        Some("fk-test"),
        serde_json::to_vec(&json!({"messages": []})).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "model_required");

    let big = serde_json::to_vec(&chat("gpt-4o", &"x".repeat(1_100_000))).unwrap();
    let (status, _, body) = raw_post(&url, Some("fk-test"), big).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "request_too_large");

    let (status, _, body) = raw_post(
        &format!("{}/v2/nothing", gw.url),
        Some("fk-test"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_url");

    assert_eq!(upstream.hits(), 0, "no bad request may reach the upstream");
    let records = gw.usage_records().await;
    let statuses: Vec<u64> = records
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses.len(),
        6,
        "every request leaves a usage record: {statuses:?}"
    );
    for expected in [400, 401, 404, 413] {
        assert!(statuses.contains(&expected));
    }
}

#[actix_web::test]
async fn upstream_down_is_502_and_timeout_is_504() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[[endpoints]]
id = "dead"
provider = "openai"
base_url = "{dead_url}"
keys = ["sk-1"]
"#
    ));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(json_of(&body)["error"]["code"], "upstream_error");

    let slow = FakeUpstream::always(Reply::Slow {
        delay: std::time::Duration::from_secs(3),
        then: Box::new(Reply::json(json!({}))),
    });
    let gw = TestGateway::start(&format!(
        r#"
[server]
workers = 1
request_timeout_secs = 1
[auth]
client_keys = ["fk-test"]
[limits]
max_attempts = 1
[[endpoints]]
id = "slow"
provider = "openai"
base_url = "{}"
keys = ["sk-1"]
"#,
        slow.url
    ));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 504);
    assert_eq!(json_of(&body)["error"]["code"], "upstream_timeout");
}
