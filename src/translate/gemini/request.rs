//! Pivot (OpenAI chat) request → Gemini `generateContent` request.
//!
//! Gemini differs from the pivot in ways that shape this file: the system
//! prompt is a separate field; turns are `user`/`model` and must alternate,
//! so consecutive turns of one role are merged (tool results are user turns);
//! tool results are matched to calls by function *name*, which is looked up
//! from the earlier call with the same `tool_call_id`; and Gemini 3 wants the
//! thought signature of each call back, which travels inside the tool-call id
//! (see [`super::SIGNATURE_SEPARATOR`]).
//!
//! Media: a data URL becomes `inlineData`; an http(s) URL becomes `fileData`
//! with a MIME type guessed from the path's extension (png, jpg/jpeg, gif,
//! webp; anything else is sent as `image/jpeg`). Call and result ids are not
//! sent: Vertex rejects them, and Gemini pairs by name and order.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::schema::{is_empty_object, schema_for_gemini};
use super::wire::{
    Blob, Content, ContentRole, FileData, FunctionCall, FunctionCallingConfig,
    FunctionCallingMode, FunctionDeclaration, FunctionResponse, GeminiTool, GenerateContentRequest,
    GenerationConfig, Part, ThinkingConfig, ToolConfig,
};
use super::SIGNATURE_SEPARATOR;
use crate::api::openai::{
    parse_data_url, ChatMessage, ChatRequest, ContentPart, MessageContent, ResponseFormat, Role,
    Tool, ToolChoice,
};
use crate::translate::TranslateError;

/// Gemini's documented stand-in for a missing thought signature (history
/// written by another model or a client that dropped it).
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// The most candidates Gemini generates for one request.
const MAX_CANDIDATES: u32 = 8;

pub fn request_from_pivot(req: &ChatRequest) -> Result<GenerateContentRequest, TranslateError> {
    let mut system = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    // tool_call_id → function name, filled as assistant turns go by.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for message in &req.messages {
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                let text = message.text_content();
                if !text.is_empty() {
                    system.push(Part::text(text));
                }
                continue;
            }
            Role::User => (ContentRole::User, user_parts(message)),
            Role::Assistant => (ContentRole::Model, model_parts(message, &mut call_names)),
            Role::Tool | Role::Function => (
                ContentRole::User,
                tool_result_part(message, &call_names).map(|part| vec![part]),
            ),
        };
        push_turn(&mut contents, role, parts?);
    }
    let declarations = function_declarations(req.tools.as_deref().unwrap_or_default())?;
    let tool_config = match &req.tool_choice {
        Some(choice) if !declarations.is_empty() => Some(tool_config(choice)?),
        _ => None,
    };
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![GeminiTool {
            function_declarations: declarations,
        }]
    };
    Ok(GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content { role: None, parts: system }),
        tools,
        tool_config,
        generation_config: generation_config(req)?,
        safety_settings: req
            .extra
            .get("safety_settings")
            .filter(|v| v.is_array())
            .cloned(),
    })
}

/// Appends a turn, merging it into the previous one when the role repeats.
fn push_turn(contents: &mut Vec<Content>, role: ContentRole, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == Some(role) => last.parts.extend(parts),
        _ => contents.push(Content {
            role: Some(role),
            parts,
        }),
    }
}

fn user_parts(message: &ChatMessage) -> Result<Vec<Part>, TranslateError> {
    match &message.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(text_part(text).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|part| content_part(part).transpose())
            .collect(),
    }
}

fn text_part(text: &str) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

fn content_part(part: &ContentPart) -> Result<Option<Part>, TranslateError> {
    let part = match part {
        ContentPart::Text { text } => return Ok(text_part(text)),
        ContentPart::ImageUrl { image_url } => image_part(&image_url.url)?,
        ContentPart::InputAudio { input_audio } => audio_part(input_audio)?,
        ContentPart::File { file } => file_part(file)?,
    };
    Ok(Some(part))
}

fn image_part(url: &str) -> Result<Part, TranslateError> {
    if let Some((mime_type, data)) = parse_data_url(url) {
        return Ok(inline_part(mime_type, data));
    }
    if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("gs://") {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: image_mime_from_url(url).into(),
                file_uri: url.into(),
            }),
            ..Part::default()
        });
    }
    Err(TranslateError::InvalidRequest(
        "image_url.url must be an http(s) URL or a base64 data URL".into(),
    ))
}

fn inline_part(mime_type: &str, data: &str) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: mime_type.into(),
            data: data.into(),
        }),
        ..Part::default()
    }
}

/// The image MIME type an URL's extension suggests; `image/jpeg` when unknown.
fn image_mime_from_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let extension = file.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

/// OpenAI's `input_audio`: `{"data": base64, "format": "wav" | "mp3"}`.
#[derive(Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

fn audio_part(value: &Value) -> Result<Part, TranslateError> {
    let audio = InputAudio::deserialize(value).map_err(|e| {
        TranslateError::InvalidRequest(format!("input_audio is not readable: {e}"))
    })?;
    Ok(inline_part(&format!("audio/{}", audio.format), &audio.data))
}

/// OpenAI's `file` part: only inline `file_data` (a data URL) can be carried.
#[derive(Deserialize)]
struct InputFile {
    file_data: Option<String>,
}

fn file_part(value: &Value) -> Result<Part, TranslateError> {
    let file = InputFile::deserialize(value)
        .map_err(|e| TranslateError::InvalidRequest(format!("file is not readable: {e}")))?;
    match file.file_data.as_deref().and_then(parse_data_url) {
        Some((mime_type, data)) => Ok(inline_part(mime_type, data)),
        None => Err(TranslateError::Unsupported(
            "Gemini takes files only as base64 data URLs in file.file_data".into(),
        )),
    }
}

