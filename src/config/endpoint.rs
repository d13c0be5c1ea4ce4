//! Validation of the `[[endpoints]]` list (raw → [`EndpointConfig`]).
//!
//! Kept apart from `validate.rs` because endpoints carry most of the rules:
//! unique ids, provider defaults, URL and route-prefix normalisation, keys.

use std::collections::{BTreeMap, BTreeSet};

use super::raw::RawEndpoint;
use super::runtime::{EndpointConfig, Limit, ProviderKind};
use super::validate::{at_least, invalid, resolve_keys};
use super::ConfigError;
use super::Secret;

const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Validates every endpoint in order; ids must be unique.
pub(crate) fn validate_all(
    raw: Vec<RawEndpoint>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<EndpointConfig>, ConfigError> {
    let mut seen = BTreeSet::new();
    let mut endpoints = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let endpoint = validate_one(&format!("endpoints[{index}]"), raw, env)?;
        if !seen.insert(endpoint.id.clone()) {
            return Err(invalid(
                format!("endpoints[{index}].id"),
                format!("duplicate id \"{}\"", endpoint.id),
            ));
        }
        if endpoint.keys.is_empty() && endpoint.provider != ProviderKind::Mock {
            log::warn!(
                "endpoint {} has no keys: it only serves passthrough clients",
                endpoint.id
            );
        }
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

fn validate_one(
    at: &str,
    raw: RawEndpoint,
    env: &BTreeMap<String, String>,
) -> Result<EndpointConfig, ConfigError> {
    let path = |key: &str| format!("{at}.{key}");
    let id = raw.id.trim().to_owned();
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_ok {
        return Err(invalid(
            path("id"),
            "expected a non-empty id of letters, digits, '_' or '-'",
        ));
    }
    let provider = ProviderKind::from_name(&raw.provider)
        .ok_or_else(|| invalid(path("provider"), ProviderKind::EXPECTED))?;
    let region = raw
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let project = raw
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let needs_region = matches!(provider, ProviderKind::Vertex | ProviderKind::Bedrock);
    if needs_region && region.is_none() {
        return Err(invalid(
            path("region"),
            format!("required for provider {}", provider.as_str()),
        ));
    }
    if provider == ProviderKind::Vertex && project.is_none() {
        return Err(invalid(path("project"), "required for provider vertex"));
    }
    let regional_default = region_base_url(provider, region.as_deref());
    let base_url = base_url(
        provider,
        raw.base_url.as_deref().or(regional_default.as_deref()),
    )
    .map_err(|message| invalid(path("base_url"), message))?;
    let mut keys = resolve_keys(&path("keys"), &raw.keys, env)?;
    if let Some(credentials) = &raw.credentials {
        keys.extend(resolve_keys(
            &path("credentials"),
            std::slice::from_ref(credentials),
            env,
        )?);
    }
    match (&raw.access_key_id, &raw.secret_access_key) {
        (Some(id), Some(secret)) => {
            let id = resolve_keys(&path("access_key_id"), std::slice::from_ref(id), env)?;
            let secret = resolve_keys(
                &path("secret_access_key"),
                std::slice::from_ref(secret),
                env,
            )?;
            let token = match &raw.session_token {
                Some(t) => resolve_keys(&path("session_token"), std::slice::from_ref(t), env)?,
                None => Vec::new(),
            };
            let mut joined = format!("{}:{}", id[0].expose(), secret[0].expose());
            if let Some(token) = token.first() {
                joined.push(':');
                joined.push_str(token.expose());
            }
            keys.push(Secret::new(joined));
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                path("secret_access_key"),
                "access_key_id and secret_access_key go together",
            ))
        }
    }
    let default_max_tokens = u64::try_from(at_least(
        &path("default_max_tokens"),
        raw.default_max_tokens,
        1,
    )?)
    .map_err(|_| invalid(path("default_max_tokens"), "expected an integer >= 1"))?;
    let limit = |key: &str, value: i64| {
        at_least(&path(key), value, -1)
            .ok()
            .and_then(Limit::from_i64)
            .ok_or_else(|| invalid(path(key), "expected an integer >= -1"))
    };
    let weight = at_least(&path("weight"), raw.weight, 1)?;
    let weight = u32::try_from(weight).map_err(|_| {
        invalid(
            path("weight"),
            format!("expected an integer <= {}", u32::MAX),
        )
    })?;
    let latency_ms = u64::try_from(at_least(&path("latency_ms"), raw.latency_ms, 0)?)
        .map_err(|_| invalid(path("latency_ms"), "expected an integer >= 0"))?;
    let route_prefix = route_prefix(&raw.route_prefix)
        .map_err(|message| invalid(path("route_prefix"), message))?;
    Ok(EndpointConfig {
        name: raw
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone()),
        keys,
        rpm: limit("rpm", raw.rpm)?,
        rpd: limit("rpd", raw.rpd)?,
        enabled: raw.enabled,
        models: raw.models,
        model_mapping: raw.model_mapping,
        weight,
        route_prefix,
        hosts: raw
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        latency_ms,
        anthropic_version: raw
            .anthropic_version
            .unwrap_or_else(|| DEFAULT_ANTHROPIC_VERSION.to_owned()),
        api_version: raw
            .api_version
            .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
        deployments: raw.deployments,
        project,
        region,
        default_max_tokens,
        prices: super::pricing::validate(&path("prices"), &raw.prices)?,
        id,
        provider,
        base_url,
    })
}

