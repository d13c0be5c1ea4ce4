//! Bedrock Converse wire types (camelCase JSON), for `Converse` bodies and
//! the JSON payloads of `ConverseStream` event frames. Only the fields the
//! gateway reads or writes are typed; unknown fields are ignored on input.
//!
//! Converse unions (a content block, a tool choice) are JSON objects with
//! exactly one key naming the variant, which is serde's external tagging.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- requests ----

/// The body of `POST /model/{modelId}/converse` (and `/converse-stream`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Model-specific fields passed through untouched by Bedrock (e.g.
    /// Claude's `thinking`): free-form by definition, hence a `Value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: ConverseRole,
    pub content: Vec<ContentBlock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConverseRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub tools: Vec<ToolEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// One entry of `toolConfig.tools`: `{"toolSpec": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolEntry {
    pub tool_spec: ToolSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: InputSchema,
}

/// `{"json": <JSON Schema>}`; a schema is arbitrary JSON, hence a `Value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    pub json: Value,
}

/// `{"auto": {}}`, `{"any": {}}` or `{"tool": {"name": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    Auto(Empty),
    Any(Empty),
    Tool(NamedTool),
}

/// The `{}` that unit-like union members carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTool {
    pub name: String,
}

// ---- content blocks ----

/// One block of a message. Reading is lenient: a block of a kind the
/// gateway does not handle (document, citations, guard content, …) becomes
/// [`ContentBlock::Other`] instead of failing the whole body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawContentBlock")]
pub enum ContentBlock {
    Text(String),
    Image(ImageBlock),
    ToolUse(ToolUseBlock),
    ToolResult(ToolResultBlock),
    ReasoningContent(ReasoningContentBlock),
    /// Never sent: only produced when reading.
    #[serde(skip_serializing)]
    Other,
}

/// The read side of [`ContentBlock`]: every member optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContentBlock {
    text: Option<String>,
    image: Option<ImageBlock>,
    tool_use: Option<ToolUseBlock>,
    tool_result: Option<ToolResultBlock>,
    reasoning_content: Option<ReasoningContentBlock>,
}

