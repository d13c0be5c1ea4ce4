//! Whole (non-streamed) bodies between any client dialect and any upstream
//! format, through the pivot: the client's request into the pivot, and an
//! upstream's response out of its format into the client's.

use bytes::Bytes;

use super::{anthropic, converse, gemini, TranslateError};
use crate::api::openai::{ChatRequest, ChatResponse};
use crate::api::{anthropic as wire, Dialect};
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::stream::usage::TokenUsage;

/// A client's request body, in its dialect, as a pivot request.
pub fn client_request_to_pivot(
    dialect: Dialect,
    body: &[u8],
) -> Result<ChatRequest, TranslateError> {
    match dialect {
        Dialect::OpenAi => {
            serde_json::from_slice(body).map_err(|e| invalid("chat completion request", e))
        }
        Dialect::Anthropic => {
            let request: wire::MessagesRequest =
                serde_json::from_slice(body).map_err(|e| invalid("messages request", e))?;
            anthropic::request_to_pivot(request)
        }
    }
}

fn invalid(what: &str, e: serde_json::Error) -> TranslateError {
    TranslateError::InvalidRequest(format!("not a valid {what}: {e}"))
}

/// An upstream's whole response body, in its format, as a pivot response.
pub fn upstream_response_to_pivot(
    format: UpstreamFormat,
    body: &[u8],
    client_model: &str,
) -> Result<ChatResponse, TranslateError> {
    let bad = |e: serde_json::Error| TranslateError::BadUpstream(e.to_string());
    match format {
        UpstreamFormat::OpenAiChat => {
            let mut response: ChatResponse = serde_json::from_slice(body).map_err(bad)?;
            response.model = client_model.to_string();
            Ok(response)
        }
        UpstreamFormat::AnthropicMessages | UpstreamFormat::BedrockAnthropic => {
            let response: wire::MessagesResponse = serde_json::from_slice(body).map_err(bad)?;
            Ok(anthropic::response_to_pivot(response, client_model))
        }
        UpstreamFormat::Gemini => {
            let response: gemini::wire::GenerateContentResponse =
                serde_json::from_slice(body).map_err(bad)?;
            gemini::response_to_pivot(response, client_model)
        }
        UpstreamFormat::Converse => {
            let response: converse::ConverseResponse = serde_json::from_slice(body).map_err(bad)?;
            Ok(converse::response_to_pivot(response, client_model))
        }
    }
}

/// A pivot response as the client's body, and the usage it reports.
pub fn pivot_to_client_response(
    dialect: Dialect,
    response: ChatResponse,
    client_model: &str,
) -> Result<(Bytes, Option<TokenUsage>), TranslateError> {
    let usage = response.usage.as_ref().map(super::openai::token_usage);
    let bytes = match dialect {
        Dialect::OpenAi => serde_json::to_vec(&response),
        Dialect::Anthropic => {
            serde_json::to_vec(&anthropic::response_from_pivot(response, client_model))
        }
    }
    .map_err(|e| TranslateError::BadUpstream(e.to_string()))?;
    Ok((Bytes::from(bytes), usage))
}

/// The human-readable message of any provider's error body: OpenAI's and
/// Anthropic's `error.message`, Gemini's `error.message` (with `status`),
/// Bedrock's `message` / `Message`; else the body's text, shortened.
pub fn upstream_error_message(body: &[u8]) -> String {
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return shorten(&String::from_utf8_lossy(body)),
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let message = value
        .get("error")
        .and_then(|e| e.get("message").and_then(text).or_else(|| text(e)))
        .or_else(|| value.get("message").and_then(text))
        .or_else(|| value.get("Message").and_then(text));
    match message {
        Some(message) => shorten(&message),
        None => shorten(&value.to_string()),
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 1000;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_of_every_provider() {
        assert_eq!(
            upstream_error_message(br#"{"error":{"message":"bad model","type":"x"}}"#),
            "bad model"
        );
        assert_eq!(
            upstream_error_message(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(
            upstream_error_message(br#"{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}"#),
            "API key not valid"
        );
        assert_eq!(
            upstream_error_message(br#"{"message":"The security token is invalid"}"#),
            "The security token is invalid"
        );
        assert_eq!(
            upstream_error_message(b"<html>502</html>"),
            "<html>502</html>"
        );
    }
}
