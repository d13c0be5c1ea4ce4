//! Pivot (OpenAI Chat Completions) request → Converse request.
//!
//! Converse wants the system prompt apart, strictly alternating user and
//! assistant turns that start with a user turn, tool results inside user
//! turns, and images as inline bytes. Choices made where the formats differ:
//!
//! - system and developer messages, wherever they appear, join `system`;
//! - consecutive same-role turns (e.g. several tool results) are merged;
//!   a conversation that opens with an assistant turn gets a short
//!   placeholder user turn in front, since Converse rejects it otherwise;
//! - `tool_choice: "none"` has no Converse counterpart: `toolChoice` is
//!   omitted (the model decides) and the tools are still sent, because a
//!   history with tool calls is rejected when `toolConfig` is missing;
//! - `response_format` becomes a system instruction (with the schema);
//! - assistant `reasoning_content` is not sent back: Claude only accepts
//!   reasoning blocks with their signature, which the pivot does not keep.

use serde_json::{json, Value};

use super::wire::{
    ContentBlock, ConverseRequest, ConverseRole, Empty, ImageBlock, ImageFormat, ImageSource,
    InferenceConfig, InputSchema, Message, NamedTool, SystemBlock, ToolChoice as ConverseChoice,
    ToolConfig, ToolEntry, ToolResultBlock, ToolResultContent, ToolSpec, ToolUseBlock,
};
use crate::api::openai::{
    parse_data_url, ChatMessage, ChatRequest, ContentPart, MessageContent, ResponseFormat, Role,
    ToolChoice,
};
use crate::translate::TranslateError;

/// The user turn put in front of a conversation that opens with the assistant.
const OPENING_PLACEHOLDER: &str = "(conversation start)";

/// Output tokens left for the answer when reasoning is on and the client
/// set no cap (Claude needs `maxTokens` above the thinking budget).
const ANSWER_TOKENS_WITH_REASONING: u64 = 4096;

/// Builds the Converse body for a pivot request.
pub fn request_from_pivot(req: &ChatRequest) -> Result<ConverseRequest, TranslateError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::Unsupported(
            "n > 1 is not supported by Bedrock".into(),
        ));
    }
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for message in &req.messages {
        match message.role {
            Role::System | Role::Developer => {
                let text = message.text_content();
                if !text.is_empty() {
                    system.push(SystemBlock { text });
                }
            }
            Role::User => turns.push(ConverseRole::User, user_blocks(message)?),
            Role::Assistant => turns.push(ConverseRole::Assistant, assistant_blocks(message)?),
            Role::Tool | Role::Function => {
                turns.push(ConverseRole::User, vec![tool_result_block(message)?])
            }
        }
    }
    if let Some(text) = response_format_instruction(req.response_format.as_ref()) {
        system.push(SystemBlock { text });
    }
    let budget = reasoning_budget(req.reasoning_effort.as_deref())?;
    Ok(ConverseRequest {
        messages: turns.finish()?,
        system,
        inference_config: inference_config(req, budget)?,
        tool_config: tool_config(req)?,
        additional_model_request_fields: budget.map(|budget_tokens| {
            json!({"thinking": {"type": "enabled", "budget_tokens": budget_tokens}})
        }),
    })
}

/// Alternating turns under construction.
#[derive(Default)]
struct Turns(Vec<Message>);

impl Turns {
    /// Adds blocks to the last turn if it has the same role, else opens one.
    fn push(&mut self, role: ConverseRole, blocks: Vec<ContentBlock>) {
        if blocks.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => self.0.push(Message {
                role,
                content: blocks,
            }),
        }
    }

    fn finish(mut self) -> Result<Vec<Message>, TranslateError> {
        match self.0.first() {
            None => Err(TranslateError::InvalidRequest(
                "messages must hold at least one non-empty user or assistant message".into(),
            )),
            Some(first) if first.role == ConverseRole::Assistant => {
                let opening = Message {
                    role: ConverseRole::User,
                    content: vec![ContentBlock::Text(OPENING_PLACEHOLDER.into())],
                };
                self.0.insert(0, opening);
                Ok(self.0)
            }
            Some(_) => Ok(self.0),
        }
    }
}

