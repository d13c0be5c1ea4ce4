//! A fake Realtime API upstream on loopback: a WebSocket server that checks
//! the key and model of every handshake (refusing with 401, or with 429/500
//! for keys named so), greets with `session.created`, echoes every text and
//! binary frame, answers `response.create` with `response.created` and a
//! `response.done` carrying usage, and obeys test commands:
//!
//! - `{"type":"test.close","code":4001,"reason":"bye"}`: closes with that code;
//! - `{"type":"test.drop"}`: drops the TCP connection without a close frame;
//! - `{"type":"test.flood","count":N,"size":S}`: sends N binary frames of S bytes.
//!
//! Every handshake and every frame received is recorded, and so is how each
//! connection ended. Runs on its own thread and runtime.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// tungstenite's handshake callback returns its (large) error response by value.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Usage of the n-th `response.done` (1-based) of a connection.
pub fn usage_of(n: u64) -> Value {
    json!({
        "total_tokens": 42 * n,
        "input_tokens": 30 * n,
        "output_tokens": 12 * n,
        "input_token_details": {"cached_tokens": n, "text_tokens": 10 * n, "audio_tokens": 20 * n, "image_tokens": 0},
        "output_token_details": {"text_tokens": 5 * n, "audio_tokens": 7 * n}
    })
}

/// One handshake as the fake saw it, and the status it answered.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub status: u16,
}

impl Handshake {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A frame the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// One accepted connection.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub received: Vec<Received>,
    /// The connection is over (closed or dropped, either side).
    pub ended: bool,
}

impl Connection {
    pub fn close_received(&self) -> Option<Option<(u16, String)>> {
        self.received.iter().find_map(|r| match r {
            Received::Close(c) => Some(c.clone()),
            _ => None,
        })
    }
}

#[derive(Default)]
struct Shared {
    handshakes: Vec<Handshake>,
    connections: Vec<Connection>,
}

