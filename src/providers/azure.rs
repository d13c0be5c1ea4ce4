//! Azure OpenAI: `{base}/openai/deployments/{deployment}/{operation}?api-version=…`
//! with the `api-key` header. The deployment is `deployments[model]`, else
//! the (mapped) model name itself.

use super::plan::{self, PlanInput, UpstreamRequest};
use crate::api::Dialect;
use crate::error::GatewayError;
use crate::pipeline::route::CallKind;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;

pub fn deployment<'a>(input: &'a PlanInput<'_>) -> &'a str {
    input
        .endpoint
        .deployments
        .get(input.upstream_model)
        .or_else(|| input.endpoint.deployments.get(input.client_model))
        .map_or(input.upstream_model, String::as_str)
}

/// The Azure URL for an OpenAI API path.
pub fn url(input: &PlanInput<'_>, api_path: &str) -> String {
    let base = input.endpoint.base_url.trim_end_matches('/');
    let version = &input.endpoint.api_version;
    let rest = api_path.strip_prefix("/v1").unwrap_or(api_path);
    let path = match input.call.kind {
        CallKind::ChatCompletions
        | CallKind::Embeddings
        | CallKind::Messages
        | CallKind::CountTokens => {
            format!("{base}/openai/deployments/{}{rest}", deployment(input))
        }
        CallKind::Other => format!("{base}/openai{rest}"),
    };
    let extra = match input.query.is_empty() {
        true => String::new(),
        false => format!("&{}", input.query),
    };
    format!("{path}?api-version={version}{extra}")
}

pub fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
) -> Result<UpstreamRequest, GatewayError> {
    let mut headers = Vec::new();
    if let Some(key) = input.key {
        headers.push(("api-key".into(), key.to_string()));
    }
    if input.call.dialect == Dialect::OpenAi {
        let (body, reply) = plan::native_body(input, client_body)?;
        return Ok(UpstreamRequest {
            method: input.method.clone(),
            url: url(input, &input.call.api_path),
            headers,
            forward_client_headers: true,
            body,
            reply,
        });
    }
    let request = plan::pivot_request(input, client_body)?;
    headers.push(plan::json_content_type());
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url: url(input, "/v1/chat/completions"),
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(plan::openai_format_body(request)?),
        reply: plan::translated(input, UpstreamFormat::OpenAiChat),
    })
}
