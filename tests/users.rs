//! User rules through the real app: quotas, TPM under parallel streams,
//! concurrency caps, expiry, allowed models, prompt caps, and the abuse
//! rules (blocked networks, reject phrases, weighted invalid keys).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, post_json, FakeUpstream, Reply, TestGateway};
use serde_json::json;

use aigate::users::actor::{Create, Get, NewUser};
use aigate::users::model::{Period, Quota};

const MOCK: &str = r#"
[auth]
client_keys = ["fk-test"]
[limits]
ip_requests = -1
ip_error_threshold = -1
[[endpoints]]
id = "mock"
provider = "mock"
latency_ms = 300
"#;

async fn create(gw: &TestGateway, user: NewUser) -> (String, String) {
    let (view, key) = gw.state.users.send(Create(user)).await.unwrap().unwrap();
    (view.id, key)
}

fn chat(model: &str, text: &str, stream: bool) -> serde_json::Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
}

fn url(gw: &TestGateway) -> String {
    format!("{}/v1/chat/completions", gw.url)
}

#[actix_web::test]
async fn quota_per_model_family_refuses_with_refresh_time() {
    let gw = TestGateway::start(MOCK);
    let (id, key) = create(
        &gw,
        NewUser {
            name: "q".into(),
            quotas: vec![Quota {
                models: "gpt-*".into(),
                tokens: 20,
                period: Period::Daily,
            }],
            ..Default::default()
        },
    )
    .await;
    let long = "word ".repeat(30);
    let (status, _, _) = post_json(&url(&gw), &key, &chat("gpt-4o", &long, false)).await;
    assert_eq!(status, 200);
    let (status, headers, body) =
        post_json(&url(&gw), &key, &chat("gpt-4o-mini", "hi", false)).await;
    assert_eq!(status, 429);
    let message = json_of(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("'gpt-*'") && message.contains("refreshes at"),
        "{message}"
    );
    assert_eq!(json_of(&body)["error"]["code"], "quota_exceeded");
    let retry: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    // Other families are free; the user's totals were charged.
    let (status, _, _) = post_json(&url(&gw), &key, &chat("claude-x", "hi", false)).await;
    assert_eq!(status, 200);
    let view = gw.state.users.send(Get(id)).await.unwrap().unwrap();
    assert_eq!(view.totals.requests, 2);
    assert!(view.quotas[0].used >= 20 && view.quotas[0].remaining == 0);
}

#[actix_web::test]
async fn tpm_holds_under_parallel_streams() {
    let gw = TestGateway::start(MOCK);
    let (_, key) = create(
        &gw,
        NewUser {
            name: "t".into(),
            tpm: Some(120),
            ..Default::default()
        },
    )
    .await;
    // Each request estimates ~60 tokens (about 240 bytes of body).
    let text = "x".repeat(180);
    let target = url(&gw);
    let body = chat("m", &text, true);
    let requests = (0..6).map(|_| post_json(&target, &key, &body));
    let results = futures_util::future::join_all(requests).await;
    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    let limited = results.iter().filter(|(s, _, _)| *s == 429).count();
    assert_eq!(ok + limited, 6);
    assert_eq!(ok, 2, "reservations admit exactly what fits under 120 TPM");
    let records = gw.usage_records().await;
    let used: u64 = records
        .iter()
        .filter(|r| r["status"] == 200)
        .map(|r| r["prompt_tokens"].as_u64().unwrap() + r["completion_tokens"].as_u64().unwrap())
        .sum();
    let largest = records
        .iter()
        .map(|r| r["prompt_tokens"].as_u64().unwrap() + r["completion_tokens"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        used <= 120 + largest,
        "overran TPM by more than one request: {used}"
    );
}

#[actix_web::test]
async fn concurrency_cap_per_user() {
    let gw = TestGateway::start(MOCK);
    let (_, key) = create(
        &gw,
        NewUser {
            name: "c".into(),
            max_concurrent: Some(1),
            ..Default::default()
        },
    )
    .await;
    let target = url(&gw);
    let (one, two) = (chat("m", "one", false), chat("m", "two", false));
    let (a, b) = futures_util::join!(
        post_json(&target, &key, &one),
        post_json(&target, &key, &two)
    );
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 429]);
    // Once the first finished, the next one is admitted.
    assert_eq!(
        post_json(&url(&gw), &key, &chat("m", "three", false))
            .await
            .0,
        200
    );
}

#[actix_web::test]
async fn expiry_allowed_models_and_prompt_caps() {
    let gw = TestGateway::start(&format!(
        "{MOCK}\n[users]\nmax_prompt_tokens = {{ user = 50 }}\n"
    ));
    let (_, expired) = create(
        &gw,
        NewUser {
            name: "e".into(),
            expires_at: Some(1_000),
            ..Default::default()
        },
    )
    .await;
    let (status, _, body) = post_json(&url(&gw), &expired, &chat("m", "hi", false)).await;
    assert_eq!(status, 403);
    assert_eq!(json_of(&body)["error"]["code"], "key_expired");

    let (_, limited) = create(
        &gw,
        NewUser {
            name: "m".into(),
            allowed_models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        post_json(&url(&gw), &limited, &chat("gpt-4o-mini", "hi", false))
            .await
            .0,
        200
    );
    let (status, _, body) = post_json(&url(&gw), &limited, &chat("gpt-4o", "hi", false)).await;
    assert_eq!(status, 403);
    assert_eq!(json_of(&body)["error"]["code"], "model_not_allowed");

    let (status, _, body) = post_json(
        &url(&gw),
        &limited,
        &chat("gpt-4o-mini", &"y".repeat(400), false),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&body)["error"]["code"], "prompt_too_large");
}

