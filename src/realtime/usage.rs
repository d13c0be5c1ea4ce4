//! Token usage of a realtime session, read from the upstream's
//! `response.done` events (one per model response), beta and GA shapes
//! alike:
//!
//! ```json
//! {"type":"response.done","response":{"id":"resp_1","status":"completed",
//!  "usage":{"total_tokens":120,"input_tokens":80,"output_tokens":40,
//!   "input_token_details":{"cached_tokens":0,"text_tokens":30,"audio_tokens":50},
//!   "output_token_details":{"text_tokens":10,"audio_tokens":30}}}}
//! ```
//!
//! Every other event is recognised without being parsed.

use serde::Deserialize;

use crate::stream::usage::TokenUsage;

/// The usage one `response.done` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseUsage {
    pub response_id: Option<String>,
    pub status: Option<String>,
    /// Totals, in the gateway's usual shape (`prompt` includes cached).
    pub tokens: TokenUsage,
    pub input_text: u64,
    pub input_audio: u64,
    pub input_image: u64,
    pub output_text: u64,
    pub output_audio: u64,
}

#[derive(Deserialize)]
struct ServerEvent {
    #[serde(rename = "type")]
    kind: String,
    response: Option<DoneResponse>,
}

#[derive(Deserialize)]
struct DoneResponse {
    id: Option<String>,
    status: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_token_details: Option<InputDetails>,
    output_token_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
    text_tokens: Option<u64>,
    audio_tokens: Option<u64>,
    image_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    text_tokens: Option<u64>,
    audio_tokens: Option<u64>,
}

/// The usage in `text` if it is a `response.done` event. Why the substring
/// test first: most events are audio deltas, and parsing each would cost.
pub fn response_done(text: &str) -> Option<ResponseUsage> {
    if !text.contains("\"response.done\"") {
        return None;
    }
    let event: ServerEvent = serde_json::from_str(text).ok()?;
    if event.kind != "response.done" {
        return None;
    }
    let response = event.response?;
    let usage = response.usage;
    let input = usage.as_ref().and_then(|u| u.input_token_details.as_ref());
    let output = usage.as_ref().and_then(|u| u.output_token_details.as_ref());
    Some(ResponseUsage {
        response_id: response.id,
        status: response.status,
        tokens: TokenUsage {
            prompt_tokens: usage.as_ref().and_then(|u| u.input_tokens).unwrap_or(0),
            completion_tokens: usage.as_ref().and_then(|u| u.output_tokens).unwrap_or(0),
            cached_tokens: input.and_then(|d| d.cached_tokens).unwrap_or(0),
        },
        input_text: input.and_then(|d| d.text_tokens).unwrap_or(0),
        input_audio: input.and_then(|d| d.audio_tokens).unwrap_or(0),
        input_image: input.and_then(|d| d.image_tokens).unwrap_or(0),
        output_text: output.and_then(|d| d.text_tokens).unwrap_or(0),
        output_audio: output.and_then(|d| d.audio_tokens).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_detail() {
        let event = r#"{"type":"response.done","event_id":"ev_1","response":{"object":"realtime.response","id":"resp_1","status":"completed","output":[],
            "usage":{"total_tokens":120,"input_tokens":80,"output_tokens":40,
            "input_token_details":{"cached_tokens":16,"text_tokens":30,"audio_tokens":50,"image_tokens":0,
              "cached_tokens_details":{"text_tokens":16,"audio_tokens":0}},
            "output_token_details":{"text_tokens":10,"audio_tokens":30}}}}"#;
        let usage = response_done(event).unwrap();
        assert_eq!(usage.response_id.as_deref(), Some("resp_1"));
        assert_eq!(usage.status.as_deref(), Some("completed"));
        assert_eq!(
            usage.tokens,
            TokenUsage {
                prompt_tokens: 80,
                completion_tokens: 40,
                cached_tokens: 16
            }
        );
        assert_eq!(
            (usage.input_text, usage.input_audio, usage.input_image),
            (30, 50, 0)
        );
        assert_eq!((usage.output_text, usage.output_audio), (10, 30));
    }

    #[test]
    fn other_events_and_missing_usage() {
        assert_eq!(
            response_done(r#"{"type":"response.audio.delta","delta":"AAAA"}"#),
            None
        );
        // Mentions the name but is not the event.
        assert_eq!(
            response_done(r#"{"type":"response.text.delta","delta":"\"response.done\""}"#),
            None
        );
        let failed = response_done(
            r#"{"type":"response.done","response":{"id":"r","status":"failed","usage":null}}"#,
        )
        .unwrap();
        assert_eq!(failed.tokens, TokenUsage::default());
        assert_eq!(failed.status.as_deref(), Some("failed"));
        assert_eq!(response_done(r#"{"type":"response.done""#), None);
    }
}
