//! RateLimiter: one per endpoint, owning its RPM (sliding 60 s) and RPD
//! (rolling 24 h) windows. A request takes its slot synchronously, under a
//! mutex held for a few arithmetic operations, on the worker thread that
//! serves it: a message to an actor on another thread cost two thread
//! switches per request (BENCHMARKS.md, hot spot 3). The actor owns the
//! persistence: it writes the windows to disk once a second when they
//! changed, and when the endpoint leaves the config and its last request
//! ends, so a restart does not reset the counts.
//!
//! With `[storage] backend = "redis"` there is no actor: the handle asks the
//! shared windows in Redis (one atomic script per request, same buckets), and
//! while Redis is down follows `on_redis_down_quotas` (fail_closed refuses
//! with a 1 s Retry-After, fail_open admits uncounted).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use super::lock;
use crate::config::{EndpointConfig, Limit};
use crate::error::GatewayError;
use crate::limits::{now_ms, RateWindow};
use crate::storage::redis::endpoint::EndpointWindows;
use crate::storage::redis::policy::{when_down, RETRY_WHILE_DOWN};
use crate::storage::redis::RedisShared;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
const PERSIST_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RateSnapshot {
    pub rpm: u64,
    pub rpd: u64,
    /// False when a window is full (or a limit is 0).
    pub has_room: bool,
}

// ---- state ----

/// One endpoint's windows and limits.
pub struct Windows {
    endpoint_id: String,
    rpm_limit: Limit,
    rpd_limit: Limit,
    rpm: RateWindow,
    rpd: RateWindow,
    dirty: bool,
}

impl Windows {
    /// `stored` is what the counters tree held for this endpoint, if anything.
    pub fn new(
        endpoint_id: &str,
        rpm_limit: Limit,
        rpd_limit: Limit,
        stored: &[(Vec<u8>, Vec<u8>)],
    ) -> Self {
        let find = |suffix: &str, window: Duration| {
            let key = format!("{endpoint_id}/{suffix}");
            stored
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .and_then(|(_, v)| RateWindow::restore(v, window))
                .unwrap_or_else(|| RateWindow::new(window))
        };
        Windows {
            endpoint_id: endpoint_id.to_string(),
            rpm_limit,
            rpd_limit,
            rpm: find("rpm", MINUTE),
            rpd: find("rpd", DAY),
            dirty: false,
        }
    }

    /// Both windows must have room; only then is the request counted in both.
    pub fn try_acquire(&mut self, now: u64) -> Result<(), Duration> {
        let wait_minute = wait_for(&mut self.rpm, self.rpm_limit, now);
        let wait_day = wait_for(&mut self.rpd, self.rpd_limit, now);
        if let Some(wait) = wait_minute.into_iter().chain(wait_day).max() {
            return Err(wait);
        }
        self.rpm.add(now, 1);
        self.rpd.add(now, 1);
        self.dirty = true;
        Ok(())
    }

    /// Counts in the current windows.
    pub fn snapshot(&mut self, now: u64) -> RateSnapshot {
        let has_room = wait_for(&mut self.rpm, self.rpm_limit, now).is_none()
            && wait_for(&mut self.rpd, self.rpd_limit, now).is_none();
        RateSnapshot {
            rpm: self.rpm.count(now),
            rpd: self.rpd.count(now),
            has_room,
        }
    }

    /// The persisted form; clears the dirty mark.
    fn take_ops(&mut self) -> Vec<StoreOp> {
        self.dirty = false;
        vec![
            StoreOp::Put(
                format!("{}/rpm", self.endpoint_id).into_bytes(),
                self.rpm.to_bytes(),
            ),
            StoreOp::Put(
                format!("{}/rpd", self.endpoint_id).into_bytes(),
                self.rpd.to_bytes(),
            ),
        ]
    }
}

/// How long until `window` has room under `limit`, if it has none now.
fn wait_for(window: &mut RateWindow, limit: Limit, now: u64) -> Option<Duration> {
    match limit {
        Limit::Unlimited => None,
        Limit::Max(max) if window.count(now) >= max => Some(window.time_until_below(now, max)),
        Limit::Max(_) => None,
    }
}

// ---- actor: persistence ----

/// Writes the windows to disk when they changed.
pub struct RateLimiter {
    windows: Arc<Mutex<Windows>>,
    writer: Addr<DiskWriter>,
}

impl RateLimiter {
    fn persist(&self, only_if_dirty: bool) {
        let ops = {
            let mut windows = lock(&self.windows);
            if only_if_dirty && !windows.dirty {
                return;
            }
            windows.take_ops()
        };
        self.writer.do_send(WriteBatch {
            tree: Tree::Counters,
            ops,
        });
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| actor.persist(true));
    }

    /// The endpoint left the config and the last request that used it ended:
    /// what it counted is kept for the day it comes back.
    fn stopped(&mut self, _: &mut Self::Context) {
        self.persist(true);
    }
}

// ---- handle ----

/// The one way to an endpoint's limits, whichever backend holds them.
#[derive(Clone)]
pub struct RateLimiterHandle(Backend);

