//! The Vertex adapter: Claude models through `rawPredict` with an Anthropic
//! body, Gemini models through `generateContent`, both with an OAuth access
//! token exchanged from the pooled service-account key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{anthropic_body, anthropic_url, gemini_url, is_claude, ServiceAccount, TokenCache};
use crate::actors::key_pool::KeyOutcome;
use crate::error::GatewayError;
use crate::pipeline::send::OutgoingBody;
use crate::pipeline::transform::translated::UpstreamFormat;
use crate::providers::plan::{self, PlanError, PlanInput, ReplyPlan, UpstreamRequest};
use crate::translate::gemini;

/// Parsed service accounts (parsing loads an RSA key: done once per key)
/// and their access tokens.
#[derive(Clone, Default)]
pub struct VertexAuth {
    pub tokens: TokenCache,
    accounts: Arc<Mutex<HashMap<String, Arc<ServiceAccount>>>>,
}

impl VertexAuth {
    fn account(&self, key: &str) -> Result<Arc<ServiceAccount>, PlanError> {
        if let Some(account) = self.accounts.lock().ok().and_then(|a| a.get(key).cloned()) {
            return Ok(account);
        }
        let account = Arc::new(
            ServiceAccount::from_json(key).map_err(|e| PlanError::Attempt {
                reason: format!("unusable service-account key: {e}"),
                key_outcome: KeyOutcome::Revoked { status: 401 },
            })?,
        );
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.insert(key.to_string(), account.clone());
        }
        Ok(account)
    }

    /// Forgets the token of the account behind `key` (after an upstream 401).
    pub fn invalidate(&self, key: &str) {
        if let Ok(account) = self.account(key) {
            self.tokens.invalidate(&account.client_email);
        }
    }
}

pub async fn plan(
    input: &PlanInput<'_>,
    client_body: &mut OutgoingBody,
    auth: &VertexAuth,
    http: &awc::Client,
) -> Result<UpstreamRequest, PlanError> {
    let key = input
        .key
        .ok_or(PlanError::Final(GatewayError::NoUsableKey))?;
    let account = auth.account(key)?;
    let token = auth
        .tokens
        .access_token(http, &account)
        .await
        .map_err(|e| PlanError::Attempt {
            key_outcome: match e.is_retryable() {
                true => KeyOutcome::Failed {
                    reason: e.to_string(),
                },
                false => KeyOutcome::Revoked { status: 401 },
            },
            reason: e.to_string(),
        })?;
    let endpoint = input.endpoint;
    let project = endpoint.project.as_deref().unwrap_or(&account.project_id);
    let region = endpoint.region.as_deref().unwrap_or("us-central1");
    let stream = input.stream();
    let headers = vec![plan::bearer(&token), plan::json_content_type()];
    let (url, body, reply) = match is_claude(input.upstream_model) {
        true => {
            let url = anthropic_url(
                &endpoint.base_url,
                project,
                region,
                input.upstream_model,
                stream,
            );
            let (json, reply) = plan::anthropic_json(
                input,
                client_body,
                ReplyPlan::Native {
                    drop_usage_chunk: false,
                },
                UpstreamFormat::AnthropicMessages,
            )?;
            let mut json = anthropic_body(json);
            if let Value::Object(map) = &mut json {
                map.insert("stream".into(), Value::Bool(stream));
            }
            (url, plan::to_json(&json)?, reply)
        }
        false => {
            let url = gemini_url(
                &endpoint.base_url,
                project,
                region,
                input.upstream_model,
                stream,
            );
            let pivot = plan::pivot_request(input, client_body)?;
            let request = gemini::request_from_pivot(&pivot).map_err(plan::bad_request)?;
            (
                url,
                plan::to_json(&request)?,
                plan::translated(input, UpstreamFormat::Gemini),
            )
        }
    };
    Ok(UpstreamRequest {
        method: actix_web::http::Method::POST,
        url,
        headers,
        forward_client_headers: false,
        body: OutgoingBody::Bytes(body),
        reply,
    })
}
