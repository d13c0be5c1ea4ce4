//! Environment overrides, applied to the raw config before validation.
//!
//! The environment is passed in as a map (never read here) so tests stay
//! hermetic. Order: the legacy variables of the proxies aigate replaces
//! (`PROXY_PORT`, `OPENAI_API_KEY`, `EXTRA_BASE_URL`, ...) first, then the
//! generic `AIGATE_<SECTION>_<KEY>` rows, so the explicit form wins.

use std::collections::BTreeMap;

use super::env_table::{integer, list, OVERRIDES};
use super::raw::{RawConfig, RawEndpoint};
use super::validate::parse_listen;
use super::ConfigError;

/// Applies every recognised variable in `env` to `raw`.
pub(crate) fn apply(
    raw: &mut RawConfig,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

    if let Some(port) = get("PROXY_PORT") {
        let port: u16 = port
            .parse()
            .map_err(|_| env_error("PROXY_PORT", "expected a port number"))?;
        if let Some(mut addr) = parse_listen(&raw.server.listen) {
            addr.set_port(port);
            raw.server.listen = addr.to_string();
        }
    }
    if let Some(dir) = get("BASE_PATH") {
        raw.server.data_dir = dir.into();
    }
    if let Some(keys) = get("FORWARD_KEY") {
        raw.auth.client_keys = list(keys);
    }

    let openai = ProviderVars {
        id: "openai",
        key: "OPENAI_API_KEY",
        url: "OPENAI_BASE_URL",
        host: "OPENAI_API_HOST",
    };
    let anthropic = ProviderVars {
        id: "anthropic",
        key: "ANTHROPIC_API_KEY",
        url: "ANTHROPIC_BASE_URL",
        host: "CLAUDE_API_HOST",
    };
    for vars in [openai, anthropic] {
        let keys = get(vars.key).map(list);
        let url = get(vars.url)
            .map(str::to_owned)
            .or_else(|| get(vars.host).map(with_scheme));
        if keys.is_none() && url.is_none() {
            continue;
        }
        let endpoint = endpoint_mut(raw, vars.id, vars.id);
        if let Some(keys) = keys {
            endpoint.keys = keys;
        }
        if url.is_some() {
            endpoint.base_url = url;
        }
    }

    if let Some(value) = get("RATE_LIMIT_REQUESTS") {
        raw.limits.ip_requests = integer(value).map_err(|m| env_error("RATE_LIMIT_REQUESTS", m))?;
    }
    if let Some(value) = get("RATE_LIMIT_INTERVAL") {
        raw.limits.ip_interval_secs = millis_to_secs("RATE_LIMIT_INTERVAL", value)?;
    }
    if let Some(value) = get("IP_ERROR_THRESHOLD") {
        raw.limits.ip_error_threshold =
            integer(value).map_err(|m| env_error("IP_ERROR_THRESHOLD", m))?;
    }
    if let Some(value) = get("ERROR_WINDOW") {
        raw.limits.ip_error_window_secs = millis_to_secs("ERROR_WINDOW", value)?;
    }

    apply_extra(
        raw,
        get("EXTRA_BASE_URL"),
        get("EXTRA_ROUTE_PREFIX"),
        get("EXTRA_API_KEY"),
    )?;

    for (name, setter) in OVERRIDES {
        if let Some(value) = get(name) {
            setter(raw, value).map_err(|message| env_error(name, message))?;
        }
    }
    Ok(())
}

/// The variables that configure one well-known endpoint.
struct ProviderVars {
    id: &'static str,
    key: &'static str,
    url: &'static str,
    /// Legacy "host" form; a value without a scheme gets `https://`.
    host: &'static str,
}

/// `EXTRA_BASE_URL`/`EXTRA_ROUTE_PREFIX`/`EXTRA_API_KEY` → endpoints
/// `extra1`, `extra2`, ... Items pair up by position, so empty items are kept
/// (an empty prefix means none, an empty key means no key).
fn apply_extra(
    raw: &mut RawConfig,
    urls: Option<&str>,
    prefixes: Option<&str>,
    keys: Option<&str>,
) -> Result<(), ConfigError> {
    let positional = |text: Option<&str>| -> Vec<String> {
        text.map(|t| t.split(',').map(|item| item.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    let (urls, prefixes, keys) = (positional(urls), positional(prefixes), positional(keys));
    if urls.len() != prefixes.len() {
        let message = format!(
            "expected one item per EXTRA_BASE_URL item ({}), got {}",
            urls.len(),
            prefixes.len()
        );
        return Err(env_error("EXTRA_ROUTE_PREFIX", message));
    }
    if keys.len() > urls.len() {
        let message = format!(
            "expected at most one key per EXTRA_BASE_URL item ({})",
            urls.len()
        );
        return Err(env_error("EXTRA_API_KEY", message));
    }
    for (index, (url, prefix)) in urls.into_iter().zip(prefixes).enumerate() {
        let endpoint = endpoint_mut(raw, &format!("extra{}", index + 1), "openai_compatible");
        endpoint.base_url = Some(url);
        endpoint.route_prefix = prefix;
        if let Some(key) = keys.get(index).filter(|key| !key.is_empty()) {
            endpoint.keys = vec![key.clone()];
        }
    }
    Ok(())
}

/// The endpoint with `id`, appended with defaults if the file has none.
fn endpoint_mut<'a>(raw: &'a mut RawConfig, id: &str, provider: &str) -> &'a mut RawEndpoint {
    let index = match raw.endpoints.iter().position(|e| e.id == id) {
        Some(index) => index,
        None => {
            raw.endpoints.push(RawEndpoint::new(id, provider));
            raw.endpoints.len() - 1
        }
    };
    &mut raw.endpoints[index]
}

fn with_scheme(host: &str) -> String {
    if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    }
}

/// Milliseconds → whole seconds, rounded up, at least 1.
fn millis_to_secs(var: &str, value: &str) -> Result<i64, ConfigError> {
    let millis: u64 = value
        .parse()
        .map_err(|_| env_error(var, "expected a number of milliseconds"))?;
    Ok(i64::try_from(millis.div_ceil(1000).max(1)).unwrap_or(i64::MAX))
}

fn env_error(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Env {
        var: var.to_owned(),
        message: message.into(),
    }
}
