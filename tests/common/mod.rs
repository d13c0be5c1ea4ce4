//! Shared test harness: the real gateway started in-process on 127.0.0.1:0
//! with a temp data dir, fake upstreams, an HTTP client, and upstream reply
//! shapes as the providers send them.
#![allow(dead_code, unused_imports)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod binary;
pub mod fake_providers;
pub mod fake_upstream;
pub mod replies;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use serde_json::Value;

use aigate::state::AppState;
use aigate::Gateway;

pub use fake_upstream::{FakeUpstream, Recorded, Reply};

pub struct TestGateway {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
    handle: ServerHandle,
}

impl TestGateway {
    /// Starts the gateway from a TOML config (`data_dir`, `listen` and
    /// `workers` are set by the harness). Call inside `#[actix_web::test]`.
    pub fn start(toml: &str) -> TestGateway {
        Self::start_with_env(toml, BTreeMap::new())
    }

    pub fn start_with_env(toml: &str, env: BTreeMap<String, String>) -> TestGateway {
        let data_dir = tempfile::tempdir().unwrap();
        let cli = aigate::config::CliOverrides {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.path().to_path_buf()),
        };
        let config = aigate::config::from_toml_str(&with_test_server(toml), &env, &cli).unwrap();
        Self::start_config(config, data_dir)
    }

    /// Like [`start`], from a config file `aigate.toml` in the data dir, so
    /// that a reload can read it again ([`TestGateway::config_path`]).
    pub fn start_file(toml: &str) -> TestGateway {
        let data_dir = tempfile::tempdir().unwrap();
        let path = data_dir.path().join("aigate.toml");
        std::fs::write(&path, with_test_server(toml)).unwrap();
        let cli = aigate::config::CliOverrides {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.path().to_path_buf()),
        };
        let config = aigate::config::load(Some(&path), &BTreeMap::new(), &cli).unwrap();
        Self::start_config(config, data_dir)
    }

    /// The file [`start_file`] wrote.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.data_dir.path().join("aigate.toml")
    }

    /// Rewrites the config file (with the harness's server settings).
    pub fn rewrite_config(&self, toml: &str) {
        std::fs::write(self.config_path(), with_test_server(toml)).unwrap();
    }

    pub fn start_config(
        config: aigate::config::Config,
        data_dir: tempfile::TempDir,
    ) -> TestGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let gateway = Gateway::start(listener, config).unwrap();
        let state = gateway.state();
        let handle = gateway.handle();
        actix_web::rt::spawn(gateway.run());
        TestGateway {
            url,
            data_dir,
            state,
            handle,
        }
    }

    /// Waits until every usage record so far is on disk, then reads them.
    pub async fn usage_records(&self) -> Vec<Value> {
        // Finishers run when response bodies are dropped: give them a moment.
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        self.state.usage.flush().await.unwrap();
        let logs = self.data_dir.path().join("logs");
        let mut records = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&logs) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("usage-") {
                    let text = std::fs::read_to_string(entry.path()).unwrap();
                    records.extend(
                        text.lines()
                            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                    );
                }
            }
        }
        records
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Adds the harness's own server settings unless the test set some.
fn with_test_server(toml: &str) -> String {
    if toml.contains("[server]") {
        toml.to_string()
    } else {
        format!("[server]\nworkers = 1\n\n{toml}")
    }
}

/// An HTTP client with timeouts long enough for slow-upstream tests.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// POSTs JSON with a bearer key; returns status, headers and body.
pub async fn post_json(
    url: &str,
    key: &str,
    body: &Value,
) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
    let mut response = client()
        .post(url)
        .insert_header(("authorization", format!("Bearer {key}")))
        .send_json(body)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// `GET /v1/status` with `key`: asserts 200 and returns the document.
pub async fn status_of(gateway_url: &str, key: &str) -> Value {
    let mut response = client()
        .get(format!("{gateway_url}/v1/status"))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_of(&response.body().await.unwrap())
}

pub fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// A minimal chat request.
pub fn chat(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}
