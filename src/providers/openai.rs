//! OpenAI and OpenAI-compatible upstreams: `Authorization: Bearer <key>`,
//! paths as the client sent them. Anthropic clients are translated to Chat
//! Completions.

use super::plan::{self, PlanInput, UpstreamRequest};
use crate::api::Dialect;
use crate::error::GatewayError;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;

pub fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
) -> Result<UpstreamRequest, GatewayError> {
    let mut headers = Vec::new();
    if let Some(key) = input.key {
        headers.push(plan::bearer(key));
    }
    if input.call.dialect == Dialect::OpenAi {
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
    let request = plan::pivot_request(input, client_body)?;
    headers.push(plan::json_content_type());
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url: super::upstream_url(input.endpoint, "/v1/chat/completions", ""),
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(plan::openai_format_body(request)?),
        reply: plan::translated(input, UpstreamFormat::OpenAiChat),
    })
}
