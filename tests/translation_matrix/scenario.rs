//! Running one matrix cell and checking what it did: the golden file of the
//! exact upstream request(s) and client answer, then the meaning (text, tool
//! calls, finish reason, usage seen and logged, errors in the client's
//! dialect, keys used).

use serde_json::{json, Value};

use crate::cases::{Client, Kind, Mode, Scenario};
use crate::client_view::{self, View};
use crate::common::fake_providers::FakeProvider;
use crate::common::TestGateway;
use crate::golden;
use crate::setup::{
    client_request, config, fixtures, read_json, send, start_fake, usage_records, ClientAnswer,
    CLIENT_KEY, CLIENT_MODEL,
};

/// Runs one matrix cell.
pub async fn run(client: Client, kind: Kind, scenario: Scenario, mode: Mode) {
    let keys = kind.keys(scenario == Scenario::Upstream429Pool);
    let fake = start_fake(kind, scenario, mode, &keys);
    let key_dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(&config(kind, &fake, &keys, key_dir.path()));
    let request = client_request(client, scenario, mode);
    let answer = send(&gw, client, &request).await;
    let seen = fake.requests();
    assert!(
        fake.violations().is_empty(),
        "the fake upstream refused: {:?}",
        fake.violations()
    );

    // Golden: what the upstream got, what the client got.
    let mut text = String::new();
    for (n, request) in seen.iter().enumerate() {
        text.push_str(&golden::request_text(n + 1, request));
        text.push('\n');
    }
    text.push_str(&format!(
        "## client answer\nHTTP {}\ncontent-type: {}\n\n",
        answer.status, answer.content_type
    ));
    let streamed_answer = answer.content_type.starts_with("text/event-stream");
    text.push_str(&match streamed_answer {
        true => golden::stream_text(&answer.body),
        false => golden::body_text(&answer.body),
    });
    let suffix = match mode {
        Mode::Whole => "whole",
        Mode::Stream => "stream",
    };
    golden::assert_golden(
        &format!(
            "{}/{}/{}.{suffix}.txt",
            client.name(),
            kind.name(),
            scenario.name()
        ),
        &text,
    );

    // Meaning.
    let cell = Cell {
        client,
        kind,
        scenario,
        mode,
    };
    // A request the gateway refuses itself never reaches the upstream.
    let refused_locally = seen.is_empty() && answer.status == 400;
    if !refused_locally {
        cell.check_upstream(&fake, &keys, &request);
    }
    let records = usage_records(&gw, 1).await;
    assert_eq!(
        records.len(),
        1,
        "one usage record per request: {records:?}"
    );
    cell.check_answer(&answer, &records[0]);
    gw.stop().await;
}

struct Cell {
    client: Client,
    kind: Kind,
    scenario: Scenario,
    mode: Mode,
}

impl Cell {
    fn check_upstream(&self, fake: &FakeProvider, keys: &[String], request: &Value) {
        let seen = fake.requests();
        let client_key_leaked = seen
            .iter()
            .any(|r| r.headers.iter().any(|(_, v)| v.contains(CLIENT_KEY)));
        assert!(!client_key_leaked, "the client's key reached the upstream");
        let expected_keys: Vec<String> = match self.kind {
            // The fake names Bedrock requests by access key id.
            Kind::BedrockClaude | Kind::BedrockConverse => keys
                .iter()
                .map(|k| k.split(':').next().unwrap().to_string())
                .collect(),
            _ => keys.to_vec(),
        };
        let used: Vec<String> = seen.iter().map(|r| r.key.clone()).collect();
        assert_eq!(used, expected_keys, "keys used, in order");
        if matches!(self.kind, Kind::VertexGemini | Kind::VertexClaude) {
            assert_eq!(fake.token_requests(), keys.len(), "one token per account");
        }
        let first = &seen[0];
        if self.kind.native_for(self.client) && self.kind != Kind::BedrockClaude {
            // Relayed: the client's body, model mapped (and Vertex's changes).
            let mut expected = request.clone();
            let body = first.json();
            match self.kind {
                Kind::VertexClaude => {
                    expected.as_object_mut().unwrap().remove("model");
                    expected["anthropic_version"] = json!("vertex-2023-10-16");
                    expected["stream"] = json!(self.mode == Mode::Stream);
                }
                _ => expected["model"] = json!(self.kind.upstream_model()),
            }
            if self.client == Client::OpenAi && self.mode == Mode::Stream {
                expected["stream_options"] = json!({"include_usage": true});
            }
            assert_eq!(body, expected, "a same-format request goes up unchanged");
        }
    }

