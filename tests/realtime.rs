//! The Realtime API over WebSocket, through the real gateway to a fake
//! realtime upstream: frames relayed in order both ways, close codes passed
//! on both ways, handshake failover, refusals before any upstream contact,
//! usage records from `response.done`, the per-user session cap, RPM at
//! connect, idle timeout, the queued-bytes cap, and a client that vanishes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/fake_realtime.rs"]
mod fake_realtime;

use std::time::Duration;

use bytes::Bytes;
use common::{json_of, TestGateway};
use fake_realtime::{usage_of, FakeRealtime, Received};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CLIENT_KEY: &str = "fk-test";
const UPSTREAM_KEY: &str = "sk-rt-good";
const MODEL: &str = "gpt-realtime-fake";
const WAIT: Duration = Duration::from_secs(5);

/// One realtime endpoint on `fake`, plus `extra` TOML (sections or endpoints).
fn config(fake: &FakeRealtime, keys: &[&str], extra: &str) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        r#"
[auth]
client_keys = ["{CLIENT_KEY}", "fk-other"]
[limits]
ip_error_threshold = -1
[routing]
strategy = "round_robin"
{extra}
[[endpoints]]
id = "rt"
provider = "openai"
base_url = "{}"
keys = [{}]
models = ["{MODEL}"]
model_mapping = {{ "rt-alias" = "{MODEL}" }}
"#,
        fake.url,
        keys.join(", ")
    )
}

fn ws_url(gw: &TestGateway, path_and_query: &str) -> String {
    format!("{}{path_and_query}", gw.url.replacen("http://", "ws://", 1))
}