fn model_parts<'a>(
    message: &'a ChatMessage,
    call_names: &mut HashMap<&'a str, &'a str>,
) -> Result<Vec<Part>, TranslateError> {
    let mut parts: Vec<Part> = text_part(&message.text_content()).into_iter().collect();
    for call in message.tool_calls.iter().flatten() {
        let name = call.function.name.as_str();
        let invalid = |why: &str| {
            TranslateError::InvalidRequest(format!(
                "tool call {} ({name}) has arguments that are not a JSON object{why}",
                call.id
            ))
        };
        let text = call.function.arguments.trim();
        let args = if text.is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(text).map_err(|e| invalid(&format!(": {e}")))?
        };
        if !args.is_object() {
            return Err(invalid(""));
        }
        call_names.insert(call.id.as_str(), name);
        let signature = call
            .id
            .split_once(SIGNATURE_SEPARATOR)
            .map(|(_, signature)| signature.to_string());
        parts.push(Part {
            function_call: Some(FunctionCall {
                id: None,
                name: name.into(),
                args,
            }),
            thought_signature: signature,
            ..Part::default()
        });
    }
    let signed = parts
        .iter()
        .any(|p| p.function_call.is_some() && p.thought_signature.is_some());
    if !signed {
        if let Some(first) = parts.iter_mut().find(|p| p.function_call.is_some()) {
            first.thought_signature = Some(SKIP_SIGNATURE.into());
        }
    }
    Ok(parts)
}

fn tool_result_part(
    message: &ChatMessage,
    call_names: &HashMap<&str, &str>,
) -> Result<Part, TranslateError> {
    let id = message.tool_call_id.as_deref();
    let name = id
        .and_then(|id| call_names.get(id).copied())
        .or(message.name.as_deref())
        .ok_or_else(|| {
            TranslateError::InvalidRequest(format!(
                "the tool result with tool_call_id {} answers no earlier tool call",
                id.unwrap_or("(none)")
            ))
        })?;
    let text = message.text_content();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse {
            id: None,
            name: name.into(),
            response,
        }),
        ..Part::default()
    })
}

fn function_declarations(tools: &[Tool]) -> Result<Vec<FunctionDeclaration>, TranslateError> {
    tools
        .iter()
        .map(|tool| {
            if tool.kind != "function" {
                return Err(TranslateError::Unsupported(format!(
                    "tools of type {} are not supported by Gemini",
                    tool.kind
                )));
            }
            let parameters = tool
                .function
                .parameters
                .as_ref()
                .map(schema_for_gemini)
                .filter(|schema| !is_empty_object(schema));
            Ok(FunctionDeclaration {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                parameters,
            })
        })
        .collect()
}

fn tool_config(choice: &ToolChoice) -> Result<ToolConfig, TranslateError> {
    let (mode, allowed) = match choice {
        ToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => (FunctionCallingMode::Auto, None),
            "none" => (FunctionCallingMode::None, None),
            "required" => (FunctionCallingMode::Any, None),
            other => {
                return Err(TranslateError::InvalidRequest(format!(
                    "tool_choice {other:?} is not one of auto, none, required"
                )))
            }
        },
        ToolChoice::Named(named) => (
            FunctionCallingMode::Any,
            Some(vec![named.function.name.clone()]),
        ),
    };
    Ok(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: allowed,
        },
    })
}

fn generation_config(req: &ChatRequest) -> Result<Option<GenerationConfig>, TranslateError> {
    let candidate_count = match req.n {
        Some(0) => return Err(TranslateError::InvalidRequest("n must be at least 1".into())),
        Some(n) if n > MAX_CANDIDATES => {
            return Err(TranslateError::Unsupported(format!(
                "n = {n}: Gemini generates at most {MAX_CANDIDATES} choices"
            )))
        }
        Some(n) if n > 1 => Some(n),
        _ => None,
    };
    let extra_f64 = |key: &str| req.extra.get(key).and_then(Value::as_f64);
    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req
            .extra
            .get("top_k")
            .and_then(Value::as_u64)
            .and_then(|k| u32::try_from(k).ok()),
        max_output_tokens: req.output_cap(),
        stop_sequences: req.stop.clone().map(|stop| stop.into_vec()),
        candidate_count,
        presence_penalty: extra_f64("presence_penalty"),
        frequency_penalty: extra_f64("frequency_penalty"),
        seed: req.extra.get("seed").and_then(Value::as_i64),
        thinking_config: req
            .reasoning_effort
            .as_deref()
            .map(thinking_config)
            .transpose()?,
        ..GenerationConfig::default()
    };
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            config.response_mime_type = Some("application/json".into());
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            config.response_mime_type = Some("application/json".into());
            config.response_schema = json_schema.schema.as_ref().map(schema_for_gemini);
        }
    }
    Ok((config != GenerationConfig::default()).then_some(config))
}

/// `reasoning_effort` → a thinking budget in tokens. `minimal` is treated as
/// `low` and `xhigh` as `high`; `none` turns thinking off where it can be.
fn thinking_config(effort: &str) -> Result<ThinkingConfig, TranslateError> {
    let budget = match effort {
        "none" => {
            return Ok(ThinkingConfig {
                thinking_budget: Some(0),
                include_thoughts: None,
            })
        }
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" => 24576,
        other => {
            return Err(TranslateError::InvalidRequest(format!(
                "reasoning_effort {other:?} is not one of low, medium, high"
            )))
        }
    };
    Ok(ThinkingConfig {
        thinking_budget: Some(budget),
        include_thoughts: Some(true),
    })
}
