//! Several gateway instances sharing one real `redis-server` (started here on
//! a free port): one endpoint RPM limit for all, bans made through one seen
//! by the others, and the down policy while Redis is killed (endpoint limits
//! fail closed with 429, per-IP limits fail open, `/health` degraded), back
//! to normal once Redis is restarted, without restarting the gateways.
//!
//! Skipped with a message when `redis-server` is not installed and `CI` is
//! not set; under CI a missing `redis-server` fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use redis_server::RedisServer;
use serde_json::Value;

struct Setup<'a> {
    redis: &'a RedisServer,
    upstream: &'a FakeUpstream,
    prefix: &'a str,
    rpm: i64,
    ip_requests: i64,
    ip_error_threshold: i64,
    quotas_policy: &'a str,
}

impl Setup<'_> {
    fn toml(&self) -> String {
        format!(
            "[auth]\nclient_keys = [\"fk-test\"]\n\
             [limits]\nip_requests = {}\nip_error_threshold = {}\nip_error_window_secs = 600\n\
             [storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{}\"\n\
             redis_timeout_ms = 500\non_redis_down_quotas = \"{}\"\n\
             [[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
             keys = [\"sk-1\"]\nrpm = {}\n",
            self.ip_requests,
            self.ip_error_threshold,
            self.redis.url(),
            self.prefix,
            self.quotas_policy,
            self.upstream.url,
            self.rpm,
        )
    }

    fn gateways(&self, n: usize) -> Vec<TestGateway> {
        (0..n).map(|_| TestGateway::start(&self.toml())).collect()
    }
}

fn upstream() -> FakeUpstream {
    FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")))
}

async fn chat_status(gw: &TestGateway, key: &str) -> (u16, Value) {
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, _, body) = post_json(&url, key, &chat("gpt-4o", "x")).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn health(gw: &TestGateway) -> (u16, Value) {
    let mut response = common::client()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        json_of(&response.body().await.unwrap()),
    )
}

async fn wait_for_health(gw: &TestGateway, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = health(gw).await;
        if body["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/health never said {status}: {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn three_instances_share_one_endpoint_rpm() {
    let Some(redis) = RedisServer::start_or_skip("three_instances_share_one_endpoint_rpm") else {
        return;
    };
    let upstream = upstream();
    let setup = Setup {
        redis: &redis,
        upstream: &upstream,
        prefix: "rpm:",
        rpm: 20,
        ip_requests: -1,
        ip_error_threshold: -1,
        quotas_policy: "fail_closed",
    };
    let gateways = setup.gateways(3);
    for gw in &gateways {
        assert_eq!(health(gw).await.1["redis"], "up");
    }

    let requests = (0..60).map(|i| chat_status(&gateways[i % 3], "fk-test"));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (20, 40), "{statuses:?}");
    assert_eq!(
        upstream.hits(),
        20,
        "exactly the limit reached the upstream"
    );

    // Every instance reports the shared count.
    for gw in &gateways {
        let snapshot = gw.state.live().rate_limiters[0].snapshot().await.unwrap();
        assert_eq!(
            (snapshot.rpm, snapshot.rpd, snapshot.has_room),
            (20, 20, false)
        );
    }
}