async fn connect(
    gw: &TestGateway,
    path_and_query: &str,
    headers: &[(&'static str, &str)],
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut request = ws_url(gw, path_and_query).into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    tokio_tungstenite::connect_async(request).await
}

/// A session with the usual key and model, past the `session.created` greeting.
async fn open(gw: &TestGateway) -> Ws {
    let auth = format!("Bearer {CLIENT_KEY}");
    let path = format!("/v1/realtime?model={MODEL}");
    let (mut ws, _) = connect(gw, &path, &[("authorization", &auth)])
        .await
        .unwrap();
    let greeting = next_text(&mut ws).await;
    assert_eq!(greeting["type"], "session.created");
    ws
}

/// The next frame that is not a ping or pong.
async fn next(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame in time")
            .expect("stream ended")
            .expect("read failed");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

async fn next_text(ws: &mut Ws) -> Value {
    match next(ws).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Reads until the close frame; returns its code and reason.
async fn close_of(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        match next(ws).await {
            Message::Close(frame) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            _ => continue,
        }
    }
}

fn refusal(err: WsError) -> (u16, Value) {
    match err {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let body = response.into_body().unwrap_or_default();
            (status, json_of(&body))
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

fn realtime_records(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/v1/realtime"))
        .cloned()
        .collect()
}

#[actix_web::test]
async fn text_and_binary_frames_are_relayed_in_order_both_ways() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let auth = format!("Bearer {CLIENT_KEY}");
    let (mut ws, response) = connect(
        &gw,
        "/v1/realtime?model=rt-alias",
        &[
            ("authorization", &auth),
            ("openai-beta", "realtime=v1"),
            ("sec-websocket-protocol", "realtime"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "realtime");
    assert!(response.headers().contains_key("x-aigate-request-id"));
    assert_eq!(next_text(&mut ws).await["type"], "session.created");

    let mut sent = Vec::new();
    for i in 0..20 {
        let message = match i % 3 {
            0 => Message::binary(vec![i as u8; 100 + i]),
            _ => Message::text(json!({"type": "input_text", "n": i}).to_string()),
        };
        sent.push(message.clone());
        ws.send(message).await.unwrap();
    }
    for expected in &sent {
        assert_eq!(&next(&mut ws).await, expected);
    }

    let handshake = &fake.handshakes()[0];
    assert_eq!(handshake.path, "/v1/realtime");
    assert_eq!(handshake.query, format!("model={MODEL}"));
    assert_eq!(
        handshake.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(handshake.header("openai-beta"), Some("realtime=v1"));
    let received: Vec<Received> = fake.connections()[0].received.clone();
    let expected: Vec<Received> = sent
        .iter()
        .map(|m| match m {
            Message::Text(t) => Received::Text(t.to_string()),
            Message::Binary(b) => Received::Binary(b.to_vec()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(received, expected);

    // Ping from the client reaches the upstream.
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    ws.close(None).await.unwrap();
    let connection = fake.wait_ended(0, WAIT).await;
    assert!(connection
        .received
        .contains(&Received::Ping(b"are you there".to_vec())));
    gw.stop().await;
}

#[actix_web::test]
async fn browser_subprotocol_key_is_accepted_and_never_sent_upstream() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let protocols =
        format!("realtime, openai-insecure-api-key.{CLIENT_KEY}, openai-beta.realtime-v1");
    let (mut ws, response) = connect(
        &gw,
        &format!("/v1/realtime?model={MODEL}"),
        &[("sec-websocket-protocol", &protocols)],
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "realtime");
    assert_eq!(next_text(&mut ws).await["type"], "session.created");
    let handshake = &fake.handshakes()[0];
    assert_eq!(
        handshake.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(handshake.header("openai-beta"), Some("realtime=v1"));
    assert!(!handshake.headers.values().any(|v| v.contains(CLIENT_KEY)));
    ws.close(None).await.unwrap();

    // A wrong key in the subprotocol is refused like a wrong bearer key.
    let err = connect(
        &gw,
        &format!("/v1/realtime?model={MODEL}"),
        &[(
            "sec-websocket-protocol",
            "realtime, openai-insecure-api-key.fk-wrong",
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(refusal(err).0, 401);
    gw.stop().await;
}

#[actix_web::test]
async fn client_close_code_reaches_the_upstream() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"x"}"#)).await.unwrap();
    let frame = CloseFrame {
        code: CloseCode::from(4000),
        reason: "done talking".into(),
    };
    ws.close(Some(frame)).await.unwrap();
    assert_eq!(close_of(&mut ws).await, Some((4000, "done talking".into())));
    let connection = fake.wait_ended(0, WAIT).await;
    assert_eq!(
        connection.close_received(),
        Some(Some((4000, "done talking".into())))
    );
    let records = realtime_records(&gw.usage_records().await);
    let summary = &records[0];
    assert_eq!(summary["status"], 101);
    assert_eq!(summary["realtime"]["kind"], "session");
    assert_eq!(summary["realtime"]["close_code"], 4000);
    assert_eq!(summary["realtime"]["closed_by"], "client");
    assert_eq!(summary["error"], Value::Null);
    gw.stop().await;
}

#[actix_web::test]
async fn upstream_close_code_reaches_the_client() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"hello"}"#)).await.unwrap();
    ws.send(Message::text(
        json!({"type": "test.close", "code": 4001, "reason": "bye now"}).to_string(),
    ))
    .await
    .unwrap();
    // The echo sent before the close arrives before it.
    assert_eq!(next_text(&mut ws).await["type"], "hello");
    assert_eq!(close_of(&mut ws).await, Some((4001, "bye now".into())));
    fake.wait_ended(0, WAIT).await;
    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records[0]["realtime"]["close_code"], 4001);
    assert_eq!(records[0]["realtime"]["closed_by"], "upstream");
    gw.stop().await;
}

#[actix_web::test]
async fn upstream_that_drops_the_connection_is_a_1011_to_the_client() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"test.drop"}"#))
        .await
        .unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        Some((1011, "upstream connection lost".into()))
    );
    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records[0]["realtime"]["closed_by"], "upstream");
    assert!(records[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("upstream connection lost"));
    gw.stop().await;
}

#[actix_web::test]
async fn handshake_refused_with_401_fails_over_to_the_next_key() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &["sk-revoked-1", UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"ping-me"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "ping-me");
    let statuses: Vec<u16> = fake.handshakes().iter().map(|h| h.status).collect();
    assert_eq!(statuses, vec![401, 101]);
    let keys = gw.state.key_pool.snapshot().await.unwrap();
    assert_eq!(keys[0][0].state, "revoked");
    assert_eq!(keys[0][1].state, "active");
    assert_eq!(keys[0][1].in_flight, 1, "the open session holds its key");
    ws.close(None).await.unwrap();
    fake.wait_ended(0, WAIT).await;
    gw.stop().await;
}

#[actix_web::test]
async fn handshake_429_and_5xx_move_on_and_all_failing_is_an_openai_error() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let second = FakeRealtime::start("sk-second", MODEL);
    let extra = format!(
        r#"[[endpoints]]
id = "broken"
provider = "openai_compatible"
base_url = "{}"
keys = ["sk-500-x"]
models = ["{MODEL}"]
"#,
        second.url
    );
    // Round robin starts at "broken" (listed first), then tries "rt": one
    // key cools on 429, the other opens.
    let gw = TestGateway::start(&config(&fake, &["sk-429-a", UPSTREAM_KEY], &extra));
    let mut ws = open(&gw).await;
    ws.close(None).await.unwrap();
    let tried: Vec<u16> = second
        .handshakes()
        .iter()
        .chain(fake.handshakes().iter())
        .map(|h| h.status)
        .collect();
    assert!(tried.ends_with(&[101]), "{tried:?}");
    assert!(tried.contains(&500) && tried.contains(&429), "{tried:?}");

    // Every key refused: an HTTP error in the OpenAI dialect, no upgrade.
    let all_bad = FakeRealtime::start("sk-nobody-has", MODEL);
    let gw2 = TestGateway::start(&config(&all_bad, &["sk-bad-1", "sk-bad-2"], ""));
    let auth = format!("Bearer {CLIENT_KEY}");
    let err = connect(
        &gw2,
        &format!("/v1/realtime?model={MODEL}"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap_err();
    let (status, body) = refusal(err);
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("refused the gateway's key (401)"));
    assert_eq!(all_bad.handshakes().len(), 2);
    let records = realtime_records(&gw2.usage_records().await);
    assert_eq!(records[0]["status"], 502);
    assert_eq!(records[0]["attempts"], 2);
    gw.stop().await;
    gw2.stop().await;
}

#[actix_web::test]
async fn bad_client_key_is_refused_before_any_upstream_connection() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let path = format!("/v1/realtime?model={MODEL}");
    let err = connect(&gw, &path, &[("authorization", "Bearer fk-wrong")])
        .await
        .unwrap_err();
    let (status, body) = refusal(err);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let err = connect(&gw, &path, &[]).await.unwrap_err();
    assert_eq!(refusal(err).0, 401);
    assert_eq!(fake.handshakes().len(), 0, "no upstream contact");
    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["status"] == 401));
    gw.stop().await;
}

#[actix_web::test]
async fn usage_records_match_the_response_done_events() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    for n in 1..=2 {
        ws.send(Message::text(r#"{"type":"response.create"}"#))
            .await
            .unwrap();
        assert_eq!(next_text(&mut ws).await["type"], "response.created");
        let done = next_text(&mut ws).await;
        assert_eq!(done["type"], "response.done");
        assert_eq!(done["response"]["usage"], usage_of(n));
    }
    ws.send(Message::binary(vec![1u8; 300])).await.unwrap();
    next(&mut ws).await;
    ws.close(None).await.unwrap();
    fake.wait_ended(0, WAIT).await;

    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records.len(), 3, "{records:#?}");
    let summary = records
        .iter()
        .find(|r| r["realtime"]["kind"] == "session")
        .unwrap();
    let session_id = summary["request_id"].as_str().unwrap();
    for n in 1..=2u64 {
        let record = records
            .iter()
            .find(|r| r["request_id"] == format!("{session_id}.{n}"))
            .unwrap();
        assert_eq!(record["client"], summary["client"]);
        assert_eq!(record["endpoint"], "rt");
        assert_eq!(record["model"], MODEL);
        assert_eq!(record["prompt_tokens"], 30 * n);
        assert_eq!(record["completion_tokens"], 12 * n);
        assert_eq!(record["cached_tokens"], n);
        let detail = &record["realtime"];
        assert_eq!(detail["kind"], "response");
        assert_eq!(detail["session_id"], session_id);
        assert_eq!(detail["response_id"], format!("resp_{n}"));
        assert_eq!(detail["response_status"], "completed");
        assert_eq!(detail["input_text_tokens"], 10 * n);
        assert_eq!(detail["input_audio_tokens"], 20 * n);
        assert_eq!(detail["output_text_tokens"], 5 * n);
        assert_eq!(detail["output_audio_tokens"], 7 * n);
    }
    assert!(summary["client"].as_str().unwrap().starts_with("cfg-"));
    assert_eq!(summary["key_id"].as_str().unwrap(), "…good");
    let detail = &summary["realtime"];
    assert_eq!(detail["responses"], 2);
    assert_eq!(detail["frames_from_client"], 3);
    let create_len = r#"{"type":"response.create"}"#.len();
    assert_eq!(detail["bytes_from_client"], 2 * create_len + 300);
    // session.created, 2 × (created + done), the binary echo.
    assert_eq!(detail["frames_to_client"], 6);
    assert_eq!(
        summary["prompt_tokens"], 0,
        "tokens live in the response records"
    );
    let raw = std::fs::read_dir(gw.data_dir.path().join("logs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!raw.contains(UPSTREAM_KEY) && !raw.contains(CLIENT_KEY));
    gw.stop().await;
}

#[actix_web::test]
async fn concurrent_sessions_per_user_are_capped() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(
        &fake,
        &[UPSTREAM_KEY],
        "[realtime]\nmax_sessions_per_user = 2\n",
    ));
    let mut first = open(&gw).await;
    let mut second = open(&gw).await;
    let auth = format!("Bearer {CLIENT_KEY}");
    let path = format!("/v1/realtime?model={MODEL}");
    let err = connect(&gw, &path, &[("authorization", &auth)])
        .await
        .unwrap_err();
    let (status, body) = refusal(err);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "too_many_sessions");
    assert_eq!(
        fake.handshakes().len(),
        2,
        "the third never reached upstream"
    );
    // Another user is not affected.
    let (other, _) = connect(&gw, &path, &[("authorization", "Bearer fk-other")])
        .await
        .unwrap();
    drop(other);

    first.close(None).await.unwrap();
    close_of(&mut first).await;
    let deadline = std::time::Instant::now() + WAIT;
    let mut third = loop {
        match connect(&gw, &path, &[("authorization", &auth)]).await {
            Ok((ws, _)) => break ws,
            Err(e) => {
                assert_eq!(refusal(e).0, 429);
                assert!(std::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Open sessions would hold up the gateway's graceful stop.
    for ws in [&mut second, &mut third] {
        ws.close(None).await.unwrap();
        close_of(ws).await;
    }
    let user = aigate::pipeline::auth::fingerprint(CLIENT_KEY);
    let deadline = std::time::Instant::now() + WAIT;
    while aigate::realtime::sessions::open_sessions(&gw.state, &user) > 0 {
        assert!(std::time::Instant::now() < deadline, "a slot leaked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[actix_web::test]
async fn the_session_counts_against_the_endpoint_rpm_at_connect() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let toml = config(&fake, &[UPSTREAM_KEY], "").replace(
        "models = [\"gpt-realtime-fake\"]",
        "models = [\"gpt-realtime-fake\"]\nrpm = 1",
    );
    let gw = TestGateway::start(&toml);
    let mut ws = open(&gw).await;
    let auth = format!("Bearer {CLIENT_KEY}");
    let err = connect(
        &gw,
        &format!("/v1/realtime?model={MODEL}"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap_err();
    let (status, body) = refusal(err);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(fake.handshakes().len(), 1);
    ws.close(None).await.unwrap();
    close_of(&mut ws).await;
    gw.stop().await;
}

#[actix_web::test]
async fn client_abrupt_disconnect_closes_the_upstream_socket() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(&fake, &[UPSTREAM_KEY], ""));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"last words"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "last words");
    // Drop the TCP connection without a close frame.
    drop(ws);
    let connection = fake.wait_ended(0, WAIT).await;
    assert_eq!(
        connection.close_received(),
        Some(Some((1001, "client disconnected".into())))
    );
    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records[0]["realtime"]["closed_by"], "client");
    gw.stop().await;
}

#[actix_web::test]
async fn idle_sessions_are_closed() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(
        &fake,
        &[UPSTREAM_KEY],
        "[realtime]\nidle_timeout_secs = 1\n",
    ));
    let mut ws = open(&gw).await;
    assert_eq!(close_of(&mut ws).await, Some((1001, "idle timeout".into())));
    let connection = fake.wait_ended(0, WAIT).await;
    assert_eq!(
        connection.close_received(),
        Some(Some((1001, "idle timeout".into())))
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_client_too_slow_to_read_is_closed_at_the_queue_cap() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let gw = TestGateway::start(&config(
        &fake,
        &[UPSTREAM_KEY],
        "[realtime]\nmax_queued_bytes = 262144\n",
    ));
    let mut ws = open(&gw).await;
    // 64 MiB towards a client that does not read for a while.
    let flood = json!({"type": "test.flood", "count": 1024, "size": 65536});
    ws.send(Message::text(flood.to_string())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut frames = 0;
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => frames += 1,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(frames < 1024, "the whole flood got through");
    let close = close.unwrap();
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "client too slow to read");
    let records = realtime_records(&gw.usage_records().await);
    assert_eq!(records[0]["realtime"]["closed_by"], "gateway");
    assert_eq!(records[0]["realtime"]["close_code"], 1008);
    gw.stop().await;
}

#[actix_web::test]
async fn prefixes_models_and_plain_gets() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let toml = config(&fake, &[UPSTREAM_KEY], "")
        .replace("id = \"rt\"", "id = \"rt\"\nroute_prefix = \"/voice\"");
    let gw = TestGateway::start(&toml);
    let auth = format!("Bearer {CLIENT_KEY}");
    let headers = [("authorization", auth.as_str())];
    let (mut ws, _) = connect(&gw, &format!("/voice/v1/realtime?model={MODEL}"), &headers)
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "session.created");
    ws.close(None).await.unwrap();

    let unknown = connect(&gw, &format!("/nope/v1/realtime?model={MODEL}"), &headers).await;
    assert_eq!(refusal(unknown.unwrap_err()).0, 404);
    let (status, body) = refusal(connect(&gw, "/v1/realtime", &headers).await.unwrap_err());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("model_required"))
    );
    let (status, body) = refusal(
        connect(&gw, "/v1/realtime?model=gpt-nope", &headers)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");

    let plain = common::client()
        .get(format!("{}/v1/realtime?model={MODEL}", gw.url))
        .insert_header(("authorization", auth.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 426);
    assert_eq!(fake.handshakes().len(), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn azure_endpoints_get_their_own_url_and_key_header() {
    let fake = FakeRealtime::start("az-key-1", "rt-deployment");
    let gw = TestGateway::start(&format!(
        r#"
[auth]
client_keys = ["{CLIENT_KEY}"]
[[endpoints]]
id = "az"
provider = "azure"
base_url = "{}"
keys = ["az-key-1"]
api_version = "2024-10-01-preview"
deployments = {{ "{MODEL}" = "rt-deployment" }}
"#,
        fake.url
    ));
    let mut ws = open(&gw).await;
    ws.send(Message::text(r#"{"type":"response.create"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "response.created");
    assert_eq!(next_text(&mut ws).await["type"], "response.done");
    ws.close(None).await.unwrap();
    fake.wait_ended(0, WAIT).await;
    let handshake = &fake.handshakes()[0];
    assert_eq!(handshake.path, "/openai/realtime");
    assert_eq!(
        handshake.query,
        "api-version=2024-10-01-preview&deployment=rt-deployment"
    );
    assert_eq!(handshake.header("api-key"), Some("az-key-1"));
    assert_eq!(handshake.header("authorization"), None);
    let records = realtime_records(&gw.usage_records().await);
    let response = records
        .iter()
        .find(|r| r["realtime"]["kind"] == "response")
        .unwrap();
    assert_eq!(response["endpoint"], "az");
    assert_eq!(response["prompt_tokens"], 30);
    gw.stop().await;
}

#[actix_web::test]
async fn passthrough_clients_bring_their_own_key() {
    let fake = FakeRealtime::start(UPSTREAM_KEY, MODEL);
    let toml = config(&fake, &[], "").replace("[auth]\n", "[auth]\npassthrough = true\n");
    let gw = TestGateway::start(&toml);
    let path = format!("/v1/realtime?model={MODEL}");
    let own = format!("Bearer {UPSTREAM_KEY}");
    let (mut ws, _) = connect(&gw, &path, &[("authorization", &own)])
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "session.created");
    ws.close(None).await.unwrap();
    assert_eq!(
        fake.handshakes()[0].header("authorization"),
        Some(own.as_str())
    );
    // The upstream's refusal of a client's own key is the client's answer.
    let err = connect(&gw, &path, &[("authorization", "Bearer sk-theirs-wrong")])
        .await
        .unwrap_err();
    let (status, body) = refusal(err);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Incorrect API key provided.");
    assert_eq!(fake.handshakes().len(), 2);
    gw.stop().await;
}