pub struct FakeRealtime {
    /// `http://127.0.0.1:port`, as an endpoint's `base_url`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeRealtime {
    /// Accepts `valid_key` (as `Authorization: Bearer` or `api-key`) for
    /// `model` (the `model` or `deployment` query parameter). Other keys get
    /// 401, except keys starting `sk-429` (429, Retry-After 30) and `sk-500`
    /// (500). Another model gets 404.
    pub fn start(valid_key: &str, model: &str) -> FakeRealtime {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", std_listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (key, model) = (valid_key.to_string(), model.to_string());
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let (state, key, model) = (state.clone(), key.clone(), model.clone());
                    tokio::spawn(serve(stream, state, key, model));
                }
            });
        });
        FakeRealtime { url, shared }
    }

    pub fn handshakes(&self) -> Vec<Handshake> {
        self.shared.lock().unwrap().handshakes.clone()
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.shared.lock().unwrap().connections.clone()
    }

    /// Waits until connection `index` has ended, or panics after `within`.
    pub async fn wait_ended(&self, index: usize, within: Duration) -> Connection {
        let deadline = Instant::now() + within;
        loop {
            if let Some(c) = self.connections().get(index).filter(|c| c.ended) {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "connection {index} still open: {:?}",
                self.connections().get(index)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn refuse(status: u16, body: Value, retry_after: Option<&str>) -> ErrorResponse {
    let mut builder = tokio_tungstenite::tungstenite::http::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(after) = retry_after {
        builder = builder.header("retry-after", after);
    }
    builder.body(Some(body.to_string())).unwrap()
}

fn check(request: &Request, key: &str, model: &str) -> Result<(), ErrorResponse> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let bearer = header("authorization");
    let presented = bearer
        .strip_prefix("Bearer ")
        .map(str::to_string)
        .unwrap_or_else(|| header("api-key"));
    if presented != key {
        let error =
            |message: &str| json!({"error": {"message": message, "type": "invalid_request_error"}});
        return Err(match presented {
            k if k.starts_with("sk-429") => refuse(429, error("slow down"), Some("30")),
            k if k.starts_with("sk-500") => refuse(500, error("upstream broke"), None),
            _ => refuse(401, error("Incorrect API key provided."), None),
        });
    }
    let query = request.uri().query().unwrap_or("");
    let asked = query.split('&').find_map(|pair| {
        pair.strip_prefix("model=")
            .or_else(|| pair.strip_prefix("deployment="))
    });
    if asked != Some(model) {
        let body = json!({"error": {"message": format!("model {asked:?} not found"), "type": "invalid_request_error", "code": "model_not_found"}});
        return Err(refuse(404, body, None));
    }
    Ok(())
}

async fn serve(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<Shared>>,
    key: String,
    model: String,
) {
    let recorder = state.clone();
    let callback = move |request: &Request, response: Response| {
        let verdict = check(request, &key, &model);
        let handshake = Handshake {
            path: request.uri().path().to_string(),
            query: request.uri().query().unwrap_or("").to_string(),
            headers: request
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            status: verdict
                .as_ref()
                .map_or_else(|e| e.status().as_u16(), |_| 101),
        };
        recorder.lock().unwrap().handshakes.push(handshake);
        verdict.map(|()| response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let index = {
        let mut shared = state.lock().unwrap();
        shared.connections.push(Connection::default());
        shared.connections.len() - 1
    };
    let record = |item: Option<Received>, ended: bool| {
        let mut shared = state.lock().unwrap();
        let connection = &mut shared.connections[index];
        if let Some(item) = item {
            connection.received.push(item);
        }
        connection.ended |= ended;
    };
    let created = json!({"type": "session.created", "event_id": "ev_created", "session": {"id": "sess_fake", "object": "realtime.session"}});
    if ws.send(Message::text(created.to_string())).await.is_err() {
        record(None, true);
        return;
    }
    let mut responses = 0u64;
    while let Some(message) = ws.next().await {
        let Ok(message) = message else { break };
        match message {
            Message::Text(text) => {
                record(Some(Received::Text(text.to_string())), false);
                let event: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                match event["type"].as_str().unwrap_or("") {
                    "response.create" => {
                        responses += 1;
                        let id = format!("resp_{responses}");
                        let created = json!({"type": "response.created", "event_id": format!("ev_c{responses}"), "response": {"id": id, "object": "realtime.response", "status": "in_progress"}});
                        let done = json!({"type": "response.done", "event_id": format!("ev_d{responses}"), "response": {"id": id, "object": "realtime.response", "status": "completed", "output": [], "usage": usage_of(responses)}});
                        let _ = ws.send(Message::text(created.to_string())).await;
                        let _ = ws.send(Message::text(done.to_string())).await;
                    }
                    "test.close" => {
                        let code = event["code"].as_u64().unwrap_or(1000) as u16;
                        let reason = event["reason"].as_str().unwrap_or("").to_string();
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        let _ = ws.close(Some(frame)).await;
                    }
                    "test.drop" => {
                        record(None, true);
                        return;
                    }
                    "test.flood" => {
                        let count = event["count"].as_u64().unwrap_or(0);
                        let size = event["size"].as_u64().unwrap_or(0) as usize;
                        for _ in 0..count {
                            if ws.send(Message::binary(vec![7u8; size])).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = ws.send(Message::Text(text)).await;
                    }
                }
            }
            Message::Binary(bytes) => {
                record(Some(Received::Binary(bytes.to_vec())), false);
                let _ = ws.send(Message::Binary(bytes)).await;
            }
            Message::Ping(bytes) => record(Some(Received::Ping(bytes.to_vec())), false),
            Message::Pong(bytes) => record(Some(Received::Pong(bytes.to_vec())), false),
            Message::Close(frame) => {
                let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                record(Some(Received::Close(close)), false);
            }
            Message::Frame(_) => {}
        }
    }
    record(None, true);
}
