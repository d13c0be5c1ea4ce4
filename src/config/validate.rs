//! Raw → runtime: range checks, parsing and secret resolution.
//!
//! Every error is a [`ConfigError::Invalid`] whose `path` is the TOML key
//! (`limits.max_attempts`, `endpoints[1].rpm`, `auth.client_keys[0]`), so the
//! message points at the line to fix no matter where the value came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawAuth, RawConfig, RawLimits, RawLog, RawRealtime, RawServer};
use super::runtime::{
    AuthConfig, LimitsConfig, LogConfig, RealtimeConfig, RoutingConfig, ServerConfig, Strategy,
};
use super::{endpoint, secret, Config, ConfigError, Secret};

pub(crate) const EXPECTED_LISTEN: &str = "expected a socket address like 127.0.0.1:6543";
pub(crate) const EXPECTED_PROXY: &str = "expected an IP address or a CIDR like 10.0.0.0/8";
pub(crate) const EXPECTED_LEVEL: &str = "expected one of off, error, warn, info, debug, trace";

/// Checks and resolves the whole raw config.
pub(crate) fn validate(
    raw: RawConfig,
    env: &BTreeMap<String, String>,
    source: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let server = server(&raw.server)?;
    let auth = auth(&raw.auth, server.listen, env)?;
    let limits = limits(&raw.limits)?;
    let strategy = Strategy::from_name(&raw.routing.strategy)
        .ok_or_else(|| invalid("routing.strategy", Strategy::EXPECTED))?;
    let log = log_config(&raw.log, &server.data_dir)?;
    let realtime = realtime(&raw.realtime)?;
    let endpoints = endpoint::validate_all(raw.endpoints, env)?;
    Ok(Config {
        server,
        auth,
        limits,
        routing: RoutingConfig { strategy },
        log,
        realtime,
        users: super::users::validate(&raw.users)?,
        storage: super::storage::validate(&raw.storage, env)?,
        pricing: super::pricing::validate("pricing", &raw.pricing)?,
        route_index: crate::pipeline::route_index::RouteIndex::build(&endpoints),
        endpoints,
        source,
        overrides: Default::default(),
    })
}

fn server(raw: &RawServer) -> Result<ServerConfig, ConfigError> {
    let listen =
        parse_listen(&raw.listen).ok_or_else(|| invalid("server.listen", EXPECTED_LISTEN))?;
    let workers = match at_least("server.workers", raw.workers, 0)? {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => usize::try_from(n)
            .map_err(|_| invalid("server.workers", "expected a smaller integer"))?,
    };
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_proxy(text)
                .ok_or_else(|| invalid(format!("server.trusted_proxies[{i}]"), EXPECTED_PROXY))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_body_mb = positive("server.max_body_mb", raw.max_body_mb)?;
    let max_body_bytes = max_body_mb
        .checked_mul(1024 * 1024)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| invalid("server.max_body_mb", "expected a smaller integer"))?;
    Ok(ServerConfig {
        listen,
        workers,
        data_dir: raw.data_dir.clone(),
        trusted_proxies,
        max_body_bytes,
        connect_timeout: Duration::from_secs(positive(
            "server.connect_timeout_secs",
            raw.connect_timeout_secs,
        )?),
        request_timeout: Duration::from_secs(positive(
            "server.request_timeout_secs",
            raw.request_timeout_secs,
        )?),
    })
}

fn auth(
    raw: &RawAuth,
    listen: SocketAddr,
    env: &BTreeMap<String, String>,
) -> Result<AuthConfig, ConfigError> {
    if raw.allow_anonymous && !listen.ip().is_loopback() && !raw.force_anonymous {
        return Err(invalid(
            "auth.allow_anonymous",
            format!(
                "refused on the non-loopback listen address {listen}; \
                 set auth.force_anonymous = true to expose an open gateway"
            ),
        ));
    }
    let weight = at_least("auth.invalid_key_weight", raw.invalid_key_weight, 1)?;
    Ok(AuthConfig {
        client_keys: resolve_keys("auth.client_keys", &raw.client_keys, env)?,
        admin_keys: resolve_keys("auth.admin_keys", &raw.admin_keys, env)?,
        passthrough: raw.passthrough,
        allow_anonymous: raw.allow_anonymous,
        invalid_key_weight: u64::try_from(weight).unwrap_or(1),
    })
}

fn limits(raw: &RawLimits) -> Result<LimitsConfig, ConfigError> {
    let max_attempts = at_least("limits.max_attempts", raw.max_attempts, 1)?;
    Ok(LimitsConfig {
        ip_requests: off_or_count("limits.ip_requests", raw.ip_requests)?,
        ip_interval: Duration::from_secs(positive(
            "limits.ip_interval_secs",
            raw.ip_interval_secs,
        )?),
        ip_error_threshold: off_or_count("limits.ip_error_threshold", raw.ip_error_threshold)?,
        ip_error_window: Duration::from_secs(positive(
            "limits.ip_error_window_secs",
            raw.ip_error_window_secs,
        )?),
        max_attempts: u32::try_from(max_attempts)
            .map_err(|_| invalid("limits.max_attempts", "expected a smaller integer"))?,
        blocked_cidrs: raw
            .blocked_cidrs
            .iter()
            .enumerate()
            .map(|(i, text)| {
                parse_proxy(text)
                    .ok_or_else(|| invalid(format!("limits.blocked_cidrs[{i}]"), EXPECTED_PROXY))
            })
            .collect::<Result<_, _>>()?,
        reject_phrases: raw
            .reject_phrases
            .iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect(),
    })
}

