//! Anthropic upstreams: the key goes in `x-api-key`; `anthropic-version` is
//! the client's if it sent one, else the endpoint's; `anthropic-beta`
//! travels with the client's other headers. OpenAI clients are translated.

use super::plan::{self, PlanInput, UpstreamRequest};
use crate::api::Dialect;
use crate::error::GatewayError;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::translate::anthropic;

pub fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
    client_version: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let mut headers = Vec::new();
    if let Some(key) = input.key {
        headers.push(("x-api-key".into(), key.to_string()));
    }
    if input.call.dialect == Dialect::Anthropic {
        if client_version.is_none() {
            headers.push((
                "anthropic-version".into(),
                input.endpoint.anthropic_version.clone(),
            ));
        }
        let (body, reply) = plan::native_body(input, client_body)?;
        return Ok(UpstreamRequest {
            method: input.method.clone(),
            url: super::upstream_url(input.endpoint, &input.call.api_path, input.query),
            headers,
            forward_client_headers: true,
            body,
            reply,
        });
    }
    let pivot = plan::pivot_request(input, client_body)?;
    let request = anthropic::request_from_pivot(&pivot, input.endpoint.default_max_tokens)
        .map_err(plan::bad_request)?;
    headers.push((
        "anthropic-version".into(),
        input.endpoint.anthropic_version.clone(),
    ));
    headers.push(plan::json_content_type());
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url: super::upstream_url(input.endpoint, "/v1/messages", ""),
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(plan::to_json(&request)?),
        reply: plan::translated(input, UpstreamFormat::AnthropicMessages),
    })
}
