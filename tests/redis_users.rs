//! Several gateway instances sharing one real `redis-server` (started here on
//! a free port) and one user: the user's RPM, TPM and model quotas hold for
//! all instances together, a quota reset through one instance's admin API
//! frees the others, the admin view shows every instance's usage, and while
//! Redis is down the quotas policy answers (fail_closed: 503 in the client's
//! dialect) until it is back, without restarting the gateways.
//!
//! Users live in each instance's data dir, so every gateway here starts from
//! a copy of one seeded user database, as a deployment would ship one.
//!
//! Skipped with a message when `redis-server` is not installed and `CI` is
//! not set; under CI a missing `redis-server` fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use redis_server::RedisServer;
use serde_json::{json, Value};

use aigate::storage::{SledStore, StateStore, StoreOp, Tree};
use aigate::users::{hex, key_digest};

const ADMIN: &str = "ak-admin-for-redis-tests";
const USER_KEY: &str = "ak-shared-user-of-every-instance";
const USER_ID: &str = "u-shared";

/// Every upstream answer costs 11 + 7 = 18 tokens.
const TOKENS_PER_ANSWER: u64 = 18;

struct Cluster {
    gateways: Vec<TestGateway>,
}

/// `n` gateways on one Redis (key prefix `prefix`), each with a copy of a
/// user database holding `limits` (user fields: rpm, tpm, quotas, …).
fn cluster(
    redis: &RedisServer,
    upstream: &FakeUpstream,
    prefix: &str,
    policy: &str,
    limits: Value,
    n: usize,
) -> Cluster {
    let seeded = tempfile::tempdir().unwrap();
    seed_user(&seeded.path().join("db"), limits);
    let toml = format!(
        "[server]\nworkers = 1\n\
         [auth]\nadmin_keys = [\"{ADMIN}\"]\n\
         [limits]\nip_requests = -1\nip_error_threshold = -1\n\
         [storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n\
         redis_timeout_ms = 500\non_redis_down_quotas = \"{policy}\"\n\
         [[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{}\"\nkeys = [\"sk-1\"]\n",
        redis.url(),
        upstream.url,
    );
    let gateways = (0..n)
        .map(|_| {
            let data_dir = tempfile::tempdir().unwrap();
            copy_dir(seeded.path(), data_dir.path());
            let cli = aigate::config::CliOverrides {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                data_dir: Some(data_dir.path().to_path_buf()),
            };
            let config = aigate::config::from_toml_str(&toml, &BTreeMap::new(), &cli).unwrap();
            TestGateway::start_config(config, data_dir)
        })
        .collect();
    Cluster { gateways }
}

/// Writes one user with `limits` into a fresh user database.
fn seed_user(db: &Path, limits: Value) {
    let mut user = json!({
        "v": 1, "id": USER_ID, "name": "shared", "role": "user", "enabled": true,
        "key_hash": hex(&key_digest(USER_KEY)), "key_hint": "tems", "created_at": 0
    });
    for (field, value) in limits.as_object().unwrap() {
        user[field] = value.clone();
    }
    let store = SledStore::open(db).unwrap();
    let record = serde_json::to_vec(&user).unwrap();
    store
        .apply(Tree::Users, vec![StoreOp::Put(USER_ID.into(), record)])
        .unwrap();
    store.flush().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}

fn upstream() -> FakeUpstream {
    FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")))
}

/// One chat request of the shared user; status, Retry-After and body.
async fn ask(gw: &TestGateway, model: &str) -> (u16, Option<String>, Value) {
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, headers, body) = post_json(&url, USER_KEY, &chat(model, "x")).await;
    let retry_after = headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, retry_after, body)
}

async fn admin(gw: &TestGateway, method: &str, path: &str) -> (u16, Value) {
    let request = common::client()
        .request(
            method.parse().unwrap(),
            format!("{}/admin/api/users/{USER_ID}{path}", gw.url),
        )
        .insert_header(("authorization", format!("Bearer {ADMIN}")));
    let mut response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, json_of(&response.body().await.unwrap()))
}

