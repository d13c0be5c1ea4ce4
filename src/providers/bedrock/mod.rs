//! AWS Bedrock transport: URL layout, SigV4 signing and the binary
//! event-stream framing its streaming answers use.
//!
//! Claude models are called through InvokeModel with an Anthropic Messages
//! body (`invoke`); every other model through the Converse API. Translation
//! of bodies and events lives elsewhere; this folder knows only the wire.
//!
//! Layout:
//! - `sigv4`: request signing (the `aws-sigv4` crate) and the check the
//!   tests' fake upstream makes.
//! - `event_stream`: `application/vnd.amazon.eventstream` decoding/encoding.
//! - `invoke`: InvokeModel bodies and `chunk` event payloads for Claude.

pub mod adapter;
pub mod event_stream;
pub mod invoke;
pub mod sigv4;

/// The name Bedrock's runtime endpoints sign under (not `bedrock-runtime`).
pub const SIGNING_SERVICE: &str = "bedrock";

/// The content type of a streaming answer.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// `{base}/model/{id}/invoke` or `/invoke-with-response-stream`.
pub fn invoke_url(base_url: &str, model_id: &str, stream: bool) -> String {
    let action = if stream {
        "invoke-with-response-stream"
    } else {
        "invoke"
    };
    model_url(base_url, model_id, action)
}

/// `{base}/model/{id}/converse` or `/converse-stream`.
pub fn converse_url(base_url: &str, model_id: &str, stream: bool) -> String {
    let action = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    model_url(base_url, model_id, action)
}

fn model_url(base_url: &str, model_id: &str, action: &str) -> String {
    let base = base_url.trim_end_matches('/');
    format!("{base}/model/{}/{action}", encode_path_segment(model_id))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the
/// ':' of versioned ids and the '/' of ARNs stay inside one path segment.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Is this a Claude model, to be called through InvokeModel with an
/// Anthropic body? Covers plain ids (`anthropic.claude-…`), cross-region
/// inference profiles (`us.anthropic.…`, `eu.`, `apac.`, `global.`) and ARNs
/// that name them. An application inference profile ARN does not show its
/// model and goes to Converse.
pub fn is_anthropic_model(model_id: &str) -> bool {
    model_id.to_ascii_lowercase().contains("anthropic.")
}

/// The region of a standard runtime endpoint
/// (`https://bedrock-runtime.{region}.amazonaws.com`), if it is one.
pub fn region_from_base_url(base_url: &str) -> Option<&str> {
    let host = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let host = host.split(['/', ':']).next()?;
    let rest = host
        .strip_prefix("bedrock-runtime-fips.")
        .or_else(|| host.strip_prefix("bedrock-runtime."))?;
    let (region, _) = rest.split_once('.')?;
    (!region.is_empty()).then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://bedrock-runtime.us-east-1.amazonaws.com";

    #[test]
    fn urls_encode_the_model_id() {
        assert_eq!(
            invoke_url(BASE, "anthropic.claude-3-5-sonnet-20240620-v1:0", false),
            format!("{BASE}/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke")
        );
        assert_eq!(
            invoke_url(&format!("{BASE}/"), "us.anthropic.claude-3-haiku-20240307-v1:0", true),
            format!(
                "{BASE}/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream"
            )
        );
        assert_eq!(
            converse_url(BASE, "meta.llama3-8b-instruct-v1:0", false),
            format!("{BASE}/model/meta.llama3-8b-instruct-v1%3A0/converse")
        );
        assert_eq!(
            converse_url(BASE, "arn:aws:bedrock:us-east-1:1:inference-profile/x", true),
            format!(
                "{BASE}/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
            )
        );
    }

    #[test]
    fn anthropic_models_are_recognised() {
        for id in [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "eu.anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
        ] {
            assert!(is_anthropic_model(id), "{id}");
        }
        for id in [
            "meta.llama3-8b-instruct-v1:0",
            "amazon.nova-pro-v1:0",
            "mistral.mistral-large",
        ] {
            assert!(!is_anthropic_model(id), "{id}");
        }
    }

    #[test]
    fn region_from_standard_endpoints() {
        assert_eq!(region_from_base_url(BASE), Some("us-east-1"));
        assert_eq!(
            region_from_base_url("https://bedrock-runtime.eu-west-3.amazonaws.com:443/"),
            Some("eu-west-3")
        );
        assert_eq!(region_from_base_url("http://127.0.0.1:8080"), None);
    }
}