#[derive(Clone)]
enum Backend {
    Local {
        windows: Arc<Mutex<Windows>>,
        /// Keeps the persisting actor alive while the endpoint is in use.
        _persister: Addr<RateLimiter>,
    },
    Shared(EndpointWindows),
}

impl RateLimiterHandle {
    /// The endpoint's limiter: its windows in Redis when `redis` is given,
    /// else in this process, restored from what `stored` (the counters tree)
    /// holds. Must run inside an actix `System`.
    pub fn start(
        endpoint: &EndpointConfig,
        stored: &[(Vec<u8>, Vec<u8>)],
        writer: Addr<DiskWriter>,
        redis: Option<&RedisShared>,
    ) -> Self {
        match redis {
            Some(redis) => RateLimiterHandle(Backend::Shared(EndpointWindows::new(
                redis.clone(),
                &endpoint.id,
                endpoint.rpm,
                endpoint.rpd,
            ))),
            None => RateLimiterHandle::local(
                Windows::new(&endpoint.id, endpoint.rpm, endpoint.rpd, stored),
                writer,
            ),
        }
    }

    /// Windows of this process, persisted through `writer`.
    pub fn local(windows: Windows, writer: Addr<DiskWriter>) -> Self {
        let windows = Arc::new(Mutex::new(windows));
        let persister = RateLimiter {
            windows: windows.clone(),
            writer,
        }
        .start();
        RateLimiterHandle(Backend::Local {
            windows,
            _persister: persister,
        })
    }

    /// The same counters under `endpoint`'s (reloaded) limits.
    pub fn with_limits(&self, endpoint: &EndpointConfig) -> Self {
        match &self.0 {
            Backend::Local { windows, .. } => {
                let mut windows = lock(windows);
                windows.rpm_limit = endpoint.rpm;
                windows.rpd_limit = endpoint.rpd;
                drop(windows);
                self.clone()
            }
            Backend::Shared(windows) => RateLimiterHandle(Backend::Shared(EndpointWindows::new(
                windows.redis().clone(),
                &endpoint.id,
                endpoint.rpm,
                endpoint.rpd,
            ))),
        }
    }

    pub async fn try_acquire(&self) -> Result<Result<(), Duration>, GatewayError> {
        match &self.0 {
            Backend::Local { windows, .. } => Ok(lock(windows).try_acquire(now_ms())),
            Backend::Shared(windows) => Ok(match windows.try_acquire().await {
                Ok(answer) => answer,
                Err(_) => when_down(
                    windows.redis().quotas_policy(),
                    Ok(()),
                    Err(RETRY_WHILE_DOWN),
                ),
            }),
        }
    }

    pub async fn snapshot(&self) -> Result<RateSnapshot, GatewayError> {
        match &self.0 {
            Backend::Local { windows, .. } => Ok(lock(windows).snapshot(now_ms())),
            Backend::Shared(windows) => Ok(match windows.counts().await {
                Ok(counts) => RateSnapshot {
                    rpm: counts.rpm,
                    rpd: counts.rpd,
                    has_room: counts.has_room,
                },
                Err(_) => RateSnapshot {
                    rpm: 0,
                    rpd: 0,
                    has_room: when_down(windows.redis().quotas_policy(), true, false),
                },
            }),
        }
    }

    /// What to write to disk at shutdown (nothing when Redis holds it).
    pub async fn take_state(&self) -> Result<Vec<StoreOp>, GatewayError> {
        match &self.0 {
            Backend::Local { windows, .. } => Ok(lock(windows).take_ops()),
            Backend::Shared(_) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_windows_must_have_room_and_limits_change_in_place() {
        let mut windows = Windows::new("e", Limit::Max(2), Limit::Max(3), &[]);
        let now = 10_000_000;
        assert_eq!(windows.try_acquire(now), Ok(()));
        assert_eq!(windows.try_acquire(now), Ok(()));
        assert!(windows.try_acquire(now).is_err(), "rpm 2");
        // A minute later the minute window has room, the day has one slot.
        assert_eq!(windows.try_acquire(now + 61_000), Ok(()));
        assert!(windows.try_acquire(now + 61_001).is_err(), "rpd 3");
        let snapshot = windows.snapshot(now + 61_002);
        assert_eq!(
            (snapshot.rpm, snapshot.rpd, snapshot.has_room),
            (1, 3, false)
        );

        windows.rpd_limit = Limit::Unlimited;
        assert_eq!(windows.try_acquire(now + 61_003), Ok(()));
        let ops = windows.take_ops();
        assert!(!windows.dirty);
        let restored = Windows::new(
            "e",
            Limit::Unlimited,
            Limit::Unlimited,
            &ops.into_iter()
                .filter_map(|op| match op {
                    StoreOp::Put(k, v) => Some((k, v)),
                    StoreOp::Delete(_) => None,
                })
                .collect::<Vec<_>>(),
        );
        let mut restored = restored;
        assert_eq!(restored.snapshot(now + 61_004).rpd, 4);
    }
}
