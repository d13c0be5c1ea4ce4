//! Routing: by Host, then route prefix, then model; selection strategies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};

fn named(name: &'static str) -> FakeUpstream {
    FakeUpstream::always(Reply::json(openai_completion("m", name)))
}

async fn answer_of(url: &str, model: &str) -> String {
    let (status, _, body) = post_json(url, "fk-test", &chat(model, "x")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json_of(&body)["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn host_then_prefix_then_model() {
    let (a, b, c) = (named("A"), named("B"), named("C"));
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[[endpoints]]
id = "a"
provider = "openai"
base_url = "{}"
keys = ["sk-a"]
models = ["gpt-a"]
[[endpoints]]
id = "b"
provider = "openai_compatible"
base_url = "{}/v1"
keys = ["sk-b"]
route_prefix = "/beta"
models = ["gpt-b"]
[[endpoints]]
id = "c"
provider = "openai"
base_url = "{}"
keys = ["sk-c"]
hosts = ["c.example.com"]
"#,
        a.url, b.url, c.url
    ));
    assert_eq!(
        answer_of(&format!("{}/v1/chat/completions", gw.url), "gpt-a").await,
        "A"
    );
    assert_eq!(
        answer_of(&format!("{}/v1/chat/completions", gw.url), "gpt-b").await,
        "B"
    );
    assert_eq!(
        answer_of(&format!("{}/beta/v1/chat/completions", gw.url), "gpt-b").await,
        "B"
    );
    // The prefix is stripped and a base URL ending in /v1 gets no second one.
    assert_eq!(b.requests()[1].path, "/v1/chat/completions");
    // Under /beta only endpoint b is reachable.
    let (status, _, body) = post_json(
        &format!("{}/beta/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-a", "x"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(json_of(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-b"));
    // Host-reserved endpoint c serves any model for its host, and only there.
    let mut response = common::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .insert_header(("host", "c.example.com"))
        .send_json(&chat("anything", "x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_of(&response.body().await.unwrap())["choices"][0]["message"]["content"],
        "C"
    );
    assert_eq!(c.hits(), 1);
    let (status, _, _) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("anything", "x"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(c.hits(), 1);
}

async fn spread(strategy: &str, weights: (u32, u32), n: usize) -> HashMap<String, usize> {
    let (a, b) = (named("A"), named("B"));
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[limits]
ip_requests = -1
[routing]
strategy = "{strategy}"
[[endpoints]]
id = "a"
provider = "openai"
base_url = "{}"
keys = ["sk-a"]
weight = {}
[[endpoints]]
id = "b"
provider = "openai"
base_url = "{}"
keys = ["sk-b"]
weight = {}
"#,
        a.url, weights.0, b.url, weights.1
    ));
    let mut counts = HashMap::new();
    for _ in 0..n {
        let name = answer_of(&format!("{}/v1/chat/completions", gw.url), "m").await;
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[actix_web::test]
async fn round_robin_alternates() {
    let counts = spread("round_robin", (1, 1), 10).await;
    assert_eq!(counts.get("A"), Some(&5));
    assert_eq!(counts.get("B"), Some(&5));
}

#[actix_web::test]
async fn weighted_follows_weights() {
    let counts = spread("weighted", (9, 1), 200).await;
    let a = *counts.get("A").unwrap_or(&0);
    // Expected 180; 150 is > 5 standard deviations away.
    assert!(a > 150, "weighted 9:1 gave {counts:?}");
}

#[actix_web::test]
async fn random_uses_both() {
    let counts = spread("random", (1, 1), 60).await;
    assert!(
        counts.get("A").copied().unwrap_or(0) > 10 && counts.get("B").copied().unwrap_or(0) > 10,
        "{counts:?}"
    );
}

#[actix_web::test]
async fn least_latency_prefers_the_fast_endpoint() {
    let fast = named("fast");
    let slow = FakeUpstream::always(Reply::Slow {
        delay: std::time::Duration::from_millis(150),
        then: Box::new(Reply::json(openai_completion("m", "slow"))),
    });
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["fk-test"]
[routing]
strategy = "least_latency"
[[endpoints]]
id = "slow"
provider = "openai"
base_url = "{}"
keys = ["sk-s"]
[[endpoints]]
id = "fast"
provider = "openai"
base_url = "{}"
keys = ["sk-f"]
"#,
        slow.url, fast.url
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    // The first two requests measure both; then the fast one wins every time.
    answer_of(&url, "m").await;
    answer_of(&url, "m").await;
    for _ in 0..8 {
        assert_eq!(answer_of(&url, "m").await, "fast");
    }
    assert_eq!(slow.hits(), 1);
}
