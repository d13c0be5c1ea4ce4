//! Upstream kinds. An adapter per kind knows its URL layout, its auth
//! (bearer, api-key header, OAuth from a service account, SigV4) and which
//! wire format it speaks; [`plan`] turns one attempt into the exact upstream
//! request and says how the reply comes back. The `mock` provider answers
//! locally, with no network at all.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod mock;
pub mod openai;
pub mod plan;
pub mod vertex;

use crate::api::Dialect;
use crate::config::{EndpointConfig, ProviderKind};
use crate::pipeline::route::CallKind;
use crate::pipeline::send::OutgoingBody;
use plan::{PlanError, PlanInput, UpstreamRequest};

/// Can an endpoint of this kind serve this operation at all (natively or
/// through translation)?
pub fn serves(kind: ProviderKind, call: CallKind) -> bool {
    match call {
        CallKind::ChatCompletions | CallKind::Messages | CallKind::CountTokens => true,
        CallKind::Embeddings | CallKind::Other => matches!(
            kind,
            ProviderKind::OpenAi
                | ProviderKind::OpenAiCompatible
                | ProviderKind::Azure
                | ProviderKind::Mock
        ),
    }
}

/// The client dialect this kind speaks without translation, if any.
pub fn native_dialect(kind: ProviderKind) -> Option<Dialect> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Azure => {
            Some(Dialect::OpenAi)
        }
        ProviderKind::Anthropic => Some(Dialect::Anthropic),
        ProviderKind::Gemini
        | ProviderKind::Vertex
        | ProviderKind::Bedrock
        | ProviderKind::Mock => None,
    }
}

/// Whether a count_tokens call is forwarded (only Anthropic's own API has
/// it); elsewhere the gateway estimates locally.
pub fn counts_tokens_upstream(kind: ProviderKind) -> bool {
    kind == ProviderKind::Anthropic
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
    // Written with push_str rather than format!: one of the few strings
    // built for every request.
    let mut url = String::with_capacity(base.len() + path.len() + query.len() + 1);
    url.push_str(base);
    url.push_str(path);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// What an adapter may need beyond the request itself.
pub struct PlanContext<'a> {
    pub http: &'a awc::Client,
    pub vertex: &'a vertex::adapter::VertexAuth,
    /// The client's `anthropic-version` header, if any.
    pub client_anthropic_version: Option<&'a str>,
}

/// Builds the upstream request of one attempt.
pub async fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
    context: &PlanContext<'_>,
) -> Result<UpstreamRequest, PlanError> {
    match input.endpoint.provider {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Mock => {
            Ok(openai::plan(input, client_body)?)
        }
        ProviderKind::Azure => Ok(azure::plan(input, client_body)?),
        ProviderKind::Anthropic => Ok(anthropic::plan(
            input,
            client_body,
            context.client_anthropic_version,
        )?),
        ProviderKind::Gemini => Ok(gemini::plan(input, client_body)?),
        ProviderKind::Vertex => {
            vertex::adapter::plan(input, client_body, context.vertex, context.http).await
        }
        ProviderKind::Bedrock => bedrock::adapter::plan(input, client_body),
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

    #[test]
    fn host_header_values() {
        assert_eq!(
            plan::host_of("https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke")
                .as_deref(),
            Some("bedrock-runtime.us-east-1.amazonaws.com")
        );
        assert_eq!(
            plan::host_of("http://127.0.0.1:8080/model").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(plan::host_of("https://h:443/x").as_deref(), Some("h"));
    }
}
