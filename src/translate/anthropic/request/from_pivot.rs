//! The pivot → an Anthropic upstream's Messages request.

use serde_json::json;

use crate::api::anthropic::{
    self as anth, Content, ContentBlock, Message, MessagesRequest, Metadata, SystemPrompt,
    ThinkingConfig, ToolDef, ToolResultBlock, ToolUseBlock,
};
use crate::api::openai::{
    ChatMessage, ChatRequest, MessageContent, ResponseFormat, Role, Stop, Tool, ToolChoice,
};
use crate::translate::anthropic::blocks::{block_for_part, tool_input};
use crate::translate::anthropic::budget_for_effort;
use crate::translate::TranslateError;

/// A pivot request as an Anthropic Messages request. `default_max_tokens`
/// fills Anthropic's required `max_tokens` when the client set no cap.
pub fn request_from_pivot(
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<MessagesRequest, TranslateError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::Unsupported(
            "n > 1 is not supported by Anthropic models".into(),
        ));
    }
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::with_capacity(req.messages.len());
    for message in &req.messages {
        match message.role {
            Role::System | Role::Developer => system.push(message.text_content()),
            Role::User => push_turn(
                &mut turns,
                anth::Role::User,
                content_blocks(&message.content)?,
            ),
            Role::Assistant => push_turn(
                &mut turns,
                anth::Role::Assistant,
                assistant_blocks(message)?,
            ),
            Role::Tool => push_turn(&mut turns, anth::Role::User, vec![tool_result(message)?]),
            Role::Function => {
                return Err(TranslateError::Unsupported(
                    "the legacy `function` role is not supported by Anthropic models; use tools"
                        .into(),
                ))
            }
        }
    }
    finish_turns(&mut turns)?;
    system.extend(json_instruction(req.response_format.as_ref()));
    system.retain(|text| !text.is_empty());

    let effort = req.reasoning_effort.as_deref().filter(|e| *e != "none");
    let budget = effort
        .map(|effort| {
            budget_for_effort(effort).ok_or_else(|| {
                TranslateError::InvalidRequest(format!("unknown reasoning_effort `{effort}`"))
            })
        })
        .transpose()?;
    let mut max_tokens = req.output_cap().unwrap_or(default_max_tokens);
    if let Some(budget) = budget.filter(|budget| max_tokens <= *budget) {
        // The budget is part of max_tokens: leave the answer its own room.
        max_tokens = max_tokens.saturating_add(budget);
    }
    let thinking_on = budget.is_some();

    Ok(MessagesRequest {
        model: req.model.clone(),
        messages: turns,
        system: (!system.is_empty()).then(|| SystemPrompt::Text(system.join("\n\n"))),
        max_tokens,
        stop_sequences: req.stop.clone().map(Stop::into_vec),
        temperature: req.temperature.filter(|_| !thinking_on).map(|t| t.min(1.0)),
        top_p: req.top_p.filter(|_| !thinking_on),
        top_k: None,
        stream: req.stream,
        tools: req
            .tools
            .as_ref()
            .map(|tools| tools.iter().map(tool_for_function).collect())
            .transpose()?,
        tool_choice: anthropic_tool_choice(req)?,
        metadata: req.user.clone().map(|user_id| Metadata {
            user_id: Some(user_id),
        }),
        thinking: budget.map(|budget_tokens| ThinkingConfig::Enabled { budget_tokens }),
        extra: Default::default(),
    })
}

/// Appends blocks to the last turn when it has the same role (Anthropic
/// requires alternation), else starts a new turn. Empty messages vanish.
fn push_turn(turns: &mut Vec<Message>, role: anth::Role, blocks: Vec<ContentBlock>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(Message {
        role: last_role,
        content: Content::Blocks(last),
    }) = turns.last_mut()
    {
        if *last_role == role {
            last.extend(blocks);
            return;
        }
    }
    turns.push(Message {
        role,
        content: Content::Blocks(blocks),
    });
}

