//! The list of environment variables, and the table-driven `AIGATE_<SECTION>_<KEY>`
//! overrides.
//!
//! Each generic override is one row: variable name and a setter that parses
//! the text and writes the raw field. Setters check the value's shape so a bad
//! value is reported against the variable name, not a TOML key.

use super::raw::RawConfig;
use super::runtime::Strategy;
use super::validate::{
    parse_level, parse_listen, parse_proxy, EXPECTED_LEVEL, EXPECTED_LISTEN, EXPECTED_PROXY,
};

/// Every environment variable aigate reads, with a one-line description
/// (for the README and `--help`). Empty values count as unset.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PROXY_PORT", "port of server.listen (the host is kept)"),
    ("BASE_PATH", "server.data_dir"),
    ("FORWARD_KEY", "auth.client_keys, comma-separated"),
    (
        "OPENAI_API_KEY",
        "keys of endpoint \"openai\" (created if absent), comma-separated",
    ),
    (
        "OPENAI_BASE_URL",
        "base_url of endpoint \"openai\" (created if absent)",
    ),
    (
        "OPENAI_API_HOST",
        "same as OPENAI_BASE_URL (https:// added if no scheme); OPENAI_BASE_URL wins",
    ),
    (
        "ANTHROPIC_API_KEY",
        "keys of endpoint \"anthropic\" (created if absent), comma-separated",
    ),
    (
        "ANTHROPIC_BASE_URL",
        "base_url of endpoint \"anthropic\" (created if absent)",
    ),
    (
        "CLAUDE_API_HOST",
        "same as ANTHROPIC_BASE_URL (https:// added if no scheme); ANTHROPIC_BASE_URL wins",
    ),
    ("RATE_LIMIT_REQUESTS", "limits.ip_requests (-1 = off)"),
    (
        "RATE_LIMIT_INTERVAL",
        "limits.ip_interval_secs, given in milliseconds (rounded up)",
    ),
    ("IP_ERROR_THRESHOLD", "limits.ip_error_threshold (-1 = off)"),
    (
        "ERROR_WINDOW",
        "limits.ip_error_window_secs, given in milliseconds (rounded up)",
    ),
    (
        "EXTRA_BASE_URL",
        "comma list: base URLs of openai_compatible endpoints extra1, extra2, ...",
    ),
    (
        "EXTRA_ROUTE_PREFIX",
        "comma list, one per EXTRA_BASE_URL item: their route_prefix",
    ),
    (
        "EXTRA_API_KEY",
        "comma list, optional: one key per EXTRA_BASE_URL item, by position",
    ),
    ("AIGATE_SERVER_LISTEN", "server.listen"),
    ("AIGATE_SERVER_WORKERS", "server.workers (0 = one per core)"),
    ("AIGATE_SERVER_DATA_DIR", "server.data_dir"),
    (
        "AIGATE_SERVER_TRUSTED_PROXIES",
        "server.trusted_proxies, comma-separated",
    ),
    ("AIGATE_SERVER_MAX_BODY_MB", "server.max_body_mb"),
    (
        "AIGATE_SERVER_CONNECT_TIMEOUT_SECS",
        "server.connect_timeout_secs",
    ),
    (
        "AIGATE_SERVER_REQUEST_TIMEOUT_SECS",
        "server.request_timeout_secs",
    ),
    (
        "AIGATE_AUTH_CLIENT_KEYS",
        "auth.client_keys, comma-separated",
    ),
    (
        "AIGATE_AUTH_PASSTHROUGH",
        "auth.passthrough (true/false/1/0)",
    ),
    (
        "AIGATE_AUTH_ALLOW_ANONYMOUS",
        "auth.allow_anonymous (true/false/1/0)",
    ),
    (
        "AIGATE_AUTH_FORCE_ANONYMOUS",
        "auth.force_anonymous (true/false/1/0)",
    ),
    ("AIGATE_LIMITS_IP_REQUESTS", "limits.ip_requests (-1 = off)"),
    ("AIGATE_LIMITS_IP_INTERVAL_SECS", "limits.ip_interval_secs"),
    (
        "AIGATE_LIMITS_IP_ERROR_THRESHOLD",
        "limits.ip_error_threshold (-1 = off)",
    ),
    (
        "AIGATE_LIMITS_IP_ERROR_WINDOW_SECS",
        "limits.ip_error_window_secs",
    ),
    ("AIGATE_LIMITS_MAX_ATTEMPTS", "limits.max_attempts"),
    (
        "AIGATE_ROUTING_STRATEGY",
        "routing.strategy (random|round_robin|weighted|least_latency|cost|quota)",
    ),
    (
        "AIGATE_LOG_LEVEL",
        "log.level (off|error|warn|info|debug|trace)",
    ),
    ("AIGATE_LOG_DIR", "log.dir (relative = under data_dir)"),
    (
        "AIGATE_MASTER_KEY",
        "master key for upstream keys stored at runtime, 64 hex or base64 of 32 bytes (read by the vault, not the config)",
    ),
    (
        "AIGATE_MASTER_KEY_FILE",
        "file holding the master key instead of AIGATE_MASTER_KEY (read by the vault, not the config)",
    ),
    (
        "AIGATE_ADMIN_KEY",
        "admin key the users/keys CLI sends to a running server (read by the CLI, not the config)",
    ),
];

