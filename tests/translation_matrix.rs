//! The behaviour matrix of format translation: every client dialect against
//! every upstream kind, over one list of scenarios, each whole and streamed.
//!
//! A test starts a fake of the upstream kind (tests/common/fake_providers/:
//! it checks auth the way the real service would and answers from the
//! recorded-shape fixtures in tests/fixtures/matrix/upstream/), starts the
//! real gateway against it, sends the client request from
//! tests/fixtures/matrix/client/, then
//! - compares the exact upstream request(s) and the exact client answer with
//!   the golden file tests/fixtures/matrix/golden/<client>/<kind>/<scenario>
//!   (`UPDATE_GOLDEN=1 cargo test --test translation_matrix` rewrites them);
//! - asserts the meaning too: text and tool calls intact, finish reasons
//!   mapped, usage logged with the upstream's counts, stream grammar, errors
//!   in the client's dialect with the upstream's status.
//!
//! Layout (tests/translation_matrix/): `cases` (the axes and what each value
//! means), `setup` (fake, config, request, reading back), `scenario` (one
//! cell run and checked), `client_view` (answers read as an SDK would, with
//! stream grammar checks), `golden` (text form, normaliser, diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "translation_matrix/cases.rs"]
mod cases;
#[path = "translation_matrix/client_view.rs"]
mod client_view;
mod common;
#[path = "translation_matrix/golden.rs"]
mod golden;
#[path = "translation_matrix/scenario.rs"]
mod scenario;
#[path = "translation_matrix/setup.rs"]
mod setup;

/// One test per (client, kind, scenario, mode). The scenario list is the
/// same for every pair: `<scenario>_<mode>`.
macro_rules! scenario_tests {
    ($client:ident, $kind:ident) => {
        scenario_tests!(@tests $client, $kind;
            plain_text_whole: PlainText Whole,
            plain_text_stream: PlainText Stream,
            system_prompt_whole: SystemPrompt Whole,
            system_prompt_stream: SystemPrompt Stream,
            multi_turn_whole: MultiTurn Whole,
            multi_turn_stream: MultiTurn Stream,
            image_base64_whole: ImageBase64 Whole,
            image_base64_stream: ImageBase64 Stream,
            image_url_whole: ImageUrl Whole,
            tool_call_whole: ToolCall Whole,
            tool_call_stream: ToolCall Stream,
            parallel_tool_calls_whole: ParallelToolCalls Whole,
            parallel_tool_calls_stream: ParallelToolCalls Stream,
            tool_result_whole: ToolResult Whole,
            tool_result_stream: ToolResult Stream,
            stop_sequence_whole: StopSequence Whole,
            stop_sequence_stream: StopSequence Stream,
            max_tokens_whole: MaxTokens Whole,
            max_tokens_stream: MaxTokens Stream,
            content_filter_whole: ContentFilter Whole,
            content_filter_stream: ContentFilter Stream,
            upstream_400_whole: Upstream400 Whole,
            upstream_400_stream: Upstream400 Stream,
            upstream_429_pool_whole: Upstream429Pool Whole,
            upstream_429_pool_stream: Upstream429Pool Stream,
            stream_error_stream: StreamError Stream,
            stream_cut_stream: StreamCut Stream,
        );
    };
    (@tests $client:ident, $kind:ident; $($name:ident: $scenario:ident $mode:ident,)*) => {
        $(
            #[actix_web::test]
            async fn $name() {
                scenario::run(Client::$client, Kind::$kind, Scenario::$scenario, Mode::$mode).await;
            }
        )*
    };
}

/// `client_module: Client => { kind_module: Kind, … }`.
macro_rules! matrix {
    ($($client_mod:ident: $client:ident => { $($kind_mod:ident: $kind:ident),* $(,)? })*) => {
        $(
            mod $client_mod {
                $(
                    mod $kind_mod {
                        use crate::cases::{Client, Kind, Mode, Scenario};
                        use crate::scenario;
                        scenario_tests!($client, $kind);
                    }
                )*
            }
        )*
    };
}

matrix! {
    openai_client: OpenAi => {
        openai: OpenAi,
        azure: Azure,
        anthropic: Anthropic,
        gemini: Gemini,
        vertex_gemini: VertexGemini,
        vertex_claude: VertexClaude,
        bedrock_claude: BedrockClaude,
        bedrock_converse: BedrockConverse,
    }
    anthropic_client: Anthropic => {
        openai: OpenAi,
        azure: Azure,
        anthropic: Anthropic,
        gemini: Gemini,
        vertex_gemini: VertexGemini,
        vertex_claude: VertexClaude,
        bedrock_claude: BedrockClaude,
        bedrock_converse: BedrockConverse,
    }
}
