//! Pivot (OpenAI chat) request → Gemini `generateContent` request.
//!
//! Gemini differs from the pivot in ways that shape this file: the system
//! prompt is a separate field; turns are `user`/`model` and must alternate,
//! so consecutive turns of one role are merged (tool results are user turns);
//! tool results are matched to calls by function *name*, which is looked up
//! from the earlier call with the same `tool_call_id`; and Gemini 3 wants the
//! thought signature of each call back, which travels inside the tool-call id
//! (see [`super::SIGNATURE_SEPARATOR`]). Call and result ids are not sent:
//! Vertex rejects them, and Gemini pairs calls and results by name and order.
//! Media parts are converted in `media.rs`, options in `generation.rs`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::generation::generation_config;
use super::media::{content_part, text_part};
use super::schema::{is_empty_object, schema_for_gemini};
use super::wire::{
    Content, ContentRole, FunctionCall, FunctionCallingConfig, FunctionCallingMode,
    FunctionDeclaration, FunctionResponse, GeminiTool, GenerateContentRequest, Part, ToolConfig,
};
use super::SIGNATURE_SEPARATOR;
use crate::api::openai::{ChatMessage, ChatRequest, MessageContent, Role, Tool, ToolChoice};
use crate::translate::TranslateError;

/// Gemini's documented stand-in for a missing thought signature (history
/// written by another model or a client that dropped it).
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

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
        system_instruction: (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        }),
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
