//! Health, status, models, and the offline mock behind the real app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, json_of, post_json, TestGateway};
use futures_util::StreamExt;
use serde_json::json;

const MOCK: &str = r#"
[auth]
client_keys = ["fk-test"]
[[endpoints]]
id = "mock"
provider = "mock"
models = ["gpt-4o-mini", "claude-3-5-haiku-latest", "text-embedding-3-small"]
model_mapping = { "gpt-alias" = "gpt-4o-mini" }
[[endpoints]]
id = "real"
provider = "openai"
base_url = "http://127.0.0.1:9"
keys = ["sk-very-secret-key-wxyz"]
models = ["gpt-4o"]
"#;

async fn get(url: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = common::client().get(url);
    if let Some(key) = key {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        json_of(&response.body().await.unwrap()),
    )
}

#[actix_web::test]
async fn health_needs_no_key() {
    let gw = TestGateway::start(MOCK);
    assert_eq!(
        get(&format!("{}/health", gw.url), None).await,
        (200, json!({"status": "ok"}))
    );
}

#[actix_web::test]
async fn status_shows_endpoints_and_key_ids_only() {
    let gw = TestGateway::start(MOCK);
    let (status, _) = get(&format!("{}/v1/status", gw.url), None).await;
    assert_eq!(status, 401);
    let (status, body) = get(&format!("{}/v1/status", gw.url), Some("fk-test")).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "aigate");
    assert!(
        body["uptime_secs"].is_u64()
            && body["timestamp"].is_string()
            && body["version"].is_string()
    );
    let real = &body["endpoints"][1];
    assert_eq!(real["id"], "real");
    assert_eq!(real["provider"], "openai");
    assert_eq!(real["enabled"], true);
    assert_eq!(real["available"], true);
    assert_eq!(real["limits"], json!({"rpm": -1, "rpd": -1}));
    assert_eq!(real["keys"][0]["id"], "…wxyz");
    assert_eq!(real["keys"][0]["state"], "active");
    assert!(!body.to_string().contains("very-secret"));
}

#[actix_web::test]
async fn models_lists_the_configured_union() {
    let gw = TestGateway::start(MOCK);
    let (status, body) = get(&format!("{}/v1/models", gw.url), Some("fk-test")).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "claude-3-5-haiku-latest",
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-alias",
            "text-embedding-3-small"
        ]
    );
    assert_eq!(body["data"][0]["object"], "model");
}

#[actix_web::test]
async fn mock_answers_both_dialects_and_streams_in_chunks() {
    let gw = TestGateway::start(MOCK);
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-alias", "hello world"),
    )
    .await;
    assert_eq!(status, 200);
    let body = json_of(&body);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello world"
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let mut request = chat("gpt-4o-mini", "one two three four");
    request["stream"] = json!(true);
    let mut response = common::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .send_json(&request)
        .await
        .unwrap();
    let mut chunks = 0;
    let mut text = String::new();
    while let Some(chunk) = response.next().await {
        chunks += 1;
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.contains("three") && text.ends_with("data: [DONE]\n\n"));
    assert!(!text.contains("\"usage\":{"), "usage chunk leaked: {text}");
    assert!(chunks >= 2, "mock stream came in {chunks} chunk(s)");

    let mut response = common::client()
        .post(format!("{}/v1/messages", gw.url))
        .insert_header(("x-api-key", "fk-test"))
        .send_json(&json!({"model": "claude-3-5-haiku-latest", "max_tokens": 50, "messages": [{"role": "user", "content": "hey"}]}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["content"][0]["text"], "Echo: hey");

    let (status, _, body) = post_json(
        &format!("{}/v1/embeddings", gw.url),
        "fk-test",
        &json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["data"].as_array().unwrap().len(), 2);

    let records = gw.usage_records().await;
    assert_eq!(records.len(), 4);
    assert!(records
        .iter()
        .all(|r| r["endpoint"] == "mock" && r["status"] == 200));
    assert!(
        records
            .iter()
            .all(|r| r["prompt_tokens"].as_u64().unwrap() > 0),
        "{records:?}"
    );
    assert_eq!(records[0]["upstream_model"], "gpt-4o-mini");
}

#[actix_web::test]
async fn mock_refuses_a_bad_request_in_dialect() {
    let gw = TestGateway::start(MOCK);
    let mut response = common::client()
        .post(format!("{}/v1/messages", gw.url))
        .insert_header(("x-api-key", "fk-test"))
        .send_json(&json!({"model": "claude-3-5-haiku-latest", "messages": [{"role": "user", "content": "hey"}]}))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["type"], "error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
}
