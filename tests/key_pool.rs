//! Key pools and retries: 429 cools a key (Retry-After honoured) and the
//! request goes to another key at once; 401/403 revokes a key; 5xx and
//! connect errors move to another endpoint; nothing is retried once the
//! client has bytes; everything cooling → 429 with Retry-After.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use serde_json::{json, Value};

fn key_of(req: &common::Recorded) -> String {
    req.header("authorization")
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string()
}

fn pool_config(url: &str, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        r#"
[auth]
client_keys = ["fk-test"]
[routing]
strategy = "round_robin"
[[endpoints]]
id = "pool"
provider = "openai"
base_url = "{url}"
keys = [{}]
"#,
        keys.join(", ")
    )
}

async fn status_json(gw: &TestGateway) -> Value {
    common::status_of(&gw.url, "fk-test").await
}

#[actix_web::test]
async fn rate_limited_key_cools_down_and_the_request_moves_on() {
    // Key A is rate limited for 120 s; key B answers.
    let upstream = FakeUpstream::start(|req, _| match key_of(req).as_str() {
        "sk-key-aaaa" => Reply::status(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "120"),
        _ => Reply::json(openai_completion("gpt-4o", "from B")),
    });
    let gw = TestGateway::start(&pool_config(&upstream.url, &["sk-key-aaaa", "sk-key-bbbb"]));
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..4 {
        let (status, _, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
        assert_eq!(status, 200);
        assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "from B");
    }
    // A was tried once, then left alone while cooling.
    let keys: Vec<String> = upstream.requests().iter().map(key_of).collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "sk-key-aaaa").count(),
        1,
        "{keys:?}"
    );
    assert_eq!(keys.iter().filter(|k| *k == "sk-key-bbbb").count(), 4);

    let status = status_json(&gw).await;
    let pool_keys = &status["endpoints"][0]["keys"];
    assert_eq!(pool_keys[0]["id"], "…aaaa");
    assert_eq!(pool_keys[0]["state"], "cooling");
    let until = pool_keys[0]["cooldown_until"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        until >= now + 110 && until <= now + 121,
        "Retry-After not honoured: {until} vs {now}"
    );
    assert_eq!(pool_keys[1]["state"], "active");
    let text = status.to_string();
    assert!(
        !text.contains("sk-key-aaaa") && !text.contains("sk-key-bbbb"),
        "key leaked in status"
    );

    let records = gw.usage_records().await;
    assert_eq!(records[0]["attempts"], 2);
}

#[actix_web::test]
async fn all_keys_cooling_gives_429_with_retry_after() {
    let upstream = FakeUpstream::always(
        Reply::status(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "30"),
    );
    let gw = TestGateway::start(&pool_config(&upstream.url, &["sk-1111", "sk-2222"]));
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, headers, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 429);
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((25..=30).contains(&retry), "retry-after {retry}");
    assert_eq!(json_of(&body)["error"]["type"], "rate_limit_error");
    assert_eq!(upstream.hits(), 2);
    // While cooling, the upstream is not bothered at all.
    let (status, _, _) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 429);
    assert_eq!(upstream.hits(), 2);
}

#[actix_web::test]
async fn refused_key_is_revoked() {
    let upstream = FakeUpstream::start(|req, _| match key_of(req).as_str() {
        "sk-dead-0001" => Reply::status(
            401,
            json!({"error": {"message": "Incorrect API key provided"}}),
        ),
        _ => Reply::json(openai_completion("gpt-4o", "ok")),
    });
    let gw = TestGateway::start(&pool_config(
        &upstream.url,
        &["sk-dead-0001", "sk-live-0002"],
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..3 {
        let (status, _, _) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
        assert_eq!(status, 200);
    }
    let dead_hits = upstream
        .requests()
        .iter()
        .filter(|r| key_of(r) == "sk-dead-0001")
        .count();
    assert_eq!(dead_hits, 1);
    let status = status_json(&gw).await;
    assert_eq!(status["endpoints"][0]["keys"][0]["state"], "revoked");
    assert_eq!(status["endpoints"][0]["keys"][0]["id"], "…0001");
}

#[actix_web::test]
async fn server_errors_fail_over_to_another_endpoint() {
    let broken = FakeUpstream::always(Reply::status(
        503,
        json!({"error": {"message": "overloaded"}}),
    ));
    let healthy = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "healthy")));
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[routing]
strategy = "weighted"
[[endpoints]]
id = "broken"
provider = "openai"
base_url = "{}"
keys = ["sk-b"]
weight = 1000
[[endpoints]]
id = "healthy"
provider = "openai"
base_url = "{}"
keys = ["sk-h"]
weight = 1
"#,
        broken.url, healthy.url
    ));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body)["choices"][0]["message"]["content"],
        "healthy"
    );
    assert_eq!(healthy.hits(), 1);
    let records = gw.usage_records().await;
    assert_eq!(records[0]["endpoint"], "healthy");
}

