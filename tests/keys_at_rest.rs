//! Upstream keys added at runtime are stored sealed: the real binary, given
//! `AIGATE_MASTER_KEY`, takes a key through the admin API, uses it, and
//! after a clean stop no file under the data dir holds the key (or any part
//! of it longer than 7 bytes besides its last 4 characters); after a restart
//! the key is back in the pool. Without a master key, adding is refused.
//! The `aigate keys` CLI works on the stopped data dir and through the
//! running server's admin API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::binary::{self, Binary};
use common::replies::openai_completion;
use common::{chat, json_of, FakeUpstream, Reply};
use serde_json::{json, Value};

const MASTER: &str = "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170605f4e3";
const ADMIN: &str = "ak-admin-test-0001";
const CLIENT: &str = "fk-client-test";
const KEY_USED: &str = "sk-live-7Qx2Lm9Vb4Nc8Rt1Yp5Wz3Hd6Fk0Jg2u";
const KEY_REMOVED: &str = "sk-live-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1v";
const KEY_DISABLED: &str = "sk-live-Zy8Xw6Vu4Ts2Rq0Po8Nm6Lk4Ji2Hg0w";

/// A clean environment for the binary: no master key unless given, and a
/// working directory without a `.env`.
fn command(dir: &Path, master: Option<&str>) -> Command {
    let mut command = binary::command();
    command
        .current_dir(dir)
        .env_remove("AIGATE_MASTER_KEY")
        .env_remove("AIGATE_MASTER_KEY_FILE")
        .env_remove("AIGATE_ADMIN_KEY");
    if let Some(master) = master {
        command.env("AIGATE_MASTER_KEY", master);
    }
    command
}

async fn start(dir: &Path, master: Option<&str>) -> Binary {
    binary::start(
        command(dir, master),
        Path::new("aigate.toml"),
        Path::new("data"),
    )
    .await
}

impl Binary {
    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "GET" => common::client().get(url),
            "DELETE" => common::client().delete(url),
            _ => common::client().post(url),
        }
        .insert_header(("authorization", format!("Bearer {key}")));
        let mut response = match body {
            Some(body) => request.send_json(&body).await.unwrap(),
            None => request.send().await.unwrap(),
        };
        let status = response.status().as_u16();
        let bytes = response.body().await.unwrap();
        let value = match bytes.is_empty() {
            true => Value::Null,
            false => json_of(&bytes),
        };
        (status, value)
    }

    async fn chat(&self) -> u16 {
        let body = chat("gpt-4o", "hello");
        self.call("POST", "/v1/chat/completions", CLIENT, Some(body))
            .await
            .0
    }

    async fn add(&self, key: &str) -> (u16, Value) {
        let body = json!({"endpoint": "up", "key": key});
        self.call("POST", "/admin/api/keys", ADMIN, Some(body))
            .await
    }

    async fn keys(&self) -> Vec<Value> {
        let (status, body) = self
            .call("GET", "/admin/api/keys?endpoint=up", ADMIN, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["keys"].as_array().unwrap().clone()
    }
}

fn write_config(dir: &Path, upstream: &str) {
    std::fs::write(
        dir.join("aigate.toml"),
        format!(
            r#"
[server]
workers = 1
[auth]
client_keys = ["{CLIENT}"]
admin_keys = ["{ADMIN}"]
[log]
level = "debug"
[[endpoints]]
id = "up"
provider = "openai"
base_url = "{upstream}"
"#
        ),
    )
    .unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => files.extend(files_under(&path)),
            false => files.push(path),
        }
    }
    files
}

/// Every file under `dir`, none holding `secret`, its base64, or any 8-byte
/// piece of it that is not part of its last 4 characters (the hint).
fn assert_no_trace(dir: &Path, secret: &str) {
    let without_hint = &secret.as_bytes()[..secret.len() - 4];
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    let mut needles: Vec<&[u8]> = without_hint.windows(8).collect();
    needles.push(secret.as_bytes());
    needles.push(encoded.as_bytes());
    let files = files_under(dir);
    assert!(files.len() > 2, "nothing to scan under {}", dir.display());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == *needle),
                "{} holds {:?} of a stored key",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

fn contains(dir: &Path, text: &str) -> bool {
    files_under(dir).iter().any(|f| {
        std::fs::read(f)
            .unwrap()
            .windows(text.len())
            .any(|w| w == text.as_bytes())
    })
}

fn last_key(upstream: &FakeUpstream) -> String {
    let requests = upstream.requests();
    let last = requests.last().unwrap();
    last.header("authorization")
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_string()
}

