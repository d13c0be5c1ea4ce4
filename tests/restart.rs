//! The built binary keeps its counters and blacklist across restarts: a clean
//! SIGTERM loses nothing (and exits 0), a hard kill at most the last second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::{self, Binary};
use common::replies::openai_completion;
use common::{chat, json_of, FakeUpstream, Reply};

async fn start(config: &Path, data_dir: &Path) -> Binary {
    binary::start(binary::command(), config, data_dir).await
}

impl Binary {
    async fn post(&self, key: &str, ip: &str) -> u16 {
        common::client()
            .post(format!("{}/v1/chat/completions", self.url))
            .insert_header(("authorization", format!("Bearer {key}")))
            .insert_header(("x-forwarded-for", ip))
            .send_json(&chat("gpt-4o", "x"))
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn chat(&self, key: &str, model: &str) -> u16 {
        common::client()
            .post(format!("{}/v1/chat/completions", self.url))
            .insert_header(("authorization", format!("Bearer {key}")))
            .send_json(&chat(model, "x"))
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `GET /admin/api/usage?{query}` with the admin key.
    async fn usage(&self, query: &str) -> serde_json::Value {
        let mut response = common::client()
            .get(format!("{}/admin/api/usage?{query}", self.url))
            .insert_header(("authorization", "Bearer ak-admin"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        json_of(&response.body().await.unwrap())
    }

    async fn endpoint_usage(&self) -> serde_json::Value {
        let mut response = common::client()
            .get(format!("{}/v1/status", self.url))
            .insert_header(("authorization", "Bearer fk-test"))
            .insert_header(("x-forwarded-for", "198.51.100.200"))
            .send()
            .await
            .unwrap();
        json_of(&response.body().await.unwrap())["endpoints"][0]["usage"].clone()
    }
}

#[actix_web::test]
async fn counters_and_blacklist_survive_restarts() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aigate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
workers = 1
trusted_proxies = ["127.0.0.0/8"]
[auth]
client_keys = ["fk-test"]
[limits]
ip_requests = -1
ip_error_threshold = 2
ip_error_window_secs = 3600
[log]
level = "warn"
[[endpoints]]
id = "up"
provider = "openai"
base_url = "{}"
keys = ["sk-1"]
rpm = 6
"#,
            upstream.url
        ),
    )
    .unwrap();
    let data = dir.path().join("data");

    let gw = start(&config, &data).await;
    for _ in 0..3 {
        assert_eq!(gw.post("fk-test", "198.51.100.1").await, 200);
    }
    assert_eq!(gw.post("bad", "198.51.100.66").await, 401);
    assert_eq!(gw.post("bad", "198.51.100.66").await, 401);
    assert_eq!(gw.post("fk-test", "198.51.100.66").await, 403);
    assert_eq!(gw.terminate(), 0, "clean shutdown exits 0");

    // The usage log was flushed on shutdown: one line per request.
    let logs = std::fs::read_dir(data.join("logs")).unwrap();
    let lines: usize = logs
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("usage-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert_eq!(lines, 6);

    let gw = start(&config, &data).await;
    assert_eq!(
        gw.endpoint_usage().await,
        serde_json::json!({"rpm": 3, "rpd": 3})
    );
    assert_eq!(
        gw.post("fk-test", "198.51.100.66").await,
        403,
        "the ban survived"
    );
    assert_eq!(gw.post("fk-test", "198.51.100.1").await, 200);
    // A hard kill loses at most the last second: wait for the periodic write.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    gw.kill();

    let gw = start(&config, &data).await;
    assert_eq!(
        gw.endpoint_usage().await,
        serde_json::json!({"rpm": 4, "rpd": 4})
    );
    assert_eq!(gw.post("fk-test", "198.51.100.1").await, 200);
    assert_eq!(gw.post("fk-test", "198.51.100.1").await, 200);
    assert_eq!(
        gw.post("fk-test", "198.51.100.1").await,
        429,
        "rpm 6 counted across restarts"
    );
    assert_eq!(upstream.hits(), 6);
    assert_eq!(gw.terminate(), 0);
}

/// The config users (`cfg-…`) as the admin API lists them, by name.
async fn config_users(gw: &Binary) -> Vec<serde_json::Value> {
    let mut response = common::client()
        .get(format!("{}/admin/api/users", gw.url))
        .insert_header(("authorization", "Bearer ak-admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list = json_of(&response.body().await.unwrap());
    let mut users: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["from_config"] == true)
        .cloned()
        .collect();
    users.sort_by_key(|u| u["name"].as_str().unwrap().to_owned());
    users
}

/// The user records stored under `data` (the server must be stopped).
fn stored_user_ids(data: &Path) -> Vec<String> {
    use aigate::storage::{SledStore, StateStore, Tree};
    let store = SledStore::open(&data.join("db")).unwrap();
    let records = store.load_all(Tree::Users).unwrap();
    records
        .into_iter()
        .map(|(id, _)| String::from_utf8(id).unwrap())
        .collect()
}

#[actix_web::test]
async fn config_users_are_stored_once_used_and_keep_their_usage() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aigate.toml");
    let text = format!(
        "[server]\nworkers = 1\n[auth]\nclient_keys = [\"fk-used\", \"fk-idle\"]\nadmin_keys = [\"ak-admin\"]\n[limits]\nip_requests = -1\nip_error_threshold = -1\n[log]\nlevel = \"warn\"\n[[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{}\"\nkeys = [\"sk-1\"]\n",
        upstream.url
    );
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");

    let gw = start(&config, &data).await;
    for _ in 0..2 {
        assert_eq!(gw.post("fk-used", "198.51.100.1").await, 200);
    }
    let users = config_users(&gw).await;
    assert_eq!(users.len(), 3, "two client keys and the admin key");
    assert_eq!(gw.terminate(), 0);
    // Only the key that was used has a record; the admin key only looked.
    let stored = stored_user_ids(&data);
    assert_eq!(stored.len(), 1, "{stored:?}");

    let gw = start(&config, &data).await;
    let users = config_users(&gw).await;
    let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["config key 1", "config key 2", "config key 3"]);
    let (used, idle) = (&users[0], &users[1]);
    assert_eq!(used["id"], stored[0].as_str());
    assert_eq!(used["totals"]["requests"], 2);
    assert!(used["first_used_at"].is_u64() && used["last_used_at"].is_u64());
    assert_eq!(idle["totals"]["requests"], 0);
    assert!(idle["first_used_at"].is_null());

    // A hard kill loses at most the last second of usage.
    assert_eq!(gw.post("fk-used", "198.51.100.1").await, 200);
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    gw.kill();
    let gw = start(&config, &data).await;
    assert_eq!(config_users(&gw).await[0]["totals"]["requests"], 3);
    assert_eq!(gw.terminate(), 0);
}

#[actix_web::test]
async fn sighup_reloads_the_config_file_and_keeps_counters() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aigate.toml");
    let write = |client_keys: &str, rpm: u32| {
        let text = format!(
            "[server]\nworkers = 1\n[auth]\nclient_keys = [{client_keys}]\n[limits]\nip_requests = -1\nip_error_threshold = -1\n[log]\nlevel = \"warn\"\n[[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"{}\"\nkeys = [\"sk-1\"]\nrpm = {rpm}\n",
            upstream.url
        );
        std::fs::write(&config, text).unwrap();
    };
    write("\"fk-test\"", 10);
    let gw = start(&config, &dir.path().join("data")).await;
    for _ in 0..2 {
        assert_eq!(gw.post("fk-test", "198.51.100.1").await, 200);
    }
    assert_eq!(gw.post("fk-later", "198.51.100.1").await, 401);