#[actix_web::test]
async fn attempts_are_capped_and_the_upstream_error_is_returned() {
    let upstreams: Vec<FakeUpstream> = (0..4)
        .map(|_| FakeUpstream::always(Reply::status(500, json!({"error": {"message": "boom"}}))))
        .collect();
    let endpoints: String = upstreams
        .iter()
        .enumerate()
        .map(|(i, u)| format!("[[endpoints]]\nid = \"e{i}\"\nprovider = \"openai\"\nbase_url = \"{}\"\nkeys = [\"sk-{i}\"]\n", u.url))
        .collect();
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nmax_attempts = 3\n{endpoints}"
    ));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(json_of(&body)["error"]["message"], "boom");
    let total: usize = upstreams.iter().map(|u| u.hits()).sum();
    assert_eq!(total, 3, "max_attempts = 3");
    assert!(
        upstreams.iter().all(|u| u.hits() <= 1),
        "each endpoint tried at most once"
    );
}

#[actix_web::test]
async fn a_json_answer_cut_short_goes_elsewhere_and_arrives_whole_with_its_length() {
    let whole = serde_json::to_vec(&openai_completion("gpt-4o", "fine")).unwrap();
    let dying = FakeUpstream::always(Reply::CutJson {
        announced: whole.len() as u64,
        sent: whole[..whole.len() / 2].to_vec(),
    });
    let good = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "fine")));
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[routing]
strategy = "weighted"
[[endpoints]]
id = "dying"
provider = "openai"
base_url = "{}"
keys = ["sk-d"]
weight = 1000
[[endpoints]]
id = "good"
provider = "openai"
base_url = "{}"
keys = ["sk-g"]
"#,
        dying.url, good.url
    ));
    let mut response = common::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .send_json(&chat("gpt-4o", "x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.body().await.unwrap();
    let length = response.headers().get("content-length").unwrap();
    assert_eq!(length.to_str().unwrap(), body.len().to_string());
    assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "fine");
    assert_eq!(dying.hits(), 1);
    assert_eq!(good.hits(), 1);
    let records = gw.usage_records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["endpoint"], "good");
    assert_eq!(records[0]["status"], 200);
}

#[actix_web::test]
async fn a_stream_dying_before_its_first_event_goes_elsewhere() {
    let dying = FakeUpstream::always(Reply::Sse {
        chunks: vec!["data: {}\n\n".into()],
        delay: std::time::Duration::ZERO,
        cut_after: Some(0),
    });
    let good = FakeUpstream::always(Reply::sse(
        common::replies::openai_stream("gpt-4o", &["fine"], true),
        0,
    ));
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[routing]
strategy = "weighted"
[[endpoints]]
id = "dying"
provider = "openai"
base_url = "{}"
keys = ["sk-d"]
weight = 1000
[[endpoints]]
id = "good"
provider = "openai"
base_url = "{}"
keys = ["sk-g"]
"#,
        dying.url, good.url
    ));
    let mut body = chat("gpt-4o", "x");
    body["stream"] = json!(true);
    let (status, _, text) =
        post_json(&format!("{}/v1/chat/completions", gw.url), "fk-test", &body).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("fine") && text.contains("[DONE]"), "{text}");
    assert_eq!(dying.hits(), 1);
    assert_eq!(good.hits(), 1);
}

#[actix_web::test]
async fn passthrough_forwards_the_clients_own_key() {
    let upstream = FakeUpstream::start(|req, _| match key_of(req).as_str() {
        "sk-client-own" => Reply::json(openai_completion("gpt-4o", "yours")),
        _ => Reply::status(401, json!({"error": {"message": "bad key"}})),
    });
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
passthrough = true
[[endpoints]]
id = "up"
provider = "openai"
base_url = "{}"
keys = ["sk-pooled"]
"#,
        upstream.url
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, _, body) = post_json(&url, "sk-client-own", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "yours");
    // A passthrough client's refused key is its own business: no retry, no revocation.
    let (status, _, _) = post_json(&url, "sk-client-wrong", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 401);
    assert_eq!(upstream.hits(), 2);
    // Our own client key still uses the pool; the pool's only key is refused,
    // revoked, and the client learns the gateway has no working key.
    let (status, _, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 502);
    assert!(json_of(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("refused the gateway's key"));
    assert_eq!(key_of(&upstream.requests()[2]), "sk-pooled");
}