/// Fixes the history up to Anthropic's rules: a user turn first, tool results
/// first within a user turn, no trailing whitespace in a final assistant
/// (prefill) turn.
fn finish_turns(turns: &mut Vec<Message>) -> Result<(), TranslateError> {
    match turns.first() {
        None => {
            return Err(TranslateError::InvalidRequest(
                "messages must contain at least one user or assistant message".into(),
            ))
        }
        Some(first) if first.role == anth::Role::Assistant => turns.insert(
            0,
            Message {
                role: anth::Role::User,
                content: Content::Blocks(vec![ContentBlock::text(".")]),
            },
        ),
        Some(_) => {}
    }
    for turn in turns.iter_mut() {
        if let (anth::Role::User, Content::Blocks(blocks)) = (turn.role, &mut turn.content) {
            // Stable: keeps the order within results and within the rest.
            blocks.sort_by_key(|block| !matches!(block, ContentBlock::ToolResult(_)));
        }
    }
    if let Some(Message {
        role: anth::Role::Assistant,
        content: Content::Blocks(blocks),
    }) = turns.last_mut()
    {
        if let Some(ContentBlock::Text(text)) = blocks.last_mut() {
            text.text.truncate(text.text.trim_end().len());
            if text.text.is_empty() {
                blocks.pop();
            }
        }
        if blocks.is_empty() {
            turns.pop();
        }
    }
    Ok(())
}

fn content_blocks(content: &Option<MessageContent>) -> Result<Vec<ContentBlock>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![ContentBlock::text(text.clone())]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|part| block_for_part(part).transpose())
            .collect(),
    }
}

fn assistant_blocks(message: &ChatMessage) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut blocks = content_blocks(&message.content)?;
    if let Some(refusal) = message.refusal.as_ref().filter(|r| !r.is_empty()) {
        blocks.push(ContentBlock::text(refusal.clone()));
    }
    for call in message.tool_calls.iter().flatten() {
        blocks.push(ContentBlock::ToolUse(ToolUseBlock {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input: tool_input(call)?,
            cache_control: None,
        }));
    }
    Ok(blocks)
}

fn tool_result(message: &ChatMessage) -> Result<ContentBlock, TranslateError> {
    let Some(tool_use_id) = message.tool_call_id.clone() else {
        return Err(TranslateError::InvalidRequest(
            "a `tool` message has no tool_call_id".into(),
        ));
    };
    let content = match &message.content {
        Some(MessageContent::Text(text)) if text.is_empty() => None,
        Some(MessageContent::Text(text)) => Some(Content::Text(text.clone())),
        Some(MessageContent::Parts(_)) => Some(Content::Blocks(content_blocks(&message.content)?)),
        None => None,
    };
    Ok(ContentBlock::ToolResult(ToolResultBlock {
        tool_use_id,
        content,
        is_error: None,
        cache_control: None,
    }))
}

/// The system instruction standing in for `response_format`.
fn json_instruction(format: Option<&ResponseFormat>) -> Option<String> {
    const ONLY_JSON: &str = "with no other text, no explanation and no Markdown code fence";
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(format!(
            "Respond only with a single valid JSON object, {ONLY_JSON}."
        )),
        ResponseFormat::JsonSchema { json_schema } => {
            let schema = json_schema.schema.clone().unwrap_or_else(|| json!({}));
            Some(format!(
                "Respond only with a single valid JSON value, {ONLY_JSON}. It must conform to \
                 the JSON Schema named `{}`:\n{schema}",
                json_schema.name
            ))
        }
    }
}

fn tool_for_function(tool: &Tool) -> Result<ToolDef, TranslateError> {
    if tool.kind != "function" {
        return Err(TranslateError::Unsupported(format!(
            "`{}` tools are not supported by Anthropic models",
            tool.kind
        )));
    }
    let schema = tool
        .function
        .parameters
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    Ok(ToolDef {
        kind: None,
        name: tool.function.name.clone(),
        description: tool.function.description.clone(),
        input_schema: Some(schema),
        cache_control: None,
        extra: Default::default(),
    })
}

fn anthropic_tool_choice(req: &ChatRequest) -> Result<Option<anth::ToolChoice>, TranslateError> {
    let disable = (req.parallel_tool_calls == Some(false)).then_some(true);
    let choice = match &req.tool_choice {
        None if disable.is_some() && req.tools.is_some() => anth::ToolChoice::Auto {
            disable_parallel_tool_use: disable,
        },
        None => return Ok(None),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => anth::ToolChoice::Auto {
                disable_parallel_tool_use: disable,
            },
            "required" => anth::ToolChoice::Any {
                disable_parallel_tool_use: disable,
            },
            "none" => anth::ToolChoice::None,
            other => {
                return Err(TranslateError::InvalidRequest(format!(
                    "unknown tool_choice `{other}`"
                )))
            }
        },
        Some(ToolChoice::Named(named)) => anth::ToolChoice::Tool {
            name: named.function.name.clone(),
            disable_parallel_tool_use: disable,
        },
    };
    Ok(Some(choice))
}
