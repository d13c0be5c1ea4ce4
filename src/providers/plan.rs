//! What a provider adapter produces for one attempt: the exact upstream
//! request (URL, headers, body) and how its reply must come back to the
//! client (relayed as-is, re-framed, or translated).

use actix_web::http::Method;
use bytes::Bytes;

use crate::api::openai::{ChatRequest, StreamOptions};
use crate::api::peek::BodyRewrite;
use crate::api::{Dialect, RequestPeek};
use crate::config::EndpointConfig;
use crate::error::GatewayError;
use crate::pipeline::route::{ApiCall, CallKind};
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::translate::{body, TranslateError};

/// One attempt's inputs.
pub struct PlanInput<'a> {
    pub endpoint: &'a EndpointConfig,
    pub call: &'a ApiCall,
    pub method: &'a Method,
    pub query: &'a str,
    pub peek: &'a RequestPeek,
    /// The model the client asked for ("" when the call has none).
    pub client_model: &'a str,
    /// The name the upstream knows it by (after `model_mapping`).
    pub upstream_model: &'a str,
    /// The pooled key, or the passthrough client's own.
    pub key: Option<&'a str>,
}

impl PlanInput<'_> {
    pub fn stream(&self) -> bool {
        self.peek.stream
    }
}

/// How the reply comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyPlan {
    /// The client's own format: relayed with a usage tap.
    Native { drop_usage_chunk: bool },
    /// Anthropic events in Bedrock's event-stream frames: re-framed as SSE.
    BedrockAnthropic,
    /// Another format: translated through the pivot.
    Translated {
        format: UpstreamFormat,
        include_usage: bool,
    },
}

/// The upstream request of one attempt.
pub struct UpstreamRequest {
    pub method: Method,
    pub url: String,
    /// Set by the provider: auth, content type, version headers.
    pub headers: Vec<(String, String)>,
    /// Same-format requests carry the client's own headers too
    /// (`anthropic-beta`, `openai-organization`, …); translated ones do not.
    pub forward_client_headers: bool,
    pub body: OutgoingBody,
    pub reply: ReplyPlan,
}

/// Maps a translation failure to the client's 400.
pub fn bad_request(e: TranslateError) -> GatewayError {
    GatewayError::BadRequest(e.to_string())
}

/// The client's body forwarded in its own format: the same bytes unless the
/// model is mapped or stream usage must be asked for.
pub fn native_body(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
) -> Result<(OutgoingBody, ReplyPlan), GatewayError> {
    let ask_stream_usage = input.call.kind == CallKind::ChatCompletions
        && input.peek.stream
        && !input.peek.include_usage;
    let rewrite = BodyRewrite {
        model: (!input.client_model.is_empty() && input.upstream_model != input.client_model)
            .then(|| input.upstream_model.to_string()),
        ask_stream_usage,
    };
    let body = match client_body {
        OutgoingBody::Bytes(bytes) => OutgoingBody::Bytes(
            rewrite
                .apply(bytes.clone())
                .map_err(|e| GatewayError::InvalidJson(e.to_string()))?,
        ),
        OutgoingBody::Stream(payload) => OutgoingBody::Stream(payload.take()),
    };
    Ok((
        body,
        ReplyPlan::Native {
            drop_usage_chunk: ask_stream_usage,
        },
    ))
}

/// The client's request as a pivot request for the upstream model, with
/// streaming as the client asked.
pub fn pivot_request(
    input: &PlanInput<'_>,
    client_body: &OutgoingBody,
) -> Result<ChatRequest, GatewayError> {
    let OutgoingBody::Bytes(bytes) = client_body else {
        return Err(GatewayError::BadRequest(
            "this request cannot be translated".into(),
        ));
    };
    let mut request =
        body::client_request_to_pivot(input.call.dialect, bytes).map_err(bad_request)?;
    request.model = input.upstream_model.to_string();
    request.stream = input.peek.stream.then_some(true);
    Ok(request)
}

/// A pivot request for an OpenAI-format upstream: streams ask for usage.
pub fn openai_format_body(mut request: ChatRequest) -> Result<Bytes, GatewayError> {
    // Reasoning models refuse `max_tokens`; they take `max_completion_tokens`.
    if request.reasoning_effort.is_some() && request.max_completion_tokens.is_none() {
        request.max_completion_tokens = request.max_tokens.take();
    }
    if request.stream == Some(true) {
        request.stream_options = Some(StreamOptions {
            include_usage: Some(true),
        });
    }
    to_json(&request)
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| GatewayError::Internal(format!("could not encode the upstream request: {e}")))
}

/// The reply plan of a translated request.
pub fn translated(input: &PlanInput<'_>, format: UpstreamFormat) -> ReplyPlan {
    ReplyPlan::Translated {
        format,
        include_usage: input.call.dialect == Dialect::OpenAi && input.peek.include_usage,
    }
}

/// An Anthropic Messages body for an upstream that takes one (Bedrock
/// InvokeModel, Vertex rawPredict): an Anthropic client's own JSON, with
/// `native` as its reply plan, or the pivot translated, with `translated`.
pub fn anthropic_json(
    input: &PlanInput<'_>,
    client_body: &OutgoingBody,
    native: ReplyPlan,
    translated_format: UpstreamFormat,
) -> Result<(serde_json::Value, ReplyPlan), GatewayError> {
    match input.call.dialect {
        Dialect::Anthropic => {
            let OutgoingBody::Bytes(bytes) = client_body else {
                return Err(GatewayError::BadRequest(
                    "a streamed body cannot be sent to this upstream".into(),
                ));
            };
            let json = serde_json::from_slice(bytes)
                .map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
            Ok((json, native))
        }
        Dialect::OpenAi => {
            let pivot = pivot_request(input, client_body)?;
            let request = crate::translate::anthropic::request_from_pivot(
                &pivot,
                input.endpoint.default_max_tokens,
            )
            .map_err(bad_request)?;
            let json = serde_json::to_value(&request)
                .map_err(|e| GatewayError::Internal(e.to_string()))?;
            Ok((json, translated(input, translated_format)))
        }
    }
}

/// `Authorization: Bearer <token>`, as a header pair (without `format!`:
/// built for most requests).
pub fn bearer(token: &str) -> (String, String) {
    let mut value = String::with_capacity("Bearer ".len() + token.len());
    value.push_str("Bearer ");
    value.push_str(token);
    ("authorization".into(), value)
}

/// The JSON content type, as a header pair.
pub fn json_content_type() -> (String, String) {
    ("content-type".into(), "application/json".into())
}

/// Why an attempt could not be planned.
#[derive(Debug)]
pub enum PlanError {
    /// Nothing can serve this request as asked: the client gets this error.
    Final(GatewayError),
    /// This key could not be used (a credential was refused or could not be
    /// exchanged): the attempt moves on to another key or endpoint.
    Attempt {
        reason: String,
        key_outcome: crate::actors::key_pool::KeyOutcome,
    },
}

impl From<GatewayError> for PlanError {
    fn from(e: GatewayError) -> Self {
        PlanError::Final(e)
    }
}

/// The `host` header value awc will send for `url` (SigV4 signs it).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let default_port = match url.starts_with("https://") {
        true => ":443",
        false => ":80",
    };
    Some(
        authority
            .strip_suffix(default_port)
            .unwrap_or(authority)
            .to_string(),
    )
}