    fn check_answer(&self, answer: &ClientAnswer, record: &Value) {
        let body = String::from_utf8_lossy(&answer.body);
        match self.scenario {
            Scenario::Upstream400 => return self.check_refusal(answer, record, 400, "temperature"),
            Scenario::ImageUrl if answer.status == 400 => {
                assert_ne!(
                    self.accepts_image_urls(),
                    Some(true),
                    "{:?} takes http image URLs, yet the gateway refused: {body}",
                    self.kind
                );
                return self.check_refusal(answer, record, 400, "URL");
            }
            Scenario::ImageUrl => assert_ne!(
                self.accepts_image_urls(),
                Some(false),
                "{:?} cannot take http image URLs, yet the gateway sent one",
                self.kind
            ),
            _ => {}
        }
        assert_eq!(answer.status, 200, "{body}");
        let view = self.view(answer);
        let translated = !self.kind.native_for(self.client);
        if translated {
            assert_eq!(
                view.model.as_deref(),
                Some(CLIENT_MODEL),
                "the model the client asked for"
            );
        }
        assert_eq!(view.text, self.scenario.text(), "text arrives intact");
        self.check_tool_calls(&view);
        if matches!(self.scenario, Scenario::StreamError | Scenario::StreamCut) {
            assert!(
                view.error.is_some(),
                "a broken stream must end with an error event: {body}"
            );
            assert!(view.finish.is_none(), "no finish reason after an error");
            assert_eq!(record["stream"], true);
            return;
        }
        assert!(view.error.is_none(), "unexpected error: {body}");
        assert_eq!(
            view.finish.as_deref(),
            Some(self.finish()),
            "finish reason mapped"
        );
        if self.scenario == Scenario::StopSequence && self.finish() == "stop_sequence" {
            assert_eq!(view.stop_sequence.as_deref(), Some("4"));
        }
        let usage = self.expected_usage();
        let usage_hidden = self.client == Client::OpenAi
            && self.mode == Mode::Stream
            && self.scenario == Scenario::PlainText;
        match usage_hidden {
            true => assert_eq!(view.usage, None, "no usage chunk unless asked"),
            false => assert_eq!(view.usage, Some(usage), "usage the client sees"),
        }
        assert_eq!(record["status"], 200, "{record}");
        assert_eq!(
            (
                record["prompt_tokens"].as_u64().unwrap(),
                record["completion_tokens"].as_u64().unwrap(),
                record["cached_tokens"].as_u64().unwrap()
            ),
            usage,
            "usage logged: {record}"
        );
        assert_eq!(record["model"], CLIENT_MODEL);
        assert_eq!(record["upstream_model"], self.kind.upstream_model());
        assert_eq!(record["stream"], self.mode == Mode::Stream);
        if self.scenario == Scenario::Upstream429Pool {
            assert_eq!(record["attempts"], 2, "{record}");
        }
    }

    fn view(&self, answer: &ClientAnswer) -> View {
        let translated = !self.kind.native_for(self.client);
        match (self.client, self.mode) {
            (Client::OpenAi, Mode::Whole) => {
                client_view::openai_whole(&serde_json::from_slice(&answer.body).unwrap())
            }
            (Client::Anthropic, Mode::Whole) => {
                client_view::anthropic_whole(&serde_json::from_slice(&answer.body).unwrap())
            }
            (Client::OpenAi, Mode::Stream) => {
                assert!(answer.content_type.starts_with("text/event-stream"));
                client_view::openai_stream(&answer.body, translated)
            }
            (Client::Anthropic, Mode::Stream) => {
                assert!(answer.content_type.starts_with("text/event-stream"));
                client_view::anthropic_stream(&answer.body)
            }
        }
    }