impl From<RawContentBlock> for ContentBlock {
    fn from(raw: RawContentBlock) -> Self {
        if let Some(text) = raw.text {
            ContentBlock::Text(text)
        } else if let Some(image) = raw.image {
            ContentBlock::Image(image)
        } else if let Some(tool_use) = raw.tool_use {
            ContentBlock::ToolUse(tool_use)
        } else if let Some(tool_result) = raw.tool_result {
            ContentBlock::ToolResult(tool_result)
        } else if let Some(reasoning) = raw.reasoning_content {
            ContentBlock::ReasoningContent(reasoning)
        } else {
            ContentBlock::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    pub format: ImageFormat,
    pub source: ImageSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
}

/// `{"bytes": <base64>}`: over JSON the bytes travel base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSource {
    pub bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock {
    pub tool_use_id: String,
    pub name: String,
    /// The arguments as a JSON document (an object for every known model).
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock {
    pub tool_use_id: String,
    pub content: Vec<ToolResultContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ToolResultStatus>,
}

/// `{"text": …}` or `{"json": <document>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolResultContent {
    Text(String),
    Json(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolResultStatus {
    Success,
    Error,
}

/// `{"reasoningText": {text, signature}}` or `{"redactedContent": <base64>}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningContentBlock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_text: Option<ReasoningText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningText {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

// ---- responses ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    pub output: ConverseOutput,
    pub stop_reason: StopReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ConverseUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ConverseMetrics>,
}

/// A union whose only member today is `message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    GuardrailIntervened,
    ContentFiltered,
    /// Newer Claude models on Bedrock stop with this when the context is full.
    ModelContextWindowExceeded,
    /// A value added to the API after this was written.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConverseUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConverseMetrics {
    pub latency_ms: u64,
}

// ---- ConverseStream event payloads ----

/// One `ConverseStream` event. The variant comes from the frame's
/// `:event-type` header, not from the JSON, so this is built by
/// [`StreamEvent::parse`] rather than by serde tagging.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    MessageStart(MessageStartEvent),
    ContentBlockStart(ContentBlockStartEvent),
    ContentBlockDelta(ContentBlockDeltaEvent),
    ContentBlockStop(ContentBlockStopEvent),
    MessageStop(MessageStopEvent),
    Metadata(MetadataEvent),
    /// An event type this gateway does not know; skipped.
    Unknown,
}

impl StreamEvent {
    /// Reads one event payload given its `:event-type`.
    pub fn parse(event_type: &str, payload: &[u8]) -> Result<Self, serde_json::Error> {
        Ok(match event_type {
            "messageStart" => StreamEvent::MessageStart(serde_json::from_slice(payload)?),
            "contentBlockStart" => StreamEvent::ContentBlockStart(serde_json::from_slice(payload)?),
            "contentBlockDelta" => StreamEvent::ContentBlockDelta(serde_json::from_slice(payload)?),
            "contentBlockStop" => StreamEvent::ContentBlockStop(serde_json::from_slice(payload)?),
            "messageStop" => StreamEvent::MessageStop(serde_json::from_slice(payload)?),
            "metadata" => StreamEvent::Metadata(serde_json::from_slice(payload)?),
            _ => StreamEvent::Unknown,
        })
    }
}

/// The exception event types `ConverseStream` can send mid-stream.
pub const STREAM_EXCEPTIONS: [&str; 5] = [
    "internalServerException",
    "modelStreamErrorException",
    "throttlingException",
    "validationException",
    "serviceUnavailableException",
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageStartEvent {
    pub role: ConverseRole,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStartEvent {
    #[serde(default)]
    pub start: ContentBlockStart,
    pub content_block_index: u32,
}

/// A union; only `toolUse` starts matter (text and reasoning blocks start
/// with their first delta).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStart {
    pub tool_use: Option<ToolUseStart>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart {
    pub tool_use_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockDeltaEvent {
    #[serde(default)]
    pub delta: ContentBlockDelta,
    pub content_block_index: u32,
}

/// A union of `text`, `toolUse` and `reasoningContent` (others ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockDelta {
    pub text: Option<String>,
    pub tool_use: Option<ToolUseDelta>,
    pub reasoning_content: Option<ReasoningDelta>,
}

/// A fragment of the tool input's JSON text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ToolUseDelta {
    pub input: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningDelta {
    pub text: Option<String>,
    pub signature: Option<String>,
    pub redacted_content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStopEvent {
    pub content_block_index: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStopEvent {
    pub stop_reason: StopReason,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MetadataEvent {
    pub usage: Option<ConverseUsage>,
    pub metrics: Option<ConverseMetrics>,
}

/// The body of an exception frame. AWS JSON errors spell the key either way.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ExceptionPayload {
    #[serde(alias = "Message")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_and_unknown_blocks_are_kept_apart() {
        let body = json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "hi"},
                    {"image": {"format": "png", "source": {"bytes": "iVBOR"}}},
                    {"toolResult": {"toolUseId": "t1", "content": [{"json": {"a": 1}}], "status": "error"}}
                ]},
                {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"toolUse": {"toolUseId": "t2", "name": "f", "input": {}}}
                ]}
            ],
            "system": [{"text": "be brief"}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"auto": {}}}
        });
        let request: ConverseRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap(), body);

        let message: Message = serde_json::from_value(
            json!({"role": "assistant", "content": [{"document": {"name": "x"}}, {"text": "ok"}]}),
        )
        .unwrap();
        assert_eq!(
            message.content,
            vec![ContentBlock::Other, ContentBlock::Text("ok".into())]
        );
    }

    #[test]
    fn stream_events_by_type() {
        let event = StreamEvent::parse("messageStop", br#"{"stopReason":"guardrail_intervened"}"#);
        assert_eq!(
            event.unwrap(),
            StreamEvent::MessageStop(MessageStopEvent {
                stop_reason: StopReason::GuardrailIntervened
            })
        );
        assert_eq!(
            StreamEvent::parse("ping", b"not even json").unwrap(),
            StreamEvent::Unknown
        );
        assert!(StreamEvent::parse("contentBlockStop", b"{}").is_err());
    }
}
