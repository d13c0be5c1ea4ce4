//! `[storage]`: where shared state lives. `sled` (the default) keeps every
//! counter in this process and its data directory; `redis` puts the limits
//! that several instances must enforce together (endpoint RPM/RPD, per-IP
//! limits and bans, user RPM/TPM and quotas, key cooldowns) in one Redis, and
//! says what to do when Redis does not answer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::validate::{invalid, positive};
use super::{secret, ConfigError, Secret};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawStorage {
    /// `sled` or `redis`.
    pub backend: String,
    /// A `redis://` or `unix://` URL, or an `env:`/`file:` reference to one
    /// (it may carry a password).
    pub redis_url: String,
    /// Prepended to every Redis key, so several gateways can share a Redis.
    pub key_prefix: String,
    /// Longest wait for one Redis round trip before it counts as down.
    pub redis_timeout_ms: i64,
    /// Endpoint RPM/RPD, user RPM/TPM and token quotas when Redis is down.
    pub on_redis_down_quotas: String,
    /// Per-IP request limit and blacklist when Redis is down.
    pub on_redis_down_ip_limits: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            backend: "sled".to_owned(),
            redis_url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: "aigate:".to_owned(),
            redis_timeout_ms: 1000,
            on_redis_down_quotas: "fail_closed".to_owned(),
            on_redis_down_ip_limits: "fail_open".to_owned(),
        }
    }
}

/// Which store holds the shared counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    Sled,
    Redis,
}

/// What a limit does while Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownPolicy {
    /// Let the request through, uncounted.
    FailOpen,
    /// Refuse the request (429 with a short Retry-After).
    FailClosed,
}

impl DownPolicy {
    pub const EXPECTED: &'static str = "expected fail_open or fail_closed";

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fail_open" => Some(Self::FailOpen),
            "fail_closed" => Some(Self::FailClosed),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FailOpen => "fail_open",
            Self::FailClosed => "fail_closed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub redis_url: Secret,
    pub key_prefix: String,
    pub redis_timeout: Duration,
    pub on_redis_down_quotas: DownPolicy,
    pub on_redis_down_ip_limits: DownPolicy,
}

pub(crate) fn validate(
    raw: &RawStorage,
    env: &BTreeMap<String, String>,
) -> Result<StorageConfig, ConfigError> {
    let backend = match raw.backend.trim().to_ascii_lowercase().as_str() {
        "sled" => StorageBackend::Sled,
        "redis" => StorageBackend::Redis,
        _ => return Err(invalid("storage.backend", "expected sled or redis")),
    };
    // Only resolved when used: an `env:` reference may be unset on a
    // single-instance machine.
    let redis_url = match backend {
        StorageBackend::Sled => Secret::new(raw.redis_url.clone()),
        StorageBackend::Redis => secret::resolve(&raw.redis_url, env)
            .map_err(|message| invalid("storage.redis_url", message))?,
    };
    // No TLS (`rediss://`) in this build: Redis is expected on a private network.
    let scheme_ok = ["redis://", "unix://", "redis+unix://"]
        .iter()
        .any(|scheme| redis_url.expose().starts_with(scheme));
    if backend == StorageBackend::Redis && !scheme_ok {
        return Err(invalid(
            "storage.redis_url",
            "expected a URL like redis://127.0.0.1:6379/0",
        ));
    }
    let policy = |path: &str, text: &str| {
        DownPolicy::from_name(text).ok_or_else(|| invalid(path, DownPolicy::EXPECTED))
    };
    Ok(StorageConfig {
        backend,
        redis_url,
        key_prefix: raw.key_prefix.clone(),
        redis_timeout: Duration::from_millis(positive(
            "storage.redis_timeout_ms",
            raw.redis_timeout_ms,
        )?),
        on_redis_down_quotas: policy("storage.on_redis_down_quotas", &raw.on_redis_down_quotas)?,
        on_redis_down_ip_limits: policy(
            "storage.on_redis_down_ip_limits",
            &raw.on_redis_down_ip_limits,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        validate(&raw, &BTreeMap::new())
    }

    #[test]
    fn defaults_are_sled_closed_quotas_open_ip_limits() {
        let config = check(RawStorage::default()).unwrap();
        assert_eq!(config.backend, StorageBackend::Sled);
        assert_eq!(config.redis_url.expose(), "redis://127.0.0.1:6379/0");
        assert_eq!(config.key_prefix, "aigate:");
        assert_eq!(config.redis_timeout, Duration::from_secs(1));
        assert_eq!(config.on_redis_down_quotas, DownPolicy::FailClosed);
        assert_eq!(config.on_redis_down_ip_limits, DownPolicy::FailOpen);
    }

    #[test]
    fn errors_name_the_key() {
        let bad = |raw: RawStorage| check(raw).unwrap_err().to_string();
        assert_eq!(
            bad(RawStorage {
                backend: "etcd".into(),
                ..RawStorage::default()
            }),
            "storage.backend: expected sled or redis"
        );
        assert_eq!(
            bad(RawStorage {
                on_redis_down_ip_limits: "maybe".into(),
                ..RawStorage::default()
            }),
            "storage.on_redis_down_ip_limits: expected fail_open or fail_closed"
        );
        assert_eq!(
            bad(RawStorage {
                backend: "redis".into(),
                redis_url: "127.0.0.1:6379".into(),
                ..RawStorage::default()
            }),
            "storage.redis_url: expected a URL like redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn url_may_come_from_the_environment_and_never_prints() {
        let env = BTreeMap::from([(
            "REDIS_URL".to_owned(),
            "redis://:hunter2@10.0.0.5:6379/1".to_owned(),
        )]);
        let raw = RawStorage {
            backend: "redis".into(),
            redis_url: "env:REDIS_URL".into(),
            ..RawStorage::default()
        };
        let config = validate(&raw, &env).unwrap();
        assert_eq!(
            config.redis_url.expose(),
            "redis://:hunter2@10.0.0.5:6379/1"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
