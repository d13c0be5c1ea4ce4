//! Step 3, route: which endpoints may serve this request. By Host first (an
//! endpoint with `hosts` is reserved for them), then by route prefix, then by
//! the client's dialect, then by model. The rules are written once, as a
//! scan ([`scan`]); requests are answered from the config's
//! [`RouteIndex`](super::route_index::RouteIndex), which gives the same
//! endpoints in the same order without looking at the others.

use super::route_index::merge;
use crate::api::Dialect;
use crate::config::{Config, EndpointConfig, Limit, ProviderKind};
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
    let strip = |prefix: &str| {
        let rest = path.strip_prefix(prefix)?;
        rest.starts_with("/v1/")
            .then(|| (Some(prefix.to_string()), rest))
    };
    let (prefix, api_path) = match path.starts_with("/v1/") {
        true => (None, path),
        false if config.route_index.fits(&config.endpoints) => config
            .route_index
            .prefixes()
            .iter()
            .find_map(|prefix| strip(prefix))?,
        false => config
            .endpoints
            .iter()
            .filter_map(|e| e.route_prefix.as_deref())
            .find_map(strip)?,
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

/// What an endpoint's provider kind must do for a call: the HTTP API and the
/// Realtime API route alike but for this.
#[derive(Clone, Copy)]
pub struct Fit {
    /// Whether an endpoint of this kind can take the call at all.
    pub takes: fn(ProviderKind, CallKind) -> bool,
    /// Whether it speaks the client's dialect (see [`scan`]).
    pub native: fn(ProviderKind, Dialect) -> bool,
}

/// The HTTP API: the kinds that serve the operation; the mock speaks both
/// dialects.
pub const HTTP: Fit = Fit {
    takes: providers::serves,
    native: speaks,
};

fn speaks(kind: ProviderKind, dialect: Dialect) -> bool {
    kind == ProviderKind::Mock || providers::native_dialect(kind) == Some(dialect)
}

/// Indexes of the endpoints that may serve `call` for `model`.
pub fn candidates(
    config: &Config,
    call: &ApiCall,
    host: &str,
    model: Option<&str>,
) -> Result<Vec<usize>, GatewayError> {
    candidates_for(config, call, host, model, HTTP)
}

/// [`candidates`] for any [`Fit`], from the config's route index: what
/// [`scan`] would answer, in the same order.
pub fn candidates_for(
    config: &Config,
    call: &ApiCall,
    host: &str,
    model: Option<&str>,
    fit: Fit,
) -> Result<Vec<usize>, GatewayError> {
    let index = &config.route_index;
    if !index.fits(&config.endpoints) {
        return scan(config, call, host, model, fit);
    }
    let endpoint = |i: usize| config.endpoints.get(i);
    let takes = |i: &usize| endpoint(*i).is_some_and(|e| (fit.takes)(e.provider, call.kind));
    if index.reserves_hosts() {
        let reserved = index.reserved_for(&host.to_ascii_lowercase());
        if !reserved.is_empty() {
            let reachable = reserved
                .into_iter()
                .filter(|&i| endpoint(i).is_some_and(|e| in_prefix(e, call) && is_open(e)))
                .filter(takes)
                .collect();
            return serve(config, call, reachable, model, fit);
        }
    }
    let Some(scope) = index.unreserved(call.prefix.as_deref()) else {
        return serve(config, call, Vec::new(), model, fit);
    };
    let reachable = || scope.open.iter().copied().filter(takes).collect();
    let Some(model) = model else {
        return serve(config, call, reachable(), None, fit);
    };
    let listing: Vec<usize> = scope
        .listing
        .get(model)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .copied()
        .filter(takes)
        .collect();
    let any_native = scope
        .kinds
        .iter()
        .any(|&k| (fit.takes)(k, call.kind) && (fit.native)(k, call.dialect));
    let catch_all: Vec<usize> = scope
        .catch_all
        .iter()
        .copied()
        .filter(takes)
        .filter(|&i| {
            !any_native || endpoint(i).is_some_and(|e| (fit.native)(e.provider, call.dialect))
        })
        .collect();
    let serving = merge(&listing, &catch_all);
    match serving.is_empty() {
        false => Ok(serving),
        true => Err(model_not_found(config, model, &reachable())),
    }
}

fn in_prefix(endpoint: &EndpointConfig, call: &ApiCall) -> bool {
    call.prefix.is_none() || endpoint.route_prefix == call.prefix
}

/// The routing rules over every endpoint, one by one: what the index must
/// agree with, and the answer when it does not fit the endpoint list.
pub fn scan(
    config: &Config,
    call: &ApiCall,
    host: &str,
    model: Option<&str>,
    fit: Fit,
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
        .filter(|(_, e)| in_prefix(e, call))
        .filter(|(_, e)| is_open(e) && (fit.takes)(e.provider, call.kind))
        .map(|(i, _)| i)
        .collect();
    serve(config, call, reachable, model, fit)
}

/// Which of the `reachable` endpoints serve `model`.
fn serve(
    config: &Config,
    call: &ApiCall,
    reachable: Vec<usize>,
    model: Option<&str>,
    fit: Fit,
) -> Result<Vec<usize>, GatewayError> {
    let Some(model) = model else {
        if call.kind.needs_model() {
            return Err(GatewayError::ModelMissing);
        }
        return match reachable.is_empty() {
            true => Err(no_endpoint(call)),
            false => Ok(reachable),
        };
    };
    let serving = serving(config, call, &reachable, model, fit);
    match serving.is_empty() {
        false => Ok(serving),
        true => Err(model_not_found(config, model, &reachable)),
    }
}

fn model_not_found(config: &Config, model: &str, reachable: &[usize]) -> GatewayError {
    GatewayError::ModelNotFound {
        model: model.to_string(),
        available: available_models(reachable.iter().filter_map(|&i| config.endpoints.get(i))),
    }
}

/// Endpoints that list the model (in `models` or `model_mapping`) serve it
/// whatever their format. Endpoints that take any model (`models = []`)
/// serve it in their own dialect; across dialects only when no reachable
/// endpoint speaks the client's dialect at all. So an Anthropic client
/// asking for `claude-…` does not land on a catch-all OpenAI endpoint while
/// an Anthropic one exists, and a lone Gemini endpoint still takes anything.
fn serving(
    config: &Config,
    call: &ApiCall,
    reachable: &[usize],
    model: &str,
    fit: Fit,
) -> Vec<usize> {
    let native = |e: &EndpointConfig| (fit.native)(e.provider, call.dialect);
    let any_native = reachable
        .iter()
        .filter_map(|&i| config.endpoints.get(i))
        .any(native);
    reachable
        .iter()
        .copied()
        .filter(|&i| {
            config.endpoints.get(i).is_some_and(|e| {
                let lists =
                    e.models.iter().any(|m| m == model) || e.model_mapping.contains_key(model);
                lists || (e.models.is_empty() && (native(e) || !any_native))
            })
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