    write("\"fk-test\", \"fk-later\"", 3);
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.post("fk-later", "198.51.100.1").await != 200 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the config"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // 2 before + 1 after the reload = the new rpm of 3: the window carried over.
    assert_eq!(gw.post("fk-test", "198.51.100.1").await, 429);
    assert_eq!(upstream.hits(), 3);
    assert_eq!(gw.terminate(), 0, "still running, stops cleanly");
}

/// A time between two batches of usage records (milliseconds, as records
/// have), after the finishers of the requests so far have run.
async fn between_batches() -> String {
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    time
}

#[actix_web::test]
async fn usage_queries_read_batches_written_before_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aigate.toml");
    std::fs::write(
        &config,
        r#"
[server]
workers = 1
[auth]
admin_keys = ["ak-admin"]
client_keys = ["fk-test"]
[limits]
ip_requests = -1
[log]
level = "warn"
[[endpoints]]
id = "mock"
provider = "mock"
models = ["gpt-4o", "claude-3-5-haiku-latest"]
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let gw = start(&config, &data).await;
    for model in ["gpt-4o", "claude-3-5-haiku-latest"] {
        assert_eq!(gw.chat("fk-test", model).await, 200);
    }
    // The admin query hands the buffer over: the next records are a new batch.
    assert_eq!(gw.usage("").await["matched"], 2);
    let cut = between_batches().await;
    for model in ["gpt-4o", "gpt-4o", "claude-3-5-haiku-latest"] {
        assert_eq!(gw.chat("fk-test", model).await, 200);
    }
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    // The last batch is still buffered: SIGTERM writes it.
    assert_eq!(gw.terminate(), 0);

    let gw = start(&config, &data).await;
    assert_eq!(gw.chat("fk-test", "gpt-4o").await, 200);
    let all = gw.usage("").await;
    assert_eq!(all["matched"], 6, "{all}");
    let user = all["records"][0]["client"].as_str().unwrap().to_string();
    assert_eq!(gw.usage(&format!("to={cut}")).await["matched"], 2);
    let late_gpt = gw
        .usage(&format!("from={cut}&model=gpt-*&user={user}"))
        .await;
    assert_eq!(late_gpt["matched"], 3, "{late_gpt}");
    assert_eq!(late_gpt["totals"]["by_endpoint"]["mock"]["requests"], 3);
    assert_eq!(gw.usage("model=claude-*").await["matched"], 2);
    assert_eq!(gw.terminate(), 0);
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\n[[endpoints]]\nid = \"b\"\nprovider = \"mock\"\nrpm = -5\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aigate"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("endpoints[1].rpm: expected an integer >= -1"),
        "{stderr}"
    );

    std::fs::write(
        &config,
        "[[endpoints]]\nid = \"a\"\nprovider = \"openai\"\nkeys = [\"sk-secret-value-1234\", \"sk-other-5678\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aigate"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 key(s)"), "{stdout}");
    assert!(!stdout.contains("secret") && !stdout.contains("5678"));
}