fn realtime(raw: &RawRealtime) -> Result<RealtimeConfig, ConfigError> {
    let max_sessions_per_user =
        off_or_count("realtime.max_sessions_per_user", raw.max_sessions_per_user)?
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    invalid(
                        "realtime.max_sessions_per_user",
                        "expected a smaller integer",
                    )
                })
            })
            .transpose()?;
    let max_queued_bytes =
        usize::try_from(positive("realtime.max_queued_bytes", raw.max_queued_bytes)?)
            .map_err(|_| invalid("realtime.max_queued_bytes", "expected a smaller integer"))?;
    Ok(RealtimeConfig {
        max_sessions_per_user,
        idle_timeout: Duration::from_secs(positive(
            "realtime.idle_timeout_secs",
            raw.idle_timeout_secs,
        )?),
        max_queued_bytes,
    })
}

fn log_config(raw: &RawLog, data_dir: &std::path::Path) -> Result<LogConfig, ConfigError> {
    let level = parse_level(&raw.level).ok_or_else(|| invalid("log.level", EXPECTED_LEVEL))?;
    let dir = if raw.dir.is_absolute() {
        raw.dir.clone()
    } else {
        data_dir.join(&raw.dir)
    };
    Ok(LogConfig { level, dir })
}

/// Resolves a list of key references; errors are reported as `path[i]`.
pub(crate) fn resolve_keys(
    path: &str,
    references: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Vec<Secret>, ConfigError> {
    references
        .iter()
        .enumerate()
        .map(|(i, reference)| {
            secret::resolve(reference, env)
                .map_err(|message| invalid(format!("{path}[{i}]"), message))
        })
        .collect()
}

pub(crate) fn parse_listen(text: &str) -> Option<SocketAddr> {
    text.trim().parse().ok()
}

/// A CIDR, or a bare IP meaning the single host (/32 or /128).
pub(crate) fn parse_proxy(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

pub(crate) fn parse_level(text: &str) -> Option<log::LevelFilter> {
    text.trim().parse().ok()
}

pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// `value >= min`, as the integer it is.
pub(crate) fn at_least(path: &str, value: i64, min: i64) -> Result<i64, ConfigError> {
    if value >= min {
        Ok(value)
    } else {
        Err(invalid(path, format!("expected an integer >= {min}")))
    }
}

/// `value > 0`.
pub(crate) fn positive(path: &str, value: i64) -> Result<u64, ConfigError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(path, "expected an integer > 0"))
}

/// `-1` = off, otherwise a count `>= 0`.
fn off_or_count(path: &str, value: i64) -> Result<Option<u64>, ConfigError> {
    match at_least(path, value, -1)? {
        -1 => Ok(None),
        n => Ok(u64::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ips_become_host_networks() {
        assert_eq!(parse_proxy("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_proxy("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(parse_proxy("ten").is_none());
    }

    #[test]
    fn range_messages() {
        let err = at_least("limits.max_attempts", 0, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "limits.max_attempts: expected an integer >= 1"
        );
        let err = positive("server.max_body_mb", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server.max_body_mb: expected an integer > 0"
        );
        assert_eq!(off_or_count("x", -1).unwrap(), None);
        assert_eq!(off_or_count("x", 0).unwrap(), Some(0));
    }

    #[test]
    fn realtime_defaults_and_ranges() {
        let defaults = realtime(&RawRealtime::default()).unwrap();
        assert_eq!(defaults.max_sessions_per_user, Some(5));
        assert_eq!(defaults.idle_timeout, Duration::from_secs(300));
        assert_eq!(defaults.max_queued_bytes, 4 * 1024 * 1024);
        let uncapped = RawRealtime {
            max_sessions_per_user: -1,
            ..RawRealtime::default()
        };
        assert_eq!(realtime(&uncapped).unwrap().max_sessions_per_user, None);
        let bad = RawRealtime {
            max_queued_bytes: 0,
            ..RawRealtime::default()
        };
        assert_eq!(
            realtime(&bad).unwrap_err().to_string(),
            "realtime.max_queued_bytes: expected an integer > 0"
        );
    }

    #[test]
    fn log_dir_joins_data_dir_unless_absolute() {
        let raw = RawLog {
            level: "DEBUG".into(),
            dir: "logs".into(),
        };
        let log = log_config(&raw, std::path::Path::new("/srv/aigate")).unwrap();
        assert_eq!(log.dir, PathBuf::from("/srv/aigate/logs"));
        assert_eq!(log.level, log::LevelFilter::Debug);
        let raw = RawLog {
            level: "info".into(),
            dir: "/var/log/aigate".into(),
        };
        assert_eq!(
            log_config(&raw, std::path::Path::new("d")).unwrap().dir,
            PathBuf::from("/var/log/aigate")
        );
    }
}