/// Parses an env value and stores it; `Err` is the "expected ..." message.
type Setter = fn(&mut RawConfig, &str) -> Result<(), String>;

/// The `AIGATE_*` rows, applied in this order after the legacy variables.
pub(crate) const OVERRIDES: &[(&str, Setter)] = &[
    ("AIGATE_SERVER_LISTEN", |c, v| {
        parse_listen(v).ok_or(EXPECTED_LISTEN)?;
        c.server.listen = v.trim().to_owned();
        Ok(())
    }),
    ("AIGATE_SERVER_WORKERS", |c, v| {
        set(&mut c.server.workers, integer(v)?)
    }),
    ("AIGATE_SERVER_DATA_DIR", |c, v| {
        set(&mut c.server.data_dir, v.into())
    }),
    ("AIGATE_SERVER_TRUSTED_PROXIES", |c, v| {
        let items = list(v);
        if items.iter().any(|item| parse_proxy(item).is_none()) {
            return Err(format!("{EXPECTED_PROXY}, comma-separated"));
        }
        set(&mut c.server.trusted_proxies, items)
    }),
    ("AIGATE_SERVER_MAX_BODY_MB", |c, v| {
        set(&mut c.server.max_body_mb, integer(v)?)
    }),
    ("AIGATE_SERVER_CONNECT_TIMEOUT_SECS", |c, v| {
        set(&mut c.server.connect_timeout_secs, integer(v)?)
    }),
    ("AIGATE_SERVER_REQUEST_TIMEOUT_SECS", |c, v| {
        set(&mut c.server.request_timeout_secs, integer(v)?)
    }),
    ("AIGATE_AUTH_CLIENT_KEYS", |c, v| {
        set(&mut c.auth.client_keys, list(v))
    }),
    ("AIGATE_AUTH_PASSTHROUGH", |c, v| {
        set(&mut c.auth.passthrough, boolean(v)?)
    }),
    ("AIGATE_AUTH_ALLOW_ANONYMOUS", |c, v| {
        set(&mut c.auth.allow_anonymous, boolean(v)?)
    }),
    ("AIGATE_AUTH_FORCE_ANONYMOUS", |c, v| {
        set(&mut c.auth.force_anonymous, boolean(v)?)
    }),
    ("AIGATE_LIMITS_IP_REQUESTS", |c, v| {
        set(&mut c.limits.ip_requests, integer(v)?)
    }),
    ("AIGATE_LIMITS_IP_INTERVAL_SECS", |c, v| {
        set(&mut c.limits.ip_interval_secs, integer(v)?)
    }),
    ("AIGATE_LIMITS_IP_ERROR_THRESHOLD", |c, v| {
        set(&mut c.limits.ip_error_threshold, integer(v)?)
    }),
    ("AIGATE_LIMITS_IP_ERROR_WINDOW_SECS", |c, v| {
        set(&mut c.limits.ip_error_window_secs, integer(v)?)
    }),
    ("AIGATE_LIMITS_MAX_ATTEMPTS", |c, v| {
        set(&mut c.limits.max_attempts, integer(v)?)
    }),
    ("AIGATE_ROUTING_STRATEGY", |c, v| {
        Strategy::from_name(v).ok_or(Strategy::EXPECTED)?;
        set(&mut c.routing.strategy, v.trim().to_owned())
    }),
    ("AIGATE_LOG_LEVEL", |c, v| {
        parse_level(v).ok_or(EXPECTED_LEVEL)?;
        set(&mut c.log.level, v.trim().to_owned())
    }),
    ("AIGATE_LOG_DIR", |c, v| set(&mut c.log.dir, v.into())),
];

fn set<T>(field: &mut T, value: T) -> Result<(), String> {
    *field = value;
    Ok(())
}

pub(crate) fn integer(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected an integer".to_owned())
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (or 1/0)".to_owned()),
    }
}

/// A comma list, items trimmed, empty items dropped.
pub(crate) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_override_is_documented_once() {
        for (name, _) in OVERRIDES {
            let count = ENV_VARS.iter().filter(|(n, _)| n == name).count();
            assert_eq!(count, 1, "{name}");
        }
        // Every AIGATE_ name is either an override or one of the variables
        // read outside the config loader.
        const READ_ELSEWHERE: &[&str] = &[
            "AIGATE_MASTER_KEY",
            "AIGATE_MASTER_KEY_FILE",
            "AIGATE_ADMIN_KEY",
        ];
        let generic = ENV_VARS
            .iter()
            .filter(|(n, _)| n.starts_with("AIGATE_") && !READ_ELSEWHERE.contains(n));
        assert_eq!(generic.count(), OVERRIDES.len());
    }

    #[test]
    fn value_parsers() {
        assert_eq!(list(" a, ,b ,"), vec!["a", "b"]);
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("0"), Ok(false));
        assert!(boolean("maybe").is_err());
        assert_eq!(integer(" -1 "), Ok(-1));
        assert_eq!(integer("x"), Err("expected an integer".to_owned()));
    }
}