#[actix_web::test]
async fn bans_and_ip_limits_hold_across_instances() {
    let Some(redis) = RedisServer::start_or_skip("bans_and_ip_limits_hold_across_instances") else {
        return;
    };
    let upstream = upstream();
    let setup = Setup {
        redis: &redis,
        upstream: &upstream,
        prefix: "ip:",
        rpm: -1,
        ip_requests: 3,
        ip_error_threshold: 2,
        quotas_policy: "fail_closed",
    };
    let gateways = setup.gateways(2);
    let (a, b) = (&gateways[0], &gateways[1]);

    // Per-IP limit: 3 per minute in all, whichever instance is asked.
    assert_eq!(chat_status(a, "fk-test").await.0, 200);
    assert_eq!(chat_status(b, "fk-test").await.0, 200);
    assert_eq!(chat_status(a, "fk-test").await.0, 200);
    let (status, body) = chat_status(b, "fk-test").await;
    assert_eq!(status, 429);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("your IP"));
    assert_eq!(upstream.hits(), 3);

    // Lift the limit through the other instance (unban forgets requests too).
    assert!(b
        .state
        .live()
        .blacklist
        .unban("127.0.0.1".parse().unwrap())
        .await
        .unwrap());

    // Two wrong keys through A ban the IP; B refuses it.
    assert_eq!(chat_status(a, "wrong").await.0, 401);
    assert_eq!(chat_status(a, "wrong").await.0, 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.state.live().blacklist.list().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the ban never reached Redis");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = chat_status(b, "fk-test").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    let bans = a.state.live().blacklist.list().await.unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].ip.to_string(), "127.0.0.1");
    assert_eq!(upstream.hits(), 3, "a banned IP never reaches the upstream");
}

#[actix_web::test]
async fn redis_down_follows_the_policy_and_recovers_without_restart() {
    let Some(mut redis) =
        RedisServer::start_or_skip("redis_down_follows_the_policy_and_recovers_without_restart")
    else {
        return;
    };
    let upstream = upstream();
    let closed = Setup {
        redis: &redis,
        upstream: &upstream,
        prefix: "down:",
        rpm: 100,
        ip_requests: 2,
        ip_error_threshold: -1,
        quotas_policy: "fail_closed",
    };
    let gateways = closed.gateways(2);
    let open = Setup {
        quotas_policy: "fail_open",
        prefix: "down-open:",
        ..closed
    }
    .gateways(1);
    let (a, b, lenient) = (&gateways[0], &gateways[1], &open[0]);

    assert_eq!(chat_status(a, "fk-test").await.0, 200);
    assert_eq!(chat_status(b, "fk-test").await.0, 200);
    assert_eq!(
        chat_status(a, "fk-test").await.1["error"]["message"]
            .as_str()
            .map(|m| m.contains("your IP")),
        Some(true)
    );
    assert_eq!(upstream.hits(), 2);

    redis.kill();

    // Endpoint RPM fails closed: 429 with a short Retry-After, nothing sent
    // upstream; the per-IP limit (used up above) fails open, so the refusal
    // is the endpoint's, not the IP's.
    for gw in [a, b] {
        let url = format!("{}/v1/chat/completions", gw.url);
        let (status, headers, body) = post_json(&url, "fk-test", &chat("gpt-4o", "x")).await;
        assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers.get("retry-after").unwrap(), "1");
        let message = json_of(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("upstream endpoint"), "{message}");
    }
    assert_eq!(upstream.hits(), 2);
    // An instance configured to fail open lets the request through.
    assert_eq!(chat_status(lenient, "fk-test").await.0, 200);
    assert_eq!(upstream.hits(), 3);

    for gw in [a, b, lenient] {
        let (status, body) = health(gw).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({"status": "degraded", "redis": "down"})
        );
    }

    // Redis comes back (empty: it saved nothing): no restart of the gateways.
    redis.restart();
    for gw in [a, b, lenient] {
        wait_for_health(gw, "ok").await;
        assert_eq!(health(gw).await.1["redis"], "up");
    }
    assert_eq!(chat_status(a, "fk-test").await.0, 200);
    assert_eq!(chat_status(b, "fk-test").await.0, 200);
    let (status, body) = chat_status(a, "fk-test").await;
    assert_eq!(status, 429, "the per-IP limit is enforced again: {body}");
    assert_eq!(upstream.hits(), 5);
    let snapshot = a.state.live().rate_limiters[0].snapshot().await.unwrap();
    assert_eq!(snapshot.rpm, 2, "counting restarted in the new Redis");
}