/// Waits until the admin view (through `gw`) says `check`: charges reach
/// Redis when a request's finish step has run, just after the reply.
async fn wait_for_view(gw: &TestGateway, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, view) = admin(gw, "GET", "").await;
        assert_eq!(status, 200, "{view}");
        if check(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "never {what}: {view}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[actix_web::test]
async fn three_instances_admit_exactly_the_users_rpm() {
    let Some(redis) = RedisServer::start_or_skip("three_instances_admit_exactly_the_users_rpm")
    else {
        return;
    };
    let upstream = upstream();
    let Cluster { gateways } = cluster(
        &redis,
        &upstream,
        "urpm:",
        "fail_closed",
        json!({"rpm": 10}),
        3,
    );

    let requests = (0..30).map(|i| ask(&gateways[i % 3], "gpt-4o"));
    let answers = futures_util::future::join_all(requests).await;
    let ok = answers.iter().filter(|(s, ..)| *s == 200).count();
    let limited: Vec<&(u16, Option<String>, Value)> =
        answers.iter().filter(|(s, ..)| *s == 429).collect();
    assert_eq!((ok, limited.len()), (10, 20), "{answers:?}");
    assert_eq!(
        upstream.hits(),
        10,
        "exactly the user's RPM reached upstream"
    );
    for (_, retry_after, body) in limited {
        assert!(retry_after.is_some());
        assert!(
            message(body).contains("requests per minute of your key"),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn a_model_quota_used_up_on_one_instance_refuses_on_another_until_reset() {
    let Some(redis) = RedisServer::start_or_skip("shared model quota") else {
        return;
    };
    let upstream = upstream();
    let quota = json!([{"models": "gpt-4o*", "tokens": 10, "period": "daily"}]);
    let Cluster { gateways } = cluster(
        &redis,
        &upstream,
        "uquota:",
        "fail_closed",
        json!({ "quotas": quota }),
        2,
    );
    let (a, b) = (&gateways[0], &gateways[1]);

    assert_eq!(ask(a, "gpt-4o").await.0, 200);
    // B's admin view shows what A's request used.
    let view = wait_for_view(b, "showed A's usage", |v| {
        v["quotas"][0]["used"] == TOKENS_PER_ANSWER
    })
    .await;
    assert_eq!(view["quotas"][0]["remaining"], 0);
    assert_eq!(view["in_flight"], 0);

    let (status, retry_after, body) = ask(b, "gpt-4o-mini").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let text = message(&body);
    assert!(
        text.contains("'gpt-4o*'") && text.contains("refreshes at"),
        "{text}"
    );
    let retry: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    // Other model families are not under that quota.
    assert_eq!(ask(b, "o3-mini").await.0, 200);
    assert_eq!(ask(a, "gpt-4o").await.0, 429);

    // A reset through A's admin API frees B as well.
    let (status, view) = admin(a, "POST", "/reset-quota").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["quotas"][0]["used"], 0);
    assert_eq!(ask(b, "gpt-4o").await.0, 200);
    assert_eq!(upstream.hits(), 3);
}

#[actix_web::test]
async fn tpm_is_counted_across_instances() {
    let Some(redis) = RedisServer::start_or_skip("shared user tpm") else {
        return;
    };
    let upstream = upstream();
    let Cluster { gateways } = cluster(
        &redis,
        &upstream,
        "utpm:",
        "fail_closed",
        json!({"tpm": 30, "rpm": 100}),
        2,
    );
    let (a, b) = (&gateways[0], &gateways[1]);
    let redis_tokens = |n: u64| {
        let reply = redis.command("HVALS utpm:user:{u-shared}:tokens");
        let total: u64 = reply
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .sum();
        total >= n
    };

    assert_eq!(ask(a, "gpt-4o").await.0, 200);
    wait_until("A's tokens reached Redis", || {
        redis_tokens(TOKENS_PER_ANSWER)
    })
    .await;
    // 18 of 30 used: B still has room.
    assert_eq!(ask(b, "gpt-4o").await.0, 200);
    wait_until("B's tokens reached Redis", || {
        redis_tokens(2 * TOKENS_PER_ANSWER)
    })
    .await;
    // 36 of 30: both refuse.
    for gw in [a, b] {
        let (status, retry_after, body) = ask(gw, "gpt-4o").await;
        assert_eq!(status, 429, "{body}");
        assert!(message(&body).contains("tokens per minute of your key"));
        assert!(retry_after.is_some());
    }
    assert_eq!(upstream.hits(), 2);
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn redis_down_refuses_limited_users_with_503_until_it_is_back() {
    let Some(mut redis) = RedisServer::start_or_skip("shared user limits while Redis is down")
    else {
        return;
    };
    let upstream = upstream();
    let limits = json!({"rpm": 100});
    let closed = cluster(
        &redis,
        &upstream,
        "udown:",
        "fail_closed",
        limits.clone(),
        1,
    );
    let open = cluster(&redis, &upstream, "udown-open:", "fail_open", limits, 1);
    let (strict, lenient) = (&closed.gateways[0], &open.gateways[0]);
    assert_eq!(ask(strict, "gpt-4o").await.0, 200);
    assert_eq!(ask(lenient, "gpt-4o").await.0, 200);

    redis.kill();

    let (status, retry_after, body) = ask(strict, "gpt-4o").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "limits_unavailable");
    assert!(message(&body).contains("limits cannot be checked"));
    // The Anthropic route answers in its own dialect.
    let url = format!("{}/v1/messages", strict.url);
    let request = json!({"model": "gpt-4o", "max_tokens": 10,
                         "messages": [{"role": "user", "content": "x"}]});
    let (status, _, body) = post_json(&url, USER_KEY, &request).await;
    assert_eq!(status, 503);
    let body = json_of(&body);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    assert_eq!(upstream.hits(), 2, "nothing went upstream");
    // fail_open admits on the local rules alone.
    assert_eq!(ask(lenient, "gpt-4o").await.0, 200);
    assert_eq!(upstream.hits(), 3);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = ask(strict, "gpt-4o").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "never admitted again");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn failed_and_abandoned_requests_release_their_reservation() {
    let Some(redis) = RedisServer::start_or_skip("shared reservations are released") else {
        return;
    };
    let upstream = FakeUpstream::start(|req, _| match req.json()["model"].as_str() {
        Some("slow") => Reply::Slow {
            delay: Duration::from_millis(1500),
            then: Box::new(Reply::json(openai_completion("slow", "late"))),
        },
        Some("broken") => Reply::status(400, json!({"error": {"message": "bad"}})),
        _ => Reply::json(openai_completion("gpt-4o", "ok")),
    });
    let Cluster { gateways } = cluster(
        &redis,
        &upstream,
        "urelease:",
        "fail_closed",
        json!({"max_concurrent": 1}),
        2,
    );
    let (a, b) = (&gateways[0], &gateways[1]);

    // A request the upstream refuses ends, and frees the one slot. The
    // release reaches Redis just after the response, so wait for it.
    assert_eq!(ask(a, "broken").await.0, 400);
    wait_for_view(b, "released the refused request", |v| v["in_flight"] == 0).await;
    assert_eq!(ask(b, "gpt-4o").await.0, 200);
    wait_for_view(b, "released the answered request", |v| v["in_flight"] == 0).await;

    // A client that gives up on a slow request: meanwhile the slot is taken
    // on every instance; afterwards it is free again.
    let slow = awc::Client::builder()
        .timeout(Duration::from_millis(300))
        .finish()
        .post(format!("{}/v1/chat/completions", a.url))
        .insert_header(("authorization", format!("Bearer {USER_KEY}")))
        .send_json(&chat("slow", "x"));
    let (gave_up, busy) = futures_util::join!(slow, async {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        ask(b, "gpt-4o").await
    });
    assert!(gave_up.is_err(), "the client should have timed out");
    assert_eq!(busy.0, 429, "{:?}", busy.2);
    assert!(message(&busy.2).contains("concurrent requests of your key"));
    wait_for_view(b, "released the abandoned request", |v| v["in_flight"] == 0).await;
    assert_eq!(ask(b, "gpt-4o").await.0, 200);
}