fn user_blocks(message: &ChatMessage) -> Result<Vec<ContentBlock>, TranslateError> {
    match &message.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(text_block(text).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text } => blocks.extend(text_block(text)),
                    ContentPart::ImageUrl { image_url } => {
                        blocks.push(ContentBlock::Image(image_block(&image_url.url)?))
                    }
                    ContentPart::InputAudio { .. } => return Err(unsupported_part("audio")),
                    ContentPart::File { .. } => return Err(unsupported_part("file")),
                }
            }
            Ok(blocks)
        }
    }
}

/// Converse rejects blank text blocks, so empty strings are left out.
fn text_block(text: &str) -> Option<ContentBlock> {
    (!text.is_empty()).then(|| ContentBlock::Text(text.to_owned()))
}

fn unsupported_part(kind: &str) -> TranslateError {
    TranslateError::Unsupported(format!("{kind} content parts are not supported by Bedrock"))
}

fn image_block(url: &str) -> Result<ImageBlock, TranslateError> {
    let Some((media_type, data)) = parse_data_url(url) else {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Err(TranslateError::Unsupported(
                "image URLs are not supported by Bedrock; send the image as a base64 data URL"
                    .into(),
            ));
        }
        return Err(TranslateError::InvalidRequest(
            "image_url.url must be an http(s) URL or a base64 data URL".into(),
        ));
    };
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => ImageFormat::Png,
        "image/jpeg" | "image/jpg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::Webp,
        other => {
            return Err(TranslateError::Unsupported(format!(
                "image type {other} is not supported by Bedrock (png, jpeg, gif, webp)"
            )))
        }
    };
    Ok(ImageBlock {
        format,
        source: ImageSource {
            bytes: data.to_owned(),
        },
    })
}

fn assistant_blocks(message: &ChatMessage) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut blocks: Vec<ContentBlock> = text_block(&message.text_content()).into_iter().collect();
    for call in message.tool_calls.iter().flatten() {
        let arguments = call.function.arguments.trim();
        let input = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|err| {
                TranslateError::InvalidRequest(format!(
                    "tool call {} has arguments that are not valid JSON: {err}",
                    call.id
                ))
            })?
        };
        blocks.push(ContentBlock::ToolUse(ToolUseBlock {
            tool_use_id: call.id.clone(),
            name: call.function.name.clone(),
            input,
        }));
    }
    Ok(blocks)
}

/// A `tool` message: its output as JSON when it is a JSON object, else text.
/// A legacy `function` message has no call id; its function name stands in.
fn tool_result_block(message: &ChatMessage) -> Result<ContentBlock, TranslateError> {
    let tool_use_id = message
        .tool_call_id
        .clone()
        .or_else(|| message.name.clone())
        .ok_or_else(|| {
            TranslateError::InvalidRequest("a tool message must carry tool_call_id".into())
        })?;
    let output = message.text_content();
    let content = match serde_json::from_str::<Value>(&output) {
        Ok(object @ Value::Object(_)) => ToolResultContent::Json(object),
        _ => ToolResultContent::Text(output),
    };
    Ok(ContentBlock::ToolResult(ToolResultBlock {
        tool_use_id,
        content: vec![content],
        status: None,
    }))
}

fn response_format_instruction(format: Option<&ResponseFormat>) -> Option<String> {
    const JSON_ONLY: &str = "Respond only with valid JSON: no prose, no code fences.";
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => {
            Some(format!("{JSON_ONLY} The answer must be a JSON object."))
        }
        ResponseFormat::JsonSchema { json_schema } => Some(match &json_schema.schema {
            Some(schema) => {
                format!("{JSON_ONLY} The answer must match this JSON Schema:\n{schema}")
            }
            None => JSON_ONLY.to_owned(),
        }),
    }
}

/// The thinking budget for `reasoning_effort`, as Claude on Bedrock takes it.
fn reasoning_budget(effort: Option<&str>) -> Result<Option<u64>, TranslateError> {
    match effort {
        None | Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(4096)),
        Some("high") => Ok(Some(16384)),
        Some(other) => Err(TranslateError::InvalidRequest(format!(
            "reasoning_effort must be low, medium or high, not {other:?}"
        ))),
    }
}

