//! OpenAI content parts → Gemini parts: text, images, audio and inline files.
//!
//! A data URL becomes `inlineData`. An http(s) (or `gs://`) image URL becomes
//! `fileData` with a MIME type guessed from the path's extension: png, gif,
//! webp, jpg/jpeg; anything else is sent as `image/jpeg` (Gemini needs a type
//! and JPEG is the likeliest). Files uploaded to OpenAI (`file_id`) cannot be
//! carried over.

use serde::Deserialize;
use serde_json::Value;

use super::wire::{Blob, FileData, Part};
use crate::api::openai::{parse_data_url, ContentPart};
use crate::translate::TranslateError;

pub(super) fn text_part(text: &str) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

pub(super) fn content_part(part: &ContentPart) -> Result<Option<Part>, TranslateError> {
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
    let extension = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
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
    let audio = InputAudio::deserialize(value)
        .map_err(|e| TranslateError::InvalidRequest(format!("input_audio is not readable: {e}")))?;
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
