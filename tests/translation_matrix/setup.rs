//! Setting up one cell: the fake upstream scripted from the fixtures, the
//! gateway config for one endpoint of the kind, the client request, and
//! reading back what the client and the usage log got.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cases::{Client, Kind, Mode, Scenario};
use crate::common::fake_providers::{Answer, FakeProvider};
use crate::common::TestGateway;

pub const CLIENT_KEY: &str = "fk-matrix";
/// What the client asks for; each endpoint maps it to a real model name.
pub const CLIENT_MODEL: &str = "matrix-model";

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/matrix")
}

pub fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The upstream's successful answer for `fixture`, whole or streamed.
fn success_answer(kind: Kind, fixture: &str, mode: Mode, cut: bool) -> Answer {
    let dir = fixtures().join("upstream").join(kind.format());
    match mode {
        Mode::Whole => Answer::from_fixture(&read_json(dir.join(format!("{fixture}.json")))),
        Mode::Stream => match kind.format() {
            "converse" | "bedrock_invoke" => {
                let entries = read_json(dir.join(format!("{fixture}.events.json")));
                Answer::event_stream(entries.as_array().unwrap(), cut)
            }
            _ => {
                let path = dir.join(format!("{fixture}.sse"));
                Answer::sse(&std::fs::read_to_string(path).unwrap(), cut)
            }
        },
    }
}

pub fn start_fake(kind: Kind, scenario: Scenario, mode: Mode, keys: &[String]) -> FakeProvider {
    let dir = fixtures().join("upstream").join(kind.format());
    let cut = scenario == Scenario::StreamCut;
    let success = success_answer(kind, scenario.reply_fixture(), mode, cut);
    let refusal = match scenario {
        Scenario::Upstream400 => Some(read_json(dir.join("upstream_400.json"))),
        Scenario::Upstream429Pool => Some(read_json(dir.join("upstream_429_pool.json"))),
        _ => None,
    };
    FakeProvider::start(kind.auth(keys), kind.expect(), move |_, n| {
        match (&refusal, scenario) {
            (Some(fixture), Scenario::Upstream400) => Answer::from_fixture(fixture),
            // The first key is rate limited, the second answers.
            (Some(fixture), _) if n == 0 => Answer::from_fixture(fixture),
            _ => success.clone(),
        }
    })
}

/// The gateway config for one endpoint of `kind` in front of `fake`.
pub fn config(kind: Kind, fake: &FakeProvider, keys: &[String], key_dir: &Path) -> String {
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut endpoint = format!(
        "id = \"matrix\"\nbase_url = \"{}\"\nmodel_mapping = {{ \"{CLIENT_MODEL}\" = \"{}\" }}\n",
        fake.url,
        kind.upstream_model()
    );
    let provider = match kind {
        Kind::OpenAi => "openai",
        Kind::Azure => "azure",
        Kind::Anthropic => "anthropic",
        Kind::Gemini => "gemini",
        Kind::VertexGemini | Kind::VertexClaude => "vertex",
        Kind::BedrockClaude | Kind::BedrockConverse => "bedrock",
    };
    endpoint.push_str(&format!("provider = \"{provider}\"\n"));
    match kind {
        Kind::Azure => {
            endpoint.push_str(&format!("keys = [{}]\n", quoted(keys)));
            endpoint.push_str("api_version = \"2024-10-21\"\n");
            endpoint.push_str("deployments = { \"gpt-4o\" = \"matrix-gpt4o\" }\n");
        }
        Kind::VertexGemini | Kind::VertexClaude => {
            endpoint.push_str("project = \"matrix-project\"\nregion = \"us-east5\"\n");
            let files: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, email)| {
                    let path = key_dir.join(format!("service-account-{i}.json"));
                    std::fs::write(&path, fake.service_account_json(email)).unwrap();
                    format!("file:{}", path.display())
                })
                .collect();
            // The last account through `credentials` (the pool lists `keys`
            // first), any other through `keys`.
            let (last, others) = files.split_last().unwrap();
            endpoint.push_str(&format!("credentials = {last:?}\n"));
            endpoint.push_str(&format!("keys = [{}]\n", quoted(others)));
        }
        Kind::BedrockClaude | Kind::BedrockConverse if keys.len() == 1 => {
            let mut parts = keys[0].splitn(3, ':');
            endpoint.push_str("region = \"us-east-1\"\n");
            endpoint.push_str(&format!(
                "access_key_id = {:?}\nsecret_access_key = {:?}\nsession_token = {:?}\n",
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap()
            ));
        }
        Kind::BedrockClaude | Kind::BedrockConverse => {
            endpoint.push_str("region = \"us-east-1\"\n");
            endpoint.push_str(&format!("keys = [{}]\n", quoted(keys)));
        }
        _ => endpoint.push_str(&format!("keys = [{}]\n", quoted(keys))),
    }
    format!("[auth]\nclient_keys = [\"{CLIENT_KEY}\"]\n\n[[endpoints]]\n{endpoint}")
}

pub fn client_request(client: Client, scenario: Scenario, mode: Mode) -> Value {
    let mut body = read_json(
        fixtures()
            .join("client")
            .join(client.name())
            .join(format!("{}.json", scenario.name())),
    );
    if mode == Mode::Stream {
        body["stream"] = json!(true);
        // Usage chunks are asked for, except in the plain stream: there the
        // gateway must still log usage without showing it to the client.
        if client == Client::OpenAi && scenario != Scenario::PlainText {
            body["stream_options"] = json!({"include_usage": true});
        }
    }
    body
}

pub struct ClientAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

pub async fn send(gw: &TestGateway, client: Client, body: &Value) -> ClientAnswer {
    let mut request = crate::common::client().post(format!("{}{}", gw.url, client.path()));
    request = match client {
        Client::OpenAi => request.insert_header(("authorization", format!("Bearer {CLIENT_KEY}"))),
        Client::Anthropic => request
            .insert_header(("x-api-key", CLIENT_KEY))
            .insert_header(("anthropic-version", "2023-06-01")),
    };
    let mut response = request.send_json(body).await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.body().limit(16 * 1024 * 1024).await.unwrap();
    ClientAnswer {
        status: response.status().as_u16(),
        content_type,
        body: body.to_vec(),
    }
}

/// Usage records once `n` are on disk (finishers run when the response body
/// is dropped, so they may lag the response a little).
pub async fn usage_records(gw: &TestGateway, n: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..200 {
        gw.state.usage.flush().await.unwrap();
        records.clear();
        let logs = gw.data_dir.path().join("logs");
        for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("usage-") {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                records.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
        if records.len() >= n {
            return records;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    records
}