fn inference_config(
    req: &ChatRequest,
    budget: Option<u64>,
) -> Result<Option<InferenceConfig>, TranslateError> {
    let max_tokens = match (req.output_cap(), budget) {
        (Some(cap), Some(budget)) if cap <= budget => {
            return Err(TranslateError::InvalidRequest(format!(
                "max_tokens ({cap}) must exceed the reasoning budget ({budget} tokens) on Bedrock"
            )))
        }
        (None, Some(budget)) => Some(budget + ANSWER_TOKENS_WITH_REASONING),
        (cap, _) => cap,
    };
    let config = InferenceConfig {
        max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req
            .stop
            .clone()
            .map(|stop| stop.into_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
    };
    Ok((config != InferenceConfig::default()).then_some(config))
}

fn tool_config(req: &ChatRequest) -> Result<Option<ToolConfig>, TranslateError> {
    let Some(tools) = req.tools.as_ref().filter(|tools| !tools.is_empty()) else {
        return Ok(None);
    };
    let mut entries = Vec::with_capacity(tools.len());
    for tool in tools {
        if tool.kind != "function" {
            return Err(TranslateError::Unsupported(format!(
                "tools of type {:?} are not supported by Bedrock",
                tool.kind
            )));
        }
        let schema = tool
            .function
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        entries.push(ToolEntry {
            tool_spec: ToolSpec {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                input_schema: InputSchema { json: schema },
            },
        });
    }
    let tool_choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(ConverseChoice::Auto(Empty {})),
            "required" => Some(ConverseChoice::Any(Empty {})),
            "none" => None,
            other => {
                return Err(TranslateError::InvalidRequest(format!(
                    "tool_choice must be auto, none, required or a named function, not {other:?}"
                )))
            }
        },
        Some(ToolChoice::Named(named)) => Some(ConverseChoice::Tool(NamedTool {
            name: named.function.name.clone(),
        })),
    };
    Ok(Some(ToolConfig {
        tools: entries,
        tool_choice,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn converse(body: Value) -> Value {
        serde_json::to_value(request_from_pivot(&request(body)).unwrap()).unwrap()
    }

    fn error(body: Value) -> TranslateError {
        request_from_pivot(&request(body)).unwrap_err()
    }

    #[test]
    fn system_and_developer_go_to_system() {
        let body = converse(json!({
            "model": "claude",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "use metric units"}]},
                {"role": "user", "content": "hi"}
            ],
            "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": "END"
        }));
        assert_eq!(
            body,
            json!({
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "system": [{"text": "be brief"}, {"text": "use metric units"}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.2, "topP": 0.9,
                    "stopSequences": ["END"]}
            })
        );
    }

    #[test]
    fn consecutive_turns_merge_and_first_turn_is_user() {
        let body = converse(json!({
            "model": "m",
            "messages": [
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "four"}
            ]
        }));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": OPENING_PLACEHOLDER}]},
                {"role": "assistant", "content": [{"text": "Hello! How can I help?"}]},
                {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
                {"role": "assistant", "content": [{"text": "three"}, {"text": "four"}]}
            ])
        );
        assert!(body.get("inferenceConfig").is_none());
    }

    #[test]
    fn no_conversation_is_invalid() {
        let err = error(json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}));
        assert!(matches!(err, TranslateError::InvalidRequest(_)));
    }

    #[test]
    fn image_data_url_becomes_bytes() {
        let body = converse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGR"}}
            ]}]
        }));
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"text": "what is this"},
                {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
                {"image": {"format": "webp", "source": {"bytes": "UklGR"}}}
            ])
        );
    }

    #[test]
    fn image_url_and_odd_types_are_refused() {
        let image = |url: &str| {
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]})
        };
        assert_eq!(
            error(image("https://example.com/cat.png")),
            TranslateError::Unsupported(
                "image URLs are not supported by Bedrock; send the image as a base64 data URL"
                    .into()
            )
        );
        assert!(matches!(
            error(image("data:image/tiff;base64,AAAA")),
            TranslateError::Unsupported(m) if m.contains("image/tiff")
        ));
        assert!(matches!(
            error(image("ftp://x")),
            TranslateError::InvalidRequest(_)
        ));
    }

    #[test]
    fn single_tool_call_with_tools_and_choice() {
        let body = converse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "noop"}}],
            "tool_choice": "required"
        }));
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1",
                "name": "get_weather", "input": {"city": "Paris"}}}]})
        );
        assert_eq!(
            body["toolConfig"],
            json!({
                "tools": [
                    {"toolSpec": {"name": "get_weather", "description": "Weather now", "inputSchema": {"json":
                        {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                    {"toolSpec": {"name": "noop", "inputSchema": {"json": {"type": "object", "properties": {}}}}}
                ],
                "toolChoice": {"any": {}}
            })
        );
    }

    #[test]
    fn tool_choice_modes() {
        let choice = |choice: Value| {
            converse(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}),
            )["toolConfig"]
                .clone()
        };
        assert_eq!(choice(json!("auto"))["toolChoice"], json!({"auto": {}}));
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "f"}}))["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        let none = choice(json!("none"));
        assert!(none.get("toolChoice").is_none());
        assert_eq!(none["tools"][0]["toolSpec"]["name"], "f");
        let bad = error(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
        );
        assert!(matches!(bad, TranslateError::InvalidRequest(_)));
    }

    #[test]
    fn parallel_tool_calls_and_results_round_trip() {
        let body = converse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather in Paris and Oslo"},
                {"role": "assistant", "content": "Checking both.", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "t2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "t1", "content": "{\"temp\": 21}"},
                {"role": "tool", "tool_call_id": "t2", "content": "[1, 2]"},
                {"role": "user", "content": "and tomorrow?"}
            ]
        }));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "weather in Paris and Oslo"}]},
                {"role": "assistant", "content": [
                    {"text": "Checking both."},
                    {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 21}}]}},
                    {"toolResult": {"toolUseId": "t2", "content": [{"text": "[1, 2]"}]}},
                    {"text": "and tomorrow?"}
                ]}
            ])
        );
    }

    #[test]
    fn invalid_tool_arguments_and_missing_tool_call_id() {
        let err = error(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "f", "arguments": "{oops"}}]}]}));
        assert!(matches!(err, TranslateError::InvalidRequest(m) if m.contains("t1")));
        let err = error(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"}, {"role": "tool", "content": "42"}]}));
        assert!(matches!(err, TranslateError::InvalidRequest(_)));
    }

    #[test]
    fn n_above_one_is_unsupported() {
        let err =
            error(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}));
        assert!(matches!(err, TranslateError::Unsupported(_)));
        let ok =
            converse(json!({"model": "m", "n": 1, "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(ok["messages"][0]["role"], "user");
    }

    #[test]
    fn response_format_becomes_system_instruction() {
        let body = converse(json!({
            "model": "m",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer",
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
        }));
        let system = body["system"].as_array().unwrap();
        assert_eq!(system.len(), 2);
        let text = system[1]["text"].as_str().unwrap();
        assert!(text.contains("JSON"));
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert!(text.ends_with(&format!("\n{schema}")));
        let plain = converse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "text"}}),
        );
        assert!(plain.get("system").is_none());
    }

    #[test]
    fn reasoning_effort_sets_thinking_budget() {
        let body = converse(json!({"model": "m", "reasoning_effort": "medium",
            "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(
            body["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 4096}})
        );
        assert_eq!(body["inferenceConfig"]["maxTokens"], 4096 + 4096);
        let capped = converse(json!({"model": "m", "reasoning_effort": "high",
            "max_completion_tokens": 20000, "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(capped["inferenceConfig"]["maxTokens"], 20000);
        assert_eq!(
            capped["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            16384
        );
        let too_small = error(
            json!({"model": "m", "reasoning_effort": "low", "max_tokens": 500,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert!(matches!(too_small, TranslateError::InvalidRequest(_)));
        let bad = error(json!({"model": "m", "reasoning_effort": "extreme",
            "messages": [{"role": "user", "content": "x"}]}));
        assert!(matches!(bad, TranslateError::InvalidRequest(_)));
    }
}
