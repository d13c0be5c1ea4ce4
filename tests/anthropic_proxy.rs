//! Anthropic-dialect proxying: x-api-key, anthropic-version, anthropic-beta,
//! streams relayed event by event with usage read from them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::replies::{anthropic_message, anthropic_stream};
use common::{json_of, FakeUpstream, Reply, TestGateway};
use serde_json::json;

fn config(upstream: &FakeUpstream) -> String {
    format!(
        r#"
[auth]
client_keys = ["fk-test"]
[[endpoints]]
id = "claude"
provider = "anthropic"
base_url = "{}"
keys = ["sk-ant-upstream-9876"]
"#,
        upstream.url
    )
}

fn message(stream: bool) -> serde_json::Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(
    gw: &TestGateway,
    path: &str,
    body: &serde_json::Value,
    extra: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut request = common::client()
        .post(format!("{}{path}", gw.url))
        .insert_header(("x-api-key", "fk-test"));
    for (k, v) in extra {
        request = request.insert_header((*k, *v));
    }
    let mut response = request.send_json(body).await.unwrap();
    (
        response.status().as_u16(),
        response.body().await.unwrap().to_vec(),
    )
}

#[actix_web::test]
async fn message_goes_out_with_the_pooled_key_and_version() {
    let upstream = FakeUpstream::always(Reply::json(anthropic_message(
        "claude-sonnet-4-5",
        "Hello!",
    )));
    let gw = TestGateway::start(&config(&upstream));
    let (status, body) = post(
        &gw,
        "/v1/messages",
        &message(false),
        &[("anthropic-beta", "prompt-caching-2024-07-31")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["content"][0]["text"], "Hello!");
    let seen = &upstream.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-upstream-9876"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.json(), message(false));
    let records = gw.usage_records().await;
    assert_eq!(
        (
            records[0]["prompt_tokens"].as_u64(),
            records[0]["completion_tokens"].as_u64()
        ),
        (Some(12), Some(6))
    );
}

#[actix_web::test]
async fn client_version_header_wins() {
    let upstream = FakeUpstream::always(Reply::json(anthropic_message("claude-sonnet-4-5", "x")));
    let gw = TestGateway::start(&config(&upstream));
    let (status, _) = post(
        &gw,
        "/v1/messages",
        &message(false),
        &[("anthropic-version", "2024-01-01")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        upstream.requests()[0].header("anthropic-version"),
        Some("2024-01-01")
    );
}

#[actix_web::test]
async fn stream_is_relayed_event_by_event_with_usage() {
    let upstream = FakeUpstream::always(Reply::sse(
        anthropic_stream("claude-sonnet-4-5", &["Hel", "lo"]),
        30,
    ));
    let gw = TestGateway::start(&config(&upstream));
    let (status, body) = post(&gw, "/v1/messages", &message(true), &[]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let expected: String = anthropic_stream("claude-sonnet-4-5", &["Hel", "lo"]).concat();
    assert_eq!(text, expected, "events must pass through untouched");
    let records = gw.usage_records().await;
    assert_eq!(records[0]["prompt_tokens"], 21);
    assert_eq!(records[0]["completion_tokens"], 3);
}

#[actix_web::test]
async fn count_tokens_is_forwarded() {
    let upstream = FakeUpstream::always(Reply::json(json!({"input_tokens": 42})));
    let gw = TestGateway::start(&config(&upstream));
    let (status, body) = post(
        &gw,
        "/v1/messages/count_tokens",
        &json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["input_tokens"], 42);
    assert_eq!(upstream.requests()[0].path, "/v1/messages/count_tokens");
}

#[actix_web::test]
async fn anthropic_errors_are_in_anthropic_dialect() {
    let upstream = FakeUpstream::always(Reply::json(json!({})));
    let gw = TestGateway::start(&config(&upstream));
    let mut response = common::client()
        .post(format!("{}/v1/messages", gw.url))
        .insert_header(("x-api-key", "wrong"))
        .send_json(&message(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let mut response = common::client()
        .post(format!("{}/v1/messages", gw.url))
        .insert_header(("x-api-key", "fk-test"))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(upstream.hits(), 0);
}
