//! Step 3, route: which endpoints may serve this request. By Host first (an
//! endpoint with `hosts` is reserved for them), then by route prefix, then by
//! the client's dialect, then by model.

use crate::api::Dialect;
use crate::config::{Config, EndpointConfig, Limit};
use crate::error::GatewayError;
use crate::providers;

/// The API operations the gateway knows by name; anything else under `/v1`
/// is passed through to OpenAI-type endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    ChatCompletions,
    Embeddings,
    Messages,
    CountTokens,
    Other,
}

impl CallKind {
    /// Operations whose body must name a model.
    pub fn needs_model(&self) -> bool {
        !matches!(self, CallKind::Other)
    }
}

/// A client call, located: its operation, dialect and `/v1/...` path (with
/// any route prefix stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    pub kind: CallKind,
    pub dialect: Dialect,
    pub api_path: String,
    pub prefix: Option<String>,
}

/// Locates `path` (prefixed or not); `None` if it is not an API path.
pub fn classify(path: &str, config: &Config) -> Option<ApiCall> {
    let (prefix, api_path) = match path.starts_with("/v1/") {
        true => (None, path),
        false => config
            .endpoints
            .iter()
            .filter_map(|e| e.route_prefix.as_deref())
            .find_map(|prefix| {
                let rest = path.strip_prefix(prefix)?;
                rest.starts_with("/v1/")
                    .then(|| (Some(prefix.to_string()), rest))
            })?,
    };
    let (kind, dialect) = match api_path.trim_end_matches('/') {
        "/v1/chat/completions" => (CallKind::ChatCompletions, Dialect::OpenAi),
        "/v1/embeddings" => (CallKind::Embeddings, Dialect::OpenAi),
        "/v1/messages" => (CallKind::Messages, Dialect::Anthropic),
        "/v1/messages/count_tokens" => (CallKind::CountTokens, Dialect::Anthropic),
        _ => (CallKind::Other, Dialect::OpenAi),
    };
    Some(ApiCall {
        kind,
        dialect,
        api_path: api_path.to_string(),
        prefix,
    })
}

fn host_matches(endpoint: &EndpointConfig, host: &str) -> bool {
    let bare = host.split(':').next().unwrap_or(host);
    endpoint.hosts.iter().any(|h| h == host || h == bare)
}

/// Whether the endpoint can take traffic at all (enabled, limits not 0).
pub fn is_open(endpoint: &EndpointConfig) -> bool {
    endpoint.enabled && endpoint.rpm != Limit::Max(0) && endpoint.rpd != Limit::Max(0)
}

/// Indexes of the endpoints that may serve `call` for `model`.
pub fn candidates(
    config: &Config,
    call: &ApiCall,
    host: &str,
    model: Option<&str>,
) -> Result<Vec<usize>, GatewayError> {
    let host = host.to_ascii_lowercase();
    let by_host = config.endpoints.iter().any(|e| host_matches(e, &host));
    let reachable: Vec<usize> = config
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| match by_host {
            true => host_matches(e, &host),
            false => e.hosts.is_empty(),
        })
        .filter(|(_, e)| call.prefix.is_none() || e.route_prefix == call.prefix)
        .filter(|(_, e)| is_open(e) && providers::serves(e.provider, call.kind))
        .map(|(i, _)| i)
        .collect();
    let Some(model) = model else {
        if call.kind.needs_model() {
            return Err(GatewayError::ModelMissing);
        }
        return match reachable.is_empty() {
            true => Err(no_endpoint(call)),
            false => Ok(reachable),
        };
    };
    let serving = serving(config, call, &reachable, model);
    match serving.is_empty() {
        false => Ok(serving),
        true => Err(GatewayError::ModelNotFound {
            model: model.to_string(),
            available: available_models(reachable.iter().map(|&i| &config.endpoints[i])),
        }),
    }
}