/// Azure's `api-version` when the endpoint gives none.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Vertex and Bedrock hosts follow the region.
fn region_base_url(provider: ProviderKind, region: Option<&str>) -> Option<String> {
    let region = region?;
    match provider {
        ProviderKind::Vertex => Some(crate::providers::vertex::default_base_url(region)),
        ProviderKind::Bedrock => Some(format!("https://bedrock-runtime.{region}.amazonaws.com")),
        _ => None,
    }
}

/// The provider default when unset; trailing '/' trimmed; http(s) only.
fn base_url(provider: ProviderKind, given: Option<&str>) -> Result<String, String> {
    let given = given.map(str::trim).filter(|url| !url.is_empty());
    let url = match (given, provider.default_base_url()) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => return Err(format!("required for provider {}", provider.as_str())),
    };
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if scheme_ok || provider == ProviderKind::Mock {
        Ok(url)
    } else {
        Err(format!(
            "expected a URL starting with http:// or https://, got \"{url}\""
        ))
    }
}

/// `""` → none; otherwise `/x` with one leading and no trailing '/'.
fn route_prefix(given: &str) -> Result<Option<String>, String> {
    let trimmed = given.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err("expected a path like /team-a (no spaces, '?' or '#')".to_owned());
    }
    let prefix = format!("/{trimmed}");
    if prefix == "/v1" {
        return Err("\"/v1\" is reserved for the API itself".to_owned());
    }
    Ok(Some(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefix_is_normalised() {
        assert_eq!(route_prefix("").unwrap(), None);
        assert_eq!(route_prefix("/").unwrap(), None);
        assert_eq!(route_prefix("team").unwrap().as_deref(), Some("/team"));
        assert_eq!(route_prefix("/team/").unwrap().as_deref(), Some("/team"));
        assert_eq!(route_prefix("a/b").unwrap().as_deref(), Some("/a/b"));
        assert!(route_prefix("/v1").is_err());
        assert!(route_prefix("v1/").is_err());
        assert!(route_prefix("a b").is_err());
    }

    #[test]
    fn base_url_defaults_and_checks() {
        let openai = base_url(ProviderKind::OpenAi, None).unwrap();
        assert_eq!(openai, "https://api.openai.com");
        let anthropic = base_url(ProviderKind::Anthropic, Some("")).unwrap();
        assert_eq!(anthropic, "https://api.anthropic.com");
        assert_eq!(base_url(ProviderKind::Mock, None).unwrap(), "");
        let trimmed = base_url(ProviderKind::OpenAiCompatible, Some("http://x:1/v//")).unwrap();
        assert_eq!(trimmed, "http://x:1/v");
        let err = base_url(ProviderKind::OpenAiCompatible, None).unwrap_err();
        assert_eq!(err, "required for provider openai_compatible");
        assert!(base_url(ProviderKind::OpenAi, Some("ftp://x")).is_err());
    }
}
