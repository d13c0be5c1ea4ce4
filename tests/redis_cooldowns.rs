//! Upstream key cooldowns shared through a real `redis-server` (started here
//! on a free port): a 429 with Retry-After that one gateway sees for a key
//! makes the other gateways stop lending that key, an instance started later
//! learns it too, the announcement is made once (no echo between
//! instances), and keys an instance does not have are ignored.
//!
//! Skipped with a message when `redis-server` is not installed and `CI` is
//! not set; under CI a missing `redis-server` fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use futures_util::StreamExt;
use redis_server::RedisServer;
use serde_json::json;

use aigate::actors::key_pool::ApplyCooldown;

const KEY_A: &str = "sk-key-aaaa";
const KEY_B: &str = "sk-key-bbbb";

fn key_of(req: &common::Recorded) -> String {
    req.header("authorization")
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string()
}

fn config(redis: &RedisServer, upstream: &FakeUpstream) -> String {
    format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n\
         [limits]\nip_requests = -1\nip_error_threshold = -1\n\
         [storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"cool:\"\n\
         [[endpoints]]\nid = \"pool\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         keys = [\"{KEY_A}\", \"{KEY_B}\"]\n",
        redis.url(),
        upstream.url,
    )
}

/// The state of key A (the endpoint's first key) as `gw` sees it, with
/// when its cooldown ends (Unix seconds).
async fn key_a(gw: &TestGateway) -> (String, Option<u64>) {
    let snapshot = gw.state.key_pool.snapshot().await.unwrap();
    let a = &snapshot[0][0];
    assert_eq!(a.id, "…aaaa");
    (a.state.to_owned(), a.cooldown_until)
}

async fn wait_for_cooling(gw: &TestGateway) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let (state, Some(until)) = key_a(gw).await {
            assert_eq!(state, "cooling");
            return until;
        }
        assert!(
            Instant::now() < deadline,
            "key A never cooled down on this instance"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[actix_web::test]
async fn a_429_seen_by_one_gateway_cools_the_key_on_all() {
    let Some(redis) = RedisServer::start_or_skip("a_429_seen_by_one_gateway_cools_the_key_on_all")
    else {
        return;
    };
    let upstream = FakeUpstream::start(|req, _| match key_of(req).as_str() {
        KEY_A => Reply::status(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "120"),
        _ => Reply::json(openai_completion("gpt-4o", "from B")),
    });
    // Every announcement on the channel, to count them.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("cool:cooldowns").await.unwrap();
    let mut announcements = pubsub.into_on_message();

    let first = TestGateway::start(&config(&redis, &upstream));
    let second = TestGateway::start(&config(&redis, &upstream));
    assert_eq!(key_a(&second).await.0, "active");

    // The first gateway lends A (429, then B answers).
    let url = format!("{}/v1/chat/completions", first.url);
    let (status, _, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "from B");
    let keys: Vec<String> = upstream.requests().iter().map(key_of).collect();
    assert_eq!(keys, [KEY_A, KEY_B]);

    // The second gateway learns it, with the upstream's Retry-After.
    let until = wait_for_cooling(&second).await;
    assert!(
        (unix_now() + 110..=unix_now() + 121).contains(&until),
        "{until}"
    );
    let url = format!("{}/v1/chat/completions", second.url);
    for _ in 0..4 {
        let (status, _, _) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
        assert_eq!(status, 200);
    }
    let keys: Vec<String> = upstream.requests().iter().map(key_of).collect();
    assert_eq!(
        keys.iter().filter(|k| *k == KEY_A).count(),
        1,
        "A was never lent again: {keys:?}"
    );

    // An instance started now replays the stored cooldown.
    let third = TestGateway::start(&config(&redis, &upstream));
    wait_for_cooling(&third).await;

    // Announced once: neither the sender nor the receivers echo it.
    let message = tokio::time::timeout(Duration::from_secs(2), announcements.next())
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(payload["endpoint_id"], "pool");
    assert!(payload["key_id"].as_str().unwrap().starts_with("k-"));
    let echo = tokio::time::timeout(Duration::from_millis(500), announcements.next()).await;
    assert!(echo.is_err(), "a second announcement: {echo:?}");

    // Keys and endpoints this instance does not have are ignored.
    for (endpoint_id, key_id) in [("pool", "k-00000000"), ("elsewhere", "k-00000000")] {
        let applied = second.state.key_pool.apply_cooldown(ApplyCooldown {
            endpoint_id: endpoint_id.into(),
            key_id: key_id.into(),
            duration: Duration::from_secs(30),
        });
        assert!(!applied);
    }
    let snapshot = second.state.key_pool.snapshot().await.unwrap();
    assert_eq!(snapshot[0][1].state, "active");
}
