//! Upstream kinds. A provider knows its URL layout and how it wants the key;
//! the `mock` provider answers locally, with no network at all.

pub mod anthropic;
pub mod mock;
pub mod openai;
pub mod vertex;

use crate::api::Dialect;
use crate::config::{EndpointConfig, ProviderKind};

/// Can an endpoint of this kind serve a client of this dialect as-is?
/// (Translation between dialects is not done here.)
pub fn speaks(kind: ProviderKind, dialect: Dialect) -> bool {
    match kind {
        ProviderKind::Mock => true,
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => dialect == Dialect::OpenAi,
        ProviderKind::Anthropic => dialect == Dialect::Anthropic,
        // Served only through translation (not wired yet).
        ProviderKind::Azure
        | ProviderKind::Gemini
        | ProviderKind::Vertex
        | ProviderKind::Bedrock => false,
    }
}

/// The upstream URL for an API path (`/v1/...`) and query string.
pub fn upstream_url(endpoint: &EndpointConfig, api_path: &str, query: &str) -> String {
    let base = endpoint.base_url.trim_end_matches('/');
    // A base URL that already ends in /v1 (common for OpenAI-compatible
    // servers) must not get a second one.
    let path = match base.ends_with("/v1") {
        true => api_path.strip_prefix("/v1").unwrap_or(api_path),
        false => api_path,
    };
    match query.is_empty() {
        true => format!("{base}{path}"),
        false => format!("{base}{path}?{query}"),
    }
}

/// Adds the upstream key the way this kind expects it.
pub fn authorize(
    kind: ProviderKind,
    endpoint: &EndpointConfig,
    request: awc::ClientRequest,
    key: &str,
    client_headers: &actix_web::http::header::HeaderMap,
) -> awc::ClientRequest {
    match kind {
        ProviderKind::Anthropic => anthropic::authorize(endpoint, request, key, client_headers),
        _ => openai::authorize(request, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_double_v1() {
        let config = crate::config::from_toml_str(
            "[[endpoints]]\nid = \"e\"\nprovider = \"openai_compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
            &Default::default(),
            &Default::default(),
        )
        .unwrap();
        let mut endpoint = config.endpoints[0].clone();
        assert_eq!(
            upstream_url(&endpoint, "/v1/chat/completions", ""),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        endpoint.base_url = "http://127.0.0.1:9".into();
        assert_eq!(
            upstream_url(&endpoint, "/v1/files", "purpose=x"),
            "http://127.0.0.1:9/v1/files?purpose=x"
        );
    }
}
