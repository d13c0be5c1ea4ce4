//! The Bedrock adapter: Claude models through InvokeModel with an Anthropic
//! body, every other model through Converse; each request signed with SigV4
//! from the pooled `ACCESS_KEY_ID:SECRET[:SESSION_TOKEN]` credentials.

use std::time::SystemTime;

use super::sigv4::{self, AwsCredentials, SignableParts};
use super::{
    converse_url, invoke, invoke_url, is_anthropic_model, EVENT_STREAM_CONTENT_TYPE,
    SIGNING_SERVICE,
};
use crate::actors::key_pool::KeyOutcome;
use crate::error::GatewayError;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::providers::plan::{self, PlanError, PlanInput, ReplyPlan, UpstreamRequest};
use crate::translate::converse;

pub fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
) -> Result<UpstreamRequest, PlanError> {
    let key = input
        .key
        .ok_or(PlanError::Final(GatewayError::NoUsableKey))?;
    let credentials = AwsCredentials::parse(key).map_err(|e| PlanError::Attempt {
        reason: format!("unusable AWS credentials: {e}"),
        key_outcome: KeyOutcome::Revoked { status: 403 },
    })?;
    let endpoint = input.endpoint;
    let stream = input.stream();
    let model = input.upstream_model;
    let (url, body, reply) = match is_anthropic_model(model) {
        true => {
            let (json, reply) = plan::anthropic_json(
                input,
                client_body,
                ReplyPlan::BedrockAnthropic,
                UpstreamFormat::BedrockAnthropic,
            )?;
            let body = plan::to_json(&invoke::invoke_body(json))?;
            (invoke_url(&endpoint.base_url, model, stream), body, reply)
        }
        false => {
            let pivot = plan::pivot_request(input, client_body)?;
            let request = converse::request_from_pivot(&pivot).map_err(plan::bad_request)?;
            let body = plan::to_json(&request)?;
            (
                converse_url(&endpoint.base_url, model, stream),
                body,
                plan::translated(input, UpstreamFormat::Converse),
            )
        }
    };
    let accept = match stream {
        true => EVENT_STREAM_CONTENT_TYPE,
        false => "application/json",
    };
    let mut headers = vec![
        plan::json_content_type(),
        ("accept".to_string(), accept.to_string()),
    ];
    let host = plan::host_of(&url)
        .ok_or_else(|| GatewayError::Internal(format!("bad Bedrock URL {url}")))?;
    let mut signed_headers = headers.clone();
    signed_headers.push(("host".to_string(), host));
    let region = endpoint.region.as_deref().unwrap_or("us-east-1");
    let signature = sigv4::sign(
        &SignableParts {
            method: "POST",
            url: &url,
            headers: &signed_headers,
            body: &body,
        },
        &credentials,
        region,
        SIGNING_SERVICE,
        SystemTime::now(),
    )
    .map_err(|e| GatewayError::Internal(format!("could not sign the Bedrock request: {e}")))?;
    headers.extend(signature);
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url,
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(body),
        reply,
    })
}