    fn check_tool_calls(&self, view: &View) {
        let expected = self.scenario.tool_calls();
        assert_eq!(
            view.tool_calls.len(),
            expected.len(),
            "{:?}",
            view.tool_calls
        );
        for (call, (city, arguments)) in view.tool_calls.iter().zip(expected) {
            assert_eq!(call.name, "get_weather");
            assert_eq!(call.arguments, arguments, "tool arguments intact");
            match self.kind.tool_id_prefix() {
                Some(prefix) => assert_eq!(call.id, format!("{prefix}{city}"), "tool id intact"),
                None => assert!(call.id.len() > 8, "a generated tool id: {}", call.id),
            }
        }
        let mut ids: Vec<&str> = view.tool_calls.iter().map(|c| c.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), view.tool_calls.len(), "tool ids are distinct");
    }

    fn finish(&self) -> &'static str {
        let anthropic_native = self.kind.native_for(Client::Anthropic);
        match (self.client, self.scenario) {
            (Client::OpenAi, Scenario::ToolCall | Scenario::ParallelToolCalls) => "tool_calls",
            (Client::OpenAi, Scenario::MaxTokens) => "length",
            (Client::OpenAi, Scenario::ContentFilter) => "content_filter",
            (Client::OpenAi, _) => "stop",
            (Client::Anthropic, Scenario::ToolCall | Scenario::ParallelToolCalls) => "tool_use",
            (Client::Anthropic, Scenario::MaxTokens) => "max_tokens",
            (Client::Anthropic, Scenario::ContentFilter) => "refusal",
            // Only Anthropic's own answer says which stop sequence matched;
            // through the pivot it is a plain stop.
            (Client::Anthropic, Scenario::StopSequence) if anthropic_native => "stop_sequence",
            (Client::Anthropic, _) => "end_turn",
        }
    }

    /// Whether the kind documents `http(s)` image URLs: OpenAI's and
    /// Anthropic's APIs do (`image_url`, `source.type = url`), Gemini takes
    /// external URLs as `fileData.fileUri`, Converse only bytes or S3.
    /// `None`: not settled by the provider's documentation (Claude behind
    /// Vertex rawPredict and Bedrock InvokeModel): the golden file records
    /// what the gateway does.
    fn accepts_image_urls(&self) -> Option<bool> {
        match self.kind {
            Kind::OpenAi | Kind::Azure | Kind::Anthropic | Kind::Gemini | Kind::VertexGemini => {
                Some(true)
            }
            Kind::BedrockConverse => Some(false),
            Kind::VertexClaude | Kind::BedrockClaude => None,
        }
    }

    fn expected_usage(&self) -> (u64, u64, u64) {
        let table = read_json(
            fixtures()
                .join("upstream")
                .join(self.kind.format())
                .join("expected_usage.json"),
        );
        let usage = &table[self.scenario.reply_fixture()];
        (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
            usage["cached_tokens"].as_u64().unwrap(),
        )
    }

    /// An upstream refusal: the upstream's status and message, in the
    /// client's dialect.
    fn check_refusal(&self, answer: &ClientAnswer, record: &Value, status: u16, needle: &str) {
        let body = String::from_utf8_lossy(&answer.body).to_string();
        assert_eq!(answer.status, status, "{body}");
        assert!(
            answer.content_type.starts_with("application/json"),
            "{}",
            answer.content_type
        );
        let json: Value = serde_json::from_slice(&answer.body).unwrap();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        match self.client {
            Client::OpenAi => assert!(json["error"]["type"].is_string(), "{body}"),
            Client::Anthropic => {
                assert_eq!(json["type"], "error", "{body}");
                assert_eq!(json["error"]["type"], "invalid_request_error", "{body}");
            }
        }
        assert!(
            message.contains(needle),
            "the upstream's message reaches the client: {body}"
        );
        assert_eq!(record["status"], status, "{record}");
    }
}