/// Endpoints that list the model (in `models` or `model_mapping`) serve it
/// whatever their format. Endpoints that take any model (`models = []`)
/// serve it in their own dialect; across dialects only when no reachable
/// endpoint speaks the client's dialect at all. So an Anthropic client
/// asking for `claude-…` does not land on a catch-all OpenAI endpoint while
/// an Anthropic one exists, and a lone Gemini endpoint still takes anything.
fn serving(config: &Config, call: &ApiCall, reachable: &[usize], model: &str) -> Vec<usize> {
    let native = |e: &EndpointConfig| {
        e.provider == crate::config::ProviderKind::Mock
            || providers::native_dialect(e.provider) == Some(call.dialect)
    };
    let any_native = reachable.iter().any(|&i| native(&config.endpoints[i]));
    reachable
        .iter()
        .copied()
        .filter(|&i| {
            let e = &config.endpoints[i];
            let lists = e.models.iter().any(|m| m == model) || e.model_mapping.contains_key(model);
            lists || (e.models.is_empty() && (native(e) || !any_native))
        })
        .collect()
}

fn no_endpoint(call: &ApiCall) -> GatewayError {
    GatewayError::UnknownRoute {
        method: "any".into(),
        path: format!(
            "{} (no {} endpoint serves it)",
            call.api_path,
            call.dialect.as_str()
        ),
    }
}

/// The model names these endpoints declare (models and mapping keys), sorted.
pub fn available_models<'a>(endpoints: impl Iterator<Item = &'a EndpointConfig>) -> Vec<String> {
    let mut models: Vec<String> = endpoints
        .flat_map(|e| e.models.iter().chain(e.model_mapping.keys()).cloned())
        .collect();
    models.sort();
    models.dedup();
    models
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    fn config() -> Config {
        from_toml_str(
            r#"
            [[endpoints]]
            id = "a"
            provider = "openai_compatible"
            base_url = "http://127.0.0.1:1"
            models = ["gpt-a"]
            route_prefix = "/alpha"
            [[endpoints]]
            id = "b"
            provider = "openai_compatible"
            base_url = "http://127.0.0.1:2"
            model_mapping = { "gpt-b" = "real-b" }
            hosts = ["b.example.com"]
            [[endpoints]]
            id = "c"
            provider = "anthropic"
            base_url = "http://127.0.0.1:3"
            [[endpoints]]
            id = "d"
            provider = "openai_compatible"
            base_url = "http://127.0.0.1:4"
            models = ["gpt-a", "gpt-d"]
            rpm = 0
            "#,
            &Default::default(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn classifies_paths_and_prefixes() {
        let c = config();
        let call = classify("/alpha/v1/chat/completions", &c).unwrap();
        assert_eq!(call.kind, CallKind::ChatCompletions);
        assert_eq!(call.prefix.as_deref(), Some("/alpha"));
        assert_eq!(call.api_path, "/v1/chat/completions");
        assert_eq!(
            classify("/v1/messages", &c).unwrap().dialect,
            Dialect::Anthropic
        );
        assert_eq!(classify("/v1/files", &c).unwrap().kind, CallKind::Other);
        assert!(classify("/beta/v1/x", &c).is_none());
        assert!(classify("/health", &c).is_none());
    }

    #[test]
    fn routes_by_host_prefix_dialect_and_model() {
        let c = config();
        let chat = classify("/v1/chat/completions", &c).unwrap();
        assert_eq!(
            candidates(&c, &chat, "localhost:6543", Some("gpt-a")).unwrap(),
            vec![0]
        );
        // Host-reserved endpoint b serves only its host.
        assert_eq!(
            candidates(&c, &chat, "b.example.com", Some("gpt-b")).unwrap(),
            vec![1]
        );
        assert!(matches!(
            candidates(&c, &chat, "localhost", Some("gpt-b")),
            Err(GatewayError::ModelNotFound { .. })
        ));
        let messages = classify("/v1/messages", &c).unwrap();
        assert_eq!(
            candidates(&c, &messages, "localhost", Some("claude-x")).unwrap(),
            vec![2]
        );
        assert!(matches!(
            candidates(&c, &chat, "localhost", None),
            Err(GatewayError::ModelMissing)
        ));
    }

    #[test]
    fn unknown_model_lists_what_exists() {
        let c = config();
        let chat = classify("/v1/chat/completions", &c).unwrap();
        match candidates(&c, &chat, "localhost", Some("nope")) {
            Err(GatewayError::ModelNotFound { available, .. }) => {
                assert_eq!(available, vec!["gpt-a".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
