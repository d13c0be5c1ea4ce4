//! Google Vertex AI upstreams. Vertex does not take an API key: a
//! service-account key file signs a short JWT, Google's token endpoint trades
//! it for an hour-long OAuth access token, and that token goes upstream as
//! `Authorization: Bearer`. Gemini models are served on `generateContent`,
//! Claude models on Anthropic's Messages format behind `rawPredict`.
//!
//! - [`service_account`]: the key file.
//! - [`jwt`]: the RS256 assertion (signed with ring; no JWT crate needed).
//! - [`token_cache`]: access tokens per account, refreshed before they expire.
//! - this file: the URL layout and the Claude body adjustments.

pub mod adapter;
pub mod jwt;
pub mod service_account;
pub mod token_cache;

pub use service_account::ServiceAccount;
pub use token_cache::TokenCache;

/// The `anthropic_version` Vertex wants in a Claude request body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Everything that can go wrong getting a Vertex access token. No variant
/// ever holds the private key, the assertion or an access token.
#[derive(Debug, thiserror::Error)]
pub enum VertexAuthError {
    #[error("service account key file: {0}")]
    KeyFile(String),
    #[error("service account key file: missing field `{0}`")]
    MissingField(&'static str),
    #[error("service account private key: {0}")]
    PrivateKey(String),
    #[error("signing the token request failed")]
    Signing,
    #[error("invalid JWT: {0}")]
    InvalidJwt(String),
    #[error("could not reach the token endpoint: {0}")]
    Transport(String),
    #[error("token endpoint answered {status}: {message}")]
    TokenEndpoint { status: u16, message: String },
    #[error("unreadable token endpoint answer: {0}")]
    BadTokenResponse(String),
}

impl VertexAuthError {
    /// Whether trying again later may help (the endpoint was down or busy),
    /// as opposed to a key or configuration problem.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::TokenEndpoint { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// The API host for a region; the `global` location has no regional prefix.
pub fn default_base_url(region: &str) -> String {
    match region {
        "global" => "https://aiplatform.googleapis.com".to_string(),
        _ => format!("https://{region}-aiplatform.googleapis.com"),
    }
}

/// Is this a Claude model (served through the Anthropic publisher)?
pub fn is_claude(model: &str) -> bool {
    model.starts_with("claude")
}

/// Gemini on Vertex: `generateContent`, or `streamGenerateContent` as SSE.
pub fn gemini_url(
    base_url: &str,
    project: &str,
    region: &str,
    model: &str,
    stream: bool,
) -> String {
    let method = match stream {
        true => "streamGenerateContent?alt=sse",
        false => "generateContent",
    };
    format!(
        "{}:{method}",
        model_path(base_url, project, region, "google", model)
    )
}

/// Claude on Vertex: `rawPredict`, or `streamRawPredict` (Anthropic's SSE).
pub fn anthropic_url(
    base_url: &str,
    project: &str,
    region: &str,
    model: &str,
    stream: bool,
) -> String {
    let method = match stream {
        true => "streamRawPredict",
        false => "rawPredict",
    };
    format!(
        "{}:{method}",
        model_path(base_url, project, region, "anthropic", model)
    )
}

fn model_path(base_url: &str, project: &str, region: &str, publisher: &str, model: &str) -> String {
    let base = base_url.trim_end_matches('/');
    format!("{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}")
}

/// An Anthropic Messages body as Vertex wants it: the model travels in the
/// URL, so `model` is removed, and `anthropic_version` is set unless the
/// client chose one. Everything else (including `stream`) is kept.
pub fn anthropic_body(mut anthropic_request_json: serde_json::Value) -> serde_json::Value {
    if let Some(object) = anthropic_request_json.as_object_mut() {
        object.remove("model");
        object
            .entry("anthropic_version")
            .or_insert_with(|| ANTHROPIC_VERSION.into());
    }
    anthropic_request_json
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn regional_and_global_hosts() {
        assert_eq!(
            default_base_url("us-east5"),
            "https://us-east5-aiplatform.googleapis.com"
        );
        assert_eq!(
            default_base_url("global"),
            "https://aiplatform.googleapis.com"
        );
    }

    #[test]
    fn gemini_urls() {
        let base = default_base_url("us-central1");
        assert_eq!(
            gemini_url(&base, "p1", "us-central1", "gemini-2.5-pro", false),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            gemini_url("http://127.0.0.1:9/", "p1", "global", "gemini-2.5-flash", true),
            "http://127.0.0.1:9/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn anthropic_urls() {
        let base = default_base_url("us-east5");
        assert_eq!(
            anthropic_url(&base, "p1", "us-east5", "claude-sonnet-4@20250514", false),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
        );
        assert_eq!(
            anthropic_url(&base, "p1", "us-east5", "claude-sonnet-4@20250514", true),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
    }

    #[test]
    fn claude_detection() {
        assert!(is_claude("claude-3-5-haiku@20241022"));
        assert!(!is_claude("gemini-2.5-pro"));
        assert!(!is_claude("my-claude"));
    }

    #[test]
    fn anthropic_body_drops_model_and_sets_version() {
        let body = anthropic_body(json!({
            "model": "claude-sonnet-4",
            "max_tokens": 10,
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        }));
        assert_eq!(
            body,
            json!({
                "anthropic_version": "vertex-2023-10-16",
                "max_tokens": 10,
                "stream": true,
                "messages": [{"role": "user", "content": "hi"}]
            })
        );
    }

    #[test]
    fn anthropic_body_keeps_client_version() {
        let body =
            anthropic_body(json!({"anthropic_version": "vertex-2099-01-01", "max_tokens": 1}));
        assert_eq!(body["anthropic_version"], "vertex-2099-01-01");
    }

    #[test]
    fn retryable_errors() {
        let status = |status| VertexAuthError::TokenEndpoint {
            status,
            message: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!VertexAuthError::MissingField("client_email").is_retryable());
    }
}
