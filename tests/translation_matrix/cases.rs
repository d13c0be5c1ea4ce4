//! The matrix's axes (client dialect, upstream kind, mode, scenario) and
//! what each value means: paths, fixture folders, upstream model names, key
//! pools, auth, and the text and tool calls a scenario must deliver.

use serde_json::{json, Value};

use crate::common::fake_providers::{Auth, Expect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    OpenAi,
    Anthropic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    VertexGemini,
    VertexClaude,
    BedrockClaude,
    BedrockConverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Whole,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    PlainText,
    SystemPrompt,
    MultiTurn,
    ImageBase64,
    ImageUrl,
    ToolCall,
    ParallelToolCalls,
    ToolResult,
    StopSequence,
    MaxTokens,
    ContentFilter,
    Upstream400,
    Upstream429Pool,
    StreamError,
    StreamCut,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::OpenAi => "openai",
            Client::Anthropic => "anthropic",
        }
    }
    pub fn path(self) -> &'static str {
        match self {
            Client::OpenAi => "/v1/chat/completions",
            Client::Anthropic => "/v1/messages",
        }
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::Azure => "azure",
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
            Kind::VertexGemini => "vertex_gemini",
            Kind::VertexClaude => "vertex_claude",
            Kind::BedrockClaude => "bedrock_claude",
            Kind::BedrockConverse => "bedrock_converse",
        }
    }

    /// The fixture folder of the wire format this kind answers in.
    pub fn format(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::Azure => "azure",
            Kind::Anthropic | Kind::VertexClaude => "anthropic",
            Kind::Gemini | Kind::VertexGemini => "gemini",
            Kind::BedrockClaude => "bedrock_invoke",
            Kind::BedrockConverse => "converse",
        }
    }

    /// The model the endpoint maps `matrix-model` to.
    pub fn upstream_model(self) -> &'static str {
        match self {
            Kind::OpenAi => "gpt-4o-2024-08-06",
            Kind::Azure => "gpt-4o",
            Kind::Anthropic => "claude-sonnet-4-5-20250929",
            Kind::Gemini | Kind::VertexGemini => "gemini-2.5-flash",
            Kind::VertexClaude => "claude-sonnet-4-5@20250929",
            Kind::BedrockClaude => "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            Kind::BedrockConverse => "amazon.nova-pro-v1:0",
        }
    }

    /// Does this kind answer in the client's own format (relayed, not
    /// translated)?
    pub fn native_for(self, client: Client) -> bool {
        match client {
            Client::OpenAi => matches!(self, Kind::OpenAi | Kind::Azure),
            Client::Anthropic => {
                matches!(
                    self,
                    Kind::Anthropic | Kind::VertexClaude | Kind::BedrockClaude
                )
            }
        }
    }

    /// Whether the upstream sends its own tool-call ids (Gemini does not:
    /// the gateway makes them).
    pub fn tool_id_prefix(self) -> Option<&'static str> {
        match self {
            Kind::OpenAi | Kind::Azure => Some("call_fx_"),
            Kind::Anthropic | Kind::VertexClaude | Kind::BedrockClaude => Some("toolu_fx_"),
            Kind::BedrockConverse => Some("tooluse_fx_"),
            Kind::Gemini | Kind::VertexGemini => None,
        }
    }

    /// The pool: one key, or two for the 429 scenario.
    pub fn keys(self, two: bool) -> Vec<String> {
        let base: Vec<String> = match self {
            Kind::OpenAi => vec!["sk-matrix-openai-1".into(), "sk-matrix-openai-2".into()],
            Kind::Azure => vec!["azure-matrix-key-1".into(), "azure-matrix-key-2".into()],
            Kind::Anthropic => vec!["sk-ant-matrix-1".into(), "sk-ant-matrix-2".into()],
            Kind::Gemini => vec!["AIza-matrix-1".into(), "AIza-matrix-2".into()],
            Kind::VertexGemini | Kind::VertexClaude => vec![
                "matrix-one@aigate-test.iam.gserviceaccount.com".into(),
                "matrix-two@aigate-test.iam.gserviceaccount.com".into(),
            ],
            Kind::BedrockClaude | Kind::BedrockConverse => vec![
                "AKIAMATRIXONE:matrix-secret-one:matrix-session-token-one".into(),
                "AKIAMATRIXTWO:matrix-secret-two".into(),
            ],
        };
        base.into_iter().take(if two { 2 } else { 1 }).collect()
    }

    pub fn auth(self, keys: &[String]) -> Auth {
        let keys = keys.to_vec();
        match self {
            Kind::OpenAi => Auth::Bearer(keys),
            Kind::Azure => Auth::Header {
                name: "api-key",
                keys,
            },
            Kind::Anthropic => Auth::Header {
                name: "x-api-key",
                keys,
            },
            Kind::Gemini => Auth::Header {
                name: "x-goog-api-key",
                keys,
            },
            Kind::VertexGemini | Kind::VertexClaude => Auth::Vertex { emails: keys },
            Kind::BedrockClaude | Kind::BedrockConverse => Auth::SigV4 {
                credentials: keys,
                region: "us-east-1".into(),
            },
        }
    }

    pub fn expect(self) -> Expect {
        match self {
            Kind::Azure => Expect {
                query: Some(("api-version".into(), "2024-10-21".into())),
                header: None,
            },
            Kind::Anthropic => Expect {
                query: None,
                header: Some("anthropic-version".into()),
            },
            _ => Expect::default(),
        }
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PlainText => "plain_text",
            Scenario::SystemPrompt => "system_prompt",
            Scenario::MultiTurn => "multi_turn",
            Scenario::ImageBase64 => "image_base64",
            Scenario::ImageUrl => "image_url",
            Scenario::ToolCall => "tool_call",
            Scenario::ParallelToolCalls => "parallel_tool_calls",
            Scenario::ToolResult => "tool_result",
            Scenario::StopSequence => "stop_sequence",
            Scenario::MaxTokens => "max_tokens",
            Scenario::ContentFilter => "content_filter",
            Scenario::Upstream400 => "upstream_400",
            Scenario::Upstream429Pool => "upstream_429_pool",
            Scenario::StreamError => "stream_error",
            Scenario::StreamCut => "stream_cut",
        }
    }

    /// The fixture the successful answer comes from.
    pub fn reply_fixture(self) -> &'static str {
        match self {
            Scenario::Upstream400 | Scenario::Upstream429Pool => "plain_text",
            other => other.name(),
        }
    }

    /// The text the client must see (for error scenarios: before the error).
    pub fn text(self) -> &'static str {
        match self {
            Scenario::PlainText | Scenario::Upstream429Pool => "Hello! How can I help you today?",
            Scenario::SystemPrompt => "Bonjour.",
            Scenario::MultiTurn => "Your name is Ada.",
            Scenario::ImageBase64 => "A single red pixel.",
            Scenario::ImageUrl => "A red square.",
            Scenario::ToolCall => "Let me check the weather.",
            Scenario::ParallelToolCalls | Scenario::ContentFilter | Scenario::Upstream400 => "",
            Scenario::ToolResult => "It is 18°C and sunny in Paris.",
            Scenario::StopSequence => "1, 2, 3, ",
            Scenario::MaxTokens => "Once upon a time",
            Scenario::StreamError | Scenario::StreamCut => "Hello! How",
        }
    }

    /// (city, arguments) of the expected tool calls, in order.
    pub fn tool_calls(self) -> Vec<(&'static str, Value)> {
        let weather = |city: &str| json!({"city": city, "unit": "celsius"});
        match self {
            Scenario::ToolCall => vec![("paris", weather("Paris"))],
            Scenario::ParallelToolCalls => {
                vec![("paris", weather("Paris")), ("london", weather("London"))]
            }
            _ => vec![],
        }
    }
}
