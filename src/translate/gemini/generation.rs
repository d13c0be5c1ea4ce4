//! Pivot sampling and output options → Gemini `generationConfig`.
//!
//! Fields the pivot does not type but clients commonly send (`top_k`, `seed`,
//! `presence_penalty`, `frequency_penalty`) are read from its `extra` map.

use serde_json::Value;

use super::schema::schema_for_gemini;
use super::wire::{GenerationConfig, ThinkingConfig};
use crate::api::openai::{ChatRequest, ResponseFormat};
use crate::translate::TranslateError;

/// The most candidates Gemini generates for one request.
const MAX_CANDIDATES: u32 = 8;

pub(super) fn generation_config(
    req: &ChatRequest,
) -> Result<Option<GenerationConfig>, TranslateError> {
    let candidate_count = match req.n {
        Some(0) => {
            return Err(TranslateError::InvalidRequest(
                "n must be at least 1".into(),
            ))
        }
        Some(n) if n > MAX_CANDIDATES => {
            return Err(TranslateError::Unsupported(format!(
                "n = {n}: Gemini generates at most {MAX_CANDIDATES} choices"
            )))
        }
        Some(n) if n > 1 => Some(n),
        _ => None,
    };
    let extra_f64 = |key: &str| req.extra.get(key).and_then(Value::as_f64);
    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req
            .extra
            .get("top_k")
            .and_then(Value::as_u64)
            .and_then(|k| u32::try_from(k).ok()),
        max_output_tokens: req.output_cap(),
        stop_sequences: req.stop.clone().map(|stop| stop.into_vec()),
        candidate_count,
        presence_penalty: extra_f64("presence_penalty"),
        frequency_penalty: extra_f64("frequency_penalty"),
        seed: req.extra.get("seed").and_then(Value::as_i64),
        thinking_config: req
            .reasoning_effort
            .as_deref()
            .map(thinking_config)
            .transpose()?,
        ..GenerationConfig::default()
    };
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            config.response_mime_type = Some("application/json".into());
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            config.response_mime_type = Some("application/json".into());
            config.response_schema = json_schema.schema.as_ref().map(schema_for_gemini);
        }
    }
    Ok((config != GenerationConfig::default()).then_some(config))
}

/// `reasoning_effort` → a thinking budget in tokens. `minimal` is treated as
/// `low` and `xhigh` as `high`; `none` turns thinking off where it can be.
fn thinking_config(effort: &str) -> Result<ThinkingConfig, TranslateError> {
    let budget = match effort {
        "none" => {
            return Ok(ThinkingConfig {
                thinking_budget: Some(0),
                include_thoughts: None,
            })
        }
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" => 24576,
        other => {
            return Err(TranslateError::InvalidRequest(format!(
                "reasoning_effort {other:?} is not one of low, medium, high"
            )))
        }
    };
    Ok(ThinkingConfig {
        thinking_budget: Some(budget),
        include_thoughts: Some(true),
    })
}
