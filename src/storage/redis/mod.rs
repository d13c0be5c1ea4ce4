//! Shared state in Redis, for several gateway instances behind one load
//! balancer: every limit they must enforce together is checked and consumed
//! by one Lua script per decision, so N instances can never together exceed
//! a limit (no read-then-write between them).
//!
//! Sliding windows use the bucket scheme of [`crate::limits::RateWindow`]
//! (60 buckets per window, one hash per window: bucket start → count, with a
//! TTL), so the sled and Redis backends admit the same requests. Clocks are
//! the Redis server's (`TIME`), one clock for every instance.
//!
//! Layout:
//! - `mod.rs`: [`RedisShared`], the connection (reconnecting by itself) and
//!   the one place a call can fail; key names.
//! - `policy.rs`: up/down tracking, logged once per transition, and the
//!   probe that notices recovery.
//! - `scripts.rs` and `lua/`: the scripts, each prefixed by `lua/window.lua`.
//! - `endpoint.rs`: endpoint RPM/RPD; `blacklist.rs`: per-IP limits, errors
//!   and bans; `users.rs`: user RPM/TPM/concurrency/quotas; `cooldowns.rs`:
//!   upstream key cooldowns, stored and broadcast.
//!
//! Standalone Redis (or a primary): the ban list reads each banned IP's
//! error window by name, which Redis Cluster does not allow in a script.

pub mod blacklist;
pub mod cooldowns;
pub mod endpoint;
pub mod policy;
mod scripts;
pub mod users;

#[cfg(test)]
#[path = "../../../tests/common/redis_server.rs"]
pub(crate) mod test_server;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, ScriptInvocation};

use crate::config::{DownPolicy, StorageConfig};
pub use policy::Availability;
use scripts::Scripts;

/// Redis did not answer (down, unreachable, too slow) or refused a script.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis is unavailable: {0}")]
pub struct RedisDown(pub String);

/// The connection every shared limit uses, cheap to clone.
#[derive(Clone)]
pub struct RedisShared {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    client: ::redis::Client,
    prefix: String,
    timeout: Duration,
    quotas: DownPolicy,
    ip_limits: DownPolicy,
    availability: Availability,
    scripts: Scripts,
}

impl RedisShared {
    /// Prepares the connection without waiting for it (the first call
    /// connects; a Redis that is down at start makes the gateway start
    /// degraded rather than not at all). Must run inside a Tokio runtime.
    pub fn connect(config: &StorageConfig) -> Result<Self, RedisDown> {
        let client = ::redis::Client::open(config.redis_url.expose())
            .map_err(|e| RedisDown(format!("storage.redis_url: {e}")))?;
        // One connection attempt per call while Redis is away: a request
        // must not wait through a backoff schedule.
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(config.redis_timeout))
            .set_response_timeout(Some(config.redis_timeout));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| RedisDown(e.to_string()))?;
        let shared = RedisShared {
            inner: Arc::new(Inner {
                connection,
                client,
                prefix: config.key_prefix.clone(),
                timeout: config.redis_timeout,
                quotas: config.on_redis_down_quotas,
                ip_limits: config.on_redis_down_ip_limits,
                availability: Availability::default(),
                scripts: Scripts::new(),
            }),
        };
        policy::spawn_probe(&shared);
        Ok(shared)
    }

    /// What endpoint RPM/RPD and user RPM/TPM/quotas do while Redis is down.
    pub fn quotas_policy(&self) -> DownPolicy {
        self.inner.quotas
    }

    /// What per-IP limits and the blacklist do while Redis is down.
    pub fn ip_limits_policy(&self) -> DownPolicy {
        self.inner.ip_limits
    }

    /// Whether the last call reached Redis.
    pub fn is_up(&self) -> bool {
        self.inner.availability.is_up()
    }

    /// A round trip (`PING`), recording whether Redis answered.
    pub async fn ping(&self) -> Result<(), RedisDown> {
        let mut connection = self.inner.connection.clone();
        let ping = ::redis::cmd("PING");
        let call = ping.query_async::<String>(&mut connection);
        self.settle(tokio::time::timeout(self.inner.timeout, call).await)
            .map(|_| ())
    }

    /// Runs a script invocation, bounded by the configured timeout.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, RedisDown> {
        let mut connection = self.inner.connection.clone();
        let call = invocation.invoke_async::<T>(&mut connection);
        self.settle(tokio::time::timeout(self.inner.timeout, call).await)
    }

    /// Runs one plain command, bounded by the configured timeout.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        command: &::redis::Cmd,
    ) -> Result<T, RedisDown> {
        let mut connection = self.inner.connection.clone();
        let call = command.query_async::<T>(&mut connection);
        self.settle(tokio::time::timeout(self.inner.timeout, call).await)
    }

    fn settle<T>(
        &self,
        outcome: Result<::redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, RedisDown> {
        match outcome {
            Ok(Ok(value)) => {
                self.inner.availability.mark_up();
                Ok(value)
            }
            Ok(Err(e)) if is_connectivity(&e) => {
                let reason = e.to_string();
                self.inner.availability.mark_down(&reason, self);
                Err(RedisDown(reason))
            }
            Ok(Err(e)) => {
                // Redis answered, so it is up; the script or data is wrong.
                log::error!("Redis refused a limit script: {e}");
                Err(RedisDown(e.to_string()))
            }
            Err(_) => {
                let reason = format!("no answer within {:?}", self.inner.timeout);
                self.inner.availability.mark_down(&reason, self);
                Err(RedisDown(reason))
            }
        }
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    pub(crate) fn client(&self) -> &::redis::Client {
        &self.inner.client
    }

    /// A key under the configured prefix: `<prefix><kind>:{<id>}:<part>`.
    /// The braces make one owner's keys one Redis hash slot.
    pub(crate) fn key(&self, kind: &str, id: &str, part: &str) -> String {
        format!("{}{kind}:{{{id}}}:{part}", self.inner.prefix)
    }

    /// A key under the configured prefix with no owner: `<prefix><name>`.
    pub(crate) fn global_key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }
}

/// Errors meaning "Redis cannot be reached" rather than "Redis said no".
fn is_connectivity(e: &::redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// Window lengths in ms, as [`crate::limits::RateWindow::new`] rounds them.
pub(crate) fn window_ms(window: Duration) -> u64 {
    (window.as_millis() as u64).max(60)
}

/// A limit as the scripts take it: -1 for none.
pub(crate) fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
impl test_server::RedisServer {
    /// A handle on this server with its own key prefix (one per test).
    pub(crate) fn shared(&self, prefix: &str) -> RedisShared {
        let config = StorageConfig {
            backend: crate::config::StorageBackend::Redis,
            redis_url: crate::config::Secret::new(self.url()),
            key_prefix: prefix.to_owned(),
            redis_timeout: Duration::from_secs(1),
            on_redis_down_quotas: DownPolicy::FailClosed,
            on_redis_down_ip_limits: DownPolicy::FailOpen,
        };
        RedisShared::connect(&config).unwrap()
    }
}