#[actix_web::test]
async fn blocked_networks_and_reject_phrases_never_reach_the_upstream() {
    let upstream = FakeUpstream::always(Reply::json(common::replies::openai_completion("m", "ok")));
    let endpoint = format!(
        "[[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{}\"\nkeys = [\"sk-1\"]\n",
        upstream.url
    );
    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nreject_phrases = [\"Forbidden Topic\"]\n{endpoint}"
    ));
    let (status, _, body) = post_json(
        &url(&gw),
        "fk-test",
        &chat("m", "tell me about the forbidden topic", false),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(json_of(&body)["error"]["code"], "content_refused");
    assert_eq!(
        post_json(&url(&gw), "fk-test", &chat("m", "something else", false))
            .await
            .0,
        200
    );
    assert_eq!(upstream.hits(), 1);

    let gw = TestGateway::start(&format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nblocked_cidrs = [\"127.0.0.0/8\"]\n{endpoint}"
    ));
    let (status, _, body) = post_json(&url(&gw), "fk-test", &chat("m", "hi", false)).await;
    assert_eq!(status, 403);
    assert_eq!(json_of(&body)["error"]["code"], "ip_blocked");
    assert_eq!(upstream.hits(), 1);
}

#[actix_web::test]
async fn wrong_keys_weigh_more_toward_the_blacklist() {
    let gw = TestGateway::start(
        "[auth]\nclient_keys = [\"fk-test\"]\ninvalid_key_weight = 5\n[limits]\nip_requests = -1\nip_error_threshold = 10\n[[endpoints]]\nid = \"mock\"\nprovider = \"mock\"\n",
    );
    assert_eq!(
        post_json(&url(&gw), "wrong-1", &chat("m", "hi", false))
            .await
            .0,
        401
    );
    assert_eq!(
        post_json(&url(&gw), "wrong-2", &chat("m", "hi", false))
            .await
            .0,
        401
    );
    // Two wrong keys (2 × 5 = 10) reach the threshold of 10.
    assert_eq!(
        post_json(&url(&gw), "fk-test", &chat("m", "hi", false))
            .await
            .0,
        403
    );
}

#[actix_web::test]
async fn config_keys_are_users_with_usage() {
    let gw = TestGateway::start(MOCK);
    assert_eq!(
        post_json(&url(&gw), "fk-test", &chat("m", "hello", false))
            .await
            .0,
        200
    );
    let records = gw.usage_records().await;
    let client = records[0]["client"].as_str().unwrap().to_string();
    assert!(client.starts_with("cfg-"), "{client}");
    let view = gw.state.users.send(Get(client)).await.unwrap().unwrap();
    assert!(view.from_config);
    assert_eq!(view.totals.requests, 1);
    assert!(view.totals.prompt_tokens > 0);
}

/// Requests over one kept-alive connection, written and read by hand (no
/// client pool could spread them over several): each request's status and
/// its `x-aigate-request-id`. Bodies sized or chunked, without trailers.
fn over_one_connection(addr: &str, keys: &[String]) -> Vec<(u16, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let body = chat("gpt-4o", "hi", false).to_string();
    keys.iter()
        .map(|key| {
            write!(
                writer,
                "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut status_line = String::new();
            reader.read_line(&mut status_line).unwrap();
            let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            let (mut length, mut chunked, mut request_id) = (0, false, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "transfer-encoding" => chunked = value.trim() == "chunked",
                    "x-aigate-request-id" => request_id = value.trim().to_string(),
                    _ => {}
                }
            }
            while chunked {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
                reader.read_exact(&mut vec![0; size + 2]).unwrap(); // and its CRLF
                chunked = size > 0;
            }
            reader.read_exact(&mut vec![0; length]).unwrap();
            (status, request_id)
        })
        .collect()
}

/// A connection remembers its last key's digest (admission hashes a key
/// once per connection, not per request). Keys that change on one
/// connection, as when a proxy in front carries several clients' requests,
/// are each resolved to their own user, and a wrong key is still refused.
#[actix_web::test]
async fn keys_changing_on_one_connection_are_each_their_own() {
    let gw = TestGateway::start(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = -1\nip_error_threshold = -1\n\
         [[endpoints]]\nid = \"mock\"\nprovider = \"mock\"\n",
    );
    let named = |name: &str| NewUser {
        name: name.into(),
        ..Default::default()
    };
    let (a, a_key) = create(&gw, named("a")).await;
    let (b, b_key) = create(&gw, named("b")).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let keys = [&a_key, "fk-wrong", &a_key, &b_key, &b_key, &a_key].map(str::to_string);
    let answers = actix_web::rt::task::spawn_blocking(move || over_one_connection(&addr, &keys))
        .await
        .unwrap();
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 401, 200, 200, 200, 200]);
    let records = gw.usage_records().await;
    let client_of = |request_id: &str| {
        records
            .iter()
            .find(|r| r["request_id"] == request_id)
            .map(|r| r["client"].as_str().unwrap().to_string())
            .unwrap()
    };
    let clients: Vec<String> = answers.iter().map(|(_, id)| client_of(id)).collect();
    assert_eq!(clients[0], a);
    assert!(
        ![&a, &b].contains(&&clients[1]),
        "the wrong key is nobody's"
    );
    assert_eq!([&clients[2], &clients[5]], [&a, &a]);
    assert_eq!([&clients[3], &clients[4]], [&b, &b]);
}