#[actix_web::test]
async fn runtime_keys_are_sealed_on_disk_and_survive_restarts() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &upstream.url);
    let data = dir.path().join("data");

    let gw = start(dir.path(), Some(MASTER)).await;
    assert_eq!(gw.chat().await, 503, "no upstream key yet");
    let body = json!({"endpoint": "up", "key": KEY_USED});
    let (status, _) = gw
        .call("POST", "/admin/api/keys", CLIENT, Some(body.clone()))
        .await;
    assert_eq!(status, 403, "a user key may not add keys");
    let (status, _) = gw
        .call("POST", "/admin/api/keys", "nobody", Some(body))
        .await;
    assert_eq!(status, 401);

    let (status, added) = gw.add(KEY_USED).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["hint"], "…Jg2u");
    assert!(!added.to_string().contains("sk-live"), "{added}");
    let used_id = added["id"].as_str().unwrap().to_string();
    let (status, again) = gw.add(KEY_USED).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("duplicate_key"))
    );

    assert_eq!(gw.chat().await, 200);
    assert_eq!(
        last_key(&upstream),
        KEY_USED,
        "the upstream got the added key"
    );

    let (_, removed) = gw.add(KEY_REMOVED).await;
    let removed_id = removed["id"].as_str().unwrap().to_string();
    let (status, _) = gw
        .call(
            "DELETE",
            &format!("/admin/api/keys/up/{removed_id}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, disabled) = gw.add(KEY_DISABLED).await;
    let disabled_id = disabled["id"].as_str().unwrap().to_string();
    let path = format!("/admin/api/keys/up/{disabled_id}/disable");
    let (status, info) = gw.call("POST", &path, ADMIN, None).await;
    assert_eq!((status, info["state"].as_str()), (200, Some("disabled")));
    for _ in 0..3 {
        assert_eq!(gw.chat().await, 200);
        assert_eq!(
            last_key(&upstream),
            KEY_USED,
            "a disabled key is never lent"
        );
    }
    let listed = gw.keys().await;
    assert!(!Value::from(listed.clone()).to_string().contains("sk-live"));
    assert_eq!(gw.terminate(), 0, "clean shutdown");

    for secret in [KEY_USED, KEY_REMOVED, KEY_DISABLED] {
        assert_no_trace(&data, secret);
    }
    assert!(
        contains(&data.join("db"), &used_id),
        "the record is on disk"
    );

    let gw = start(dir.path(), Some(MASTER)).await;
    let keys = gw.keys().await;
    let states: Vec<(&str, &str, &str)> = keys
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap(),
                k["source"].as_str().unwrap(),
                k["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (used_id.as_str(), "runtime", "active"),
            (disabled_id.as_str(), "runtime", "disabled"),
        ],
        "the removed key stays removed"
    );
    let hits = upstream.hits();
    for _ in 0..3 {
        assert_eq!(gw.chat().await, 200);
        assert_eq!(last_key(&upstream), KEY_USED);
    }
    assert_eq!(upstream.hits(), hits + 3);
    assert_eq!(gw.terminate(), 0, "clean shutdown");

    // Without the master key: adding is refused by name, stored keys are
    // kept but cannot be used.
    let gw = start(dir.path(), None).await;
    let (status, refused) = gw.add("sk-live-another-key-1234").await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "no_master_key");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("AIGATE_MASTER_KEY"), "{message}");
    let keys = gw.keys().await;
    assert!(keys.iter().all(|k| k["state"] == "locked"), "{keys:?}");
    assert_eq!(gw.chat().await, 503);
    assert_eq!(gw.terminate(), 0, "clean shutdown");
    assert_no_trace(&data, KEY_USED);
}

#[actix_web::test]
async fn the_cli_works_offline_and_through_the_running_server() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "ok")));
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &upstream.url);
    std::fs::write(dir.path().join("key.txt"), format!("{KEY_USED}\n")).unwrap();
    let keys = |master: Option<&str>, admin: Option<&str>, args: &[&str]| {
        let mut command = command(dir.path(), master);
        if let Some(admin) = admin {
            command.env("AIGATE_ADMIN_KEY", admin);
        }
        let output = command
            .args(["keys", "--config", "aigate.toml", "--data-dir", "data"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let add = [
        "add",
        "--endpoint",
        "up",
        "--key-file",
        "key.txt",
        "--budget-usd",
        "5",
    ];

    let (ok, text) = keys(None, None, &add);
    assert!(!ok && text.contains("AIGATE_MASTER_KEY"), "{text}");
    let (ok, text) = keys(Some(MASTER), None, &add);
    assert!(
        ok && text.contains("…Jg2u") && !text.contains("sk-live"),
        "{text}"
    );

    let gw = start(dir.path(), Some(MASTER)).await;
    assert_eq!(gw.chat().await, 200);
    assert_eq!(last_key(&upstream), KEY_USED);
    let (ok, text) = keys(None, None, &["list"]);
    assert!(!ok && text.contains("AIGATE_ADMIN_KEY"), "{text}");
    let url = gw.url.clone();
    let (ok, text) = keys(
        None,
        Some(ADMIN),
        &["list", "--endpoint", "up", "--url", &url],
    );
    assert!(
        ok && text.contains("…Jg2u") && text.contains("runtime"),
        "{text}"
    );
    let id = gw.keys().await[0]["id"].as_str().unwrap().to_string();
    let remove = ["remove", "--endpoint", "up", "--key-id", &id, "--url", &url];
    let (ok, text) = keys(None, Some(ADMIN), &remove);
    assert!(ok && text.contains(&id), "{text}");
    assert_eq!(gw.chat().await, 503, "removed through the API");
    assert_eq!(gw.terminate(), 0, "clean shutdown");

    let (ok, text) = keys(None, None, &["list"]);
    assert!(ok && !text.contains(&id), "{text}");
    assert_no_trace(&dir.path().join("data"), KEY_USED);
}
