//! An Anthropic client's request → the pivot, for OpenAI-format upstreams.

use crate::api::anthropic::{
    self as anth, Content, ContentBlock, MessagesRequest, ThinkingBlock, ThinkingConfig, ToolDef,
    ToolUseBlock,
};
use crate::api::openai::{
    ChatMessage, ChatRequest, ContentPart, FunctionCall, FunctionDef, MessageContent,
    NamedFunction, NamedToolChoice, Role, Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};
use crate::translate::anthropic::blocks::{document_part, image_part, tool_result_content};
use crate::translate::anthropic::effort_for_budget;
use crate::translate::TranslateError;

/// An Anthropic client's request as a pivot request.
pub fn request_to_pivot(req: MessagesRequest) -> Result<ChatRequest, TranslateError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        let text = system.text();
        if !text.is_empty() {
            messages.push(ChatMessage::text(Role::System, text));
        }
    }
    for message in req.messages {
        match message.role {
            anth::Role::User => push_user_turn(&mut messages, message.content)?,
            anth::Role::Assistant => messages.push(assistant_message(message.content)?),
        }
    }
    let tools = req
        .tools
        .map(|tools| tools.into_iter().map(function_for_tool).collect())
        .transpose()?;
    let (tool_choice, parallel_tool_calls) = match req.tool_choice {
        Some(choice) => openai_tool_choice(choice),
        None => (None, None),
    };
    let streaming = req.stream == Some(true);
    Ok(ChatRequest {
        model: req.model,
        messages,
        max_tokens: Some(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stream: req.stream,
        // The Anthropic encoder reports usage in `message_delta`.
        stream_options: streaming.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        stop: req
            .stop_sequences
            .filter(|stops| !stops.is_empty())
            .map(Stop::Many),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: req.metadata.and_then(|metadata| metadata.user_id),
        reasoning_effort: match req.thinking {
            Some(ThinkingConfig::Enabled { budget_tokens }) => {
                Some(effort_for_budget(budget_tokens).to_owned())
            }
            _ => None,
        },
        ..ChatRequest::default()
    })
}

/// One user turn: its tool results as `tool` messages, then the rest (images
/// returned by tools first) as one user message.
fn push_user_turn(out: &mut Vec<ChatMessage>, content: Content) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(text) => {
            out.push(ChatMessage::text(Role::User, text));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut tool_parts = Vec::new();
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::ToolResult(result) => {
                let (text, images) = tool_result_content(&result)?;
                tool_parts.extend(images);
                out.push(ChatMessage {
                    tool_call_id: Some(result.tool_use_id),
                    ..ChatMessage::text(Role::Tool, text)
                });
            }
            ContentBlock::Text(text) => parts.push(ContentPart::Text { text: text.text }),
            ContentBlock::Image(image) => parts.push(image_part(&image)?),
            ContentBlock::Document(document) => parts.push(document_part(&document)?),
            other => return Err(misplaced(&other, "user")),
        }
    }
    tool_parts.extend(parts);
    if let Some(content) = parts_content(tool_parts) {
        out.push(ChatMessage {
            content: Some(content),
            ..ChatMessage::text(Role::User, "")
        });
    }
    Ok(())
}

/// A lone text part as a plain string (which every OpenAI-compatible server
/// accepts); several parts as parts; nothing as `None`.
fn parts_content(mut parts: Vec<ContentPart>) -> Option<MessageContent> {
    match parts.len() {
        0 => None,
        1 => match parts.pop() {
            Some(ContentPart::Text { text }) => Some(MessageContent::Text(text)),
            Some(part) => Some(MessageContent::Parts(vec![part])),
            None => None,
        },
        _ => Some(MessageContent::Parts(parts)),
    }
}

fn assistant_message(content: Content) -> Result<ChatMessage, TranslateError> {
    let blocks = match content {
        Content::Text(text) => return Ok(ChatMessage::text(Role::Assistant, text)),
        Content::Blocks(blocks) => blocks,
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(block) => text.push_str(&block.text),
            ContentBlock::Thinking(ThinkingBlock { thinking, .. }) => reasoning.push_str(&thinking),
            // Encrypted reasoning only Anthropic can read.
            ContentBlock::RedactedThinking(_) => {}
            ContentBlock::ToolUse(ToolUseBlock {
                id, name, input, ..
            }) => calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            other => return Err(misplaced(&other, "assistant")),
        }
    }
    Ok(ChatMessage {
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..ChatMessage::text(Role::Assistant, "")
    })
}

fn misplaced(block: &ContentBlock, role: &str) -> TranslateError {
    TranslateError::Unsupported(format!(
        "`{}` blocks in {role} messages cannot be sent to this model",
        block.kind()
    ))
}

fn function_for_tool(tool: ToolDef) -> Result<Tool, TranslateError> {
    let custom = tool.kind.as_deref().is_none_or(|kind| kind == "custom");
    let (true, Some(schema)) = (custom, tool.input_schema) else {
        return Err(TranslateError::Unsupported(format!(
            "the server tool `{}` ({}) is only available on Anthropic models",
            tool.name,
            tool.kind.as_deref().unwrap_or("no input_schema")
        )));
    };
    Ok(Tool {
        kind: "function".into(),
        function: FunctionDef {
            name: tool.name,
            description: tool.description,
            parameters: Some(schema),
            strict: None,
        },
    })
}

fn openai_tool_choice(choice: anth::ToolChoice) -> (Option<ToolChoice>, Option<bool>) {
    let mode = |mode: &str| Some(ToolChoice::Mode(mode.into()));
    let (choice, disable_parallel) = match choice {
        anth::ToolChoice::Auto {
            disable_parallel_tool_use,
        } => (mode("auto"), disable_parallel_tool_use),
        anth::ToolChoice::Any {
            disable_parallel_tool_use,
        } => (mode("required"), disable_parallel_tool_use),
        anth::ToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            Some(ToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: NamedFunction { name },
            })),
            disable_parallel_tool_use,
        ),
        anth::ToolChoice::None => (mode("none"), None),
    };
    (choice, (disable_parallel == Some(true)).then_some(false))
}
