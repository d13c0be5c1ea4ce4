//! Block-level conversions shared by the request and response directions:
//! image and document sources ⇄ OpenAI content parts, tool-result content,
//! tool-call arguments ⇄ tool-use input.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::anthropic::{
    Content, ContentBlock, DocumentBlock, ImageBlock, MediaSource, ToolResultBlock,
};
use crate::api::openai::{parse_data_url, ContentPart, ImageUrl, ToolCall};
use crate::translate::TranslateError;

/// An Anthropic image as an OpenAI `image_url` part.
pub(super) fn image_part(image: &ImageBlock) -> Result<ContentPart, TranslateError> {
    let url = match &image.source {
        MediaSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        MediaSource::Url { url } => url.clone(),
        other => return Err(unsupported_source("image", other)),
    };
    Ok(ContentPart::ImageUrl {
        image_url: ImageUrl { url, detail: None },
    })
}

/// An Anthropic document as an OpenAI part: base64 files become `file` parts
/// (a data URL, as OpenAI takes PDFs), text documents become text.
pub(super) fn document_part(document: &DocumentBlock) -> Result<ContentPart, TranslateError> {
    match &document.source {
        MediaSource::Base64 { media_type, data } => Ok(ContentPart::File {
            file: json!({
                "filename": document.title.clone().unwrap_or_else(|| "document.pdf".into()),
                "file_data": format!("data:{media_type};base64,{data}"),
            }),
        }),
        MediaSource::Text { data, .. } => Ok(ContentPart::Text {
            text: titled(document.title.as_deref(), data),
        }),
        MediaSource::Content { content } => Ok(ContentPart::Text {
            text: titled(document.title.as_deref(), &content_text(content)),
        }),
        other => Err(unsupported_source("document", other)),
    }
}

fn titled(title: Option<&str>, text: &str) -> String {
    match title {
        Some(title) => format!("{title}\n\n{text}"),
        None => text.to_owned(),
    }
}

fn unsupported_source(what: &str, source: &MediaSource) -> TranslateError {
    let kind = match source {
        MediaSource::Base64 { .. } => "base64",
        MediaSource::Url { .. } => "url",
        MediaSource::Text { .. } => "text",
        MediaSource::Content { .. } => "content",
        MediaSource::File { .. } => "file",
    };
    TranslateError::Unsupported(format!(
        "{what} blocks with a `{kind}` source cannot be sent to this model"
    ))
}

/// The text of a content value, text blocks joined.
pub(super) fn content_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect(),
    }
}

/// A tool result for an OpenAI `tool` message: its text, and its images as
/// parts (a tool message cannot hold images, so the caller moves them into
/// the user message that follows). Why errors get a prefix: OpenAI has no
/// `is_error`, and the model should still learn the call failed.
pub(super) fn tool_result_content(
    result: &ToolResultBlock,
) -> Result<(String, Vec<ContentPart>), TranslateError> {
    let mut images = Vec::new();
    let mut text = match &result.content {
        None => String::new(),
        Some(Content::Text(text)) => text.clone(),
        Some(Content::Blocks(blocks)) => {
            let mut text = String::new();
            for block in blocks {
                match block {
                    ContentBlock::Text(block) => text.push_str(&block.text),
                    ContentBlock::Image(image) => images.push(image_part(image)?),
                    ContentBlock::Document(document) => images.push(document_part(document)?),
                    other => {
                        return Err(TranslateError::Unsupported(format!(
                            "`{}` blocks inside a tool_result cannot be sent to this model",
                            other.kind()
                        )))
                    }
                }
            }
            text
        }
    };
    if result.is_error == Some(true) {
        text.insert_str(0, "Error: ");
    }
    Ok((text, images))
}

/// An image URL as an Anthropic source: data URLs become base64, http(s) URLs stay URLs.
pub(super) fn source_for_url(url: &str) -> Result<MediaSource, TranslateError> {
    if let Some((media_type, data)) = parse_data_url(url) {
        return Ok(MediaSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(MediaSource::Url {
            url: url.to_owned(),
        });
    }
    Err(TranslateError::InvalidRequest(
        "image URLs must be http(s) URLs or base64 data URLs".into(),
    ))
}

/// The parts of OpenAI's `file` content part the gateway reads.
#[derive(Deserialize)]
struct FilePart {
    file_data: Option<String>,
    filename: Option<String>,
}

/// An OpenAI content part as an Anthropic block.
pub(super) fn block_for_part(part: &ContentPart) -> Result<Option<ContentBlock>, TranslateError> {
    match part {
        ContentPart::Text { text } if text.is_empty() => Ok(None),
        ContentPart::Text { text } => Ok(Some(ContentBlock::text(text.clone()))),
        ContentPart::ImageUrl { image_url } => Ok(Some(ContentBlock::Image(ImageBlock {
            source: source_for_url(&image_url.url)?,
            cache_control: None,
        }))),
        ContentPart::File { file } => {
            let file = FilePart::deserialize(file)
                .map_err(|e| TranslateError::InvalidRequest(format!("bad file part: {e}")))?;
            let Some((media_type, data)) = file.file_data.as_deref().and_then(parse_data_url)
            else {
                return Err(TranslateError::Unsupported(
                    "file parts must carry `file_data` (file ids cannot be sent to Anthropic models)"
                        .into(),
                ));
            };
            Ok(Some(ContentBlock::Document(DocumentBlock {
                source: MediaSource::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                },
                title: file.filename,
                context: None,
                citations: None,
                cache_control: None,
            })))
        }
        ContentPart::InputAudio { .. } => Err(TranslateError::Unsupported(
            "audio input is not supported by Anthropic models".into(),
        )),
    }
}

/// A tool call's arguments as a tool_use `input` object. Empty arguments
/// (a call without parameters) are `{}`; anything else must be a JSON object.
pub(super) fn tool_input(call: &ToolCall) -> Result<Value, TranslateError> {
    let arguments = call.function.arguments.trim();
    if arguments.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        _ => Err(TranslateError::InvalidRequest(format!(
            "the arguments of tool call `{}` ({}) are not a JSON object",
            call.id, call.function.name
        ))),
    }
}

/// Tool-use input read back from OpenAI argument text; text that is not
/// JSON is kept under `_raw` rather than lost.
pub(super) fn input_from_arguments(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({ "_raw": arguments }))
}
