//! Google AI Studio (Gemini API): `/v1beta/models/{model}:generateContent`
//! or `:streamGenerateContent?alt=sse`, key in `x-goog-api-key`. Every
//! client dialect is translated.

use super::plan::{self, PlanInput, UpstreamRequest};
use crate::error::GatewayError;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::translate::gemini;

/// `…/models/{model}:generateContent` or the streaming form.
pub fn operation(model: &str, stream: bool) -> String {
    match stream {
        true => format!("models/{model}:streamGenerateContent?alt=sse"),
        false => format!("models/{model}:generateContent"),
    }
}

pub fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
) -> Result<UpstreamRequest, GatewayError> {
    let pivot = plan::pivot_request(input, client_body)?;
    let request = gemini::request_from_pivot(&pivot).map_err(plan::bad_request)?;
    let mut headers = vec![plan::json_content_type()];
    if let Some(key) = input.key {
        headers.push(("x-goog-api-key".into(), key.to_string()));
    }
    let base = input.endpoint.base_url.trim_end_matches('/');
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url: format!(
            "{base}/v1beta/{}",
            operation(input.upstream_model, input.stream())
        ),
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(plan::to_json(&request)?),
        reply: plan::translated(input, UpstreamFormat::Gemini),
    })
}
