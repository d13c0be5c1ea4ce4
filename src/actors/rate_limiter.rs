//! RateLimiter: one actor per endpoint, owning its RPM (sliding 60 s) and RPD
//! (rolling 24 h) windows. State is written to disk once a second when it
//! changed, and on shutdown, so a restart does not reset the counts.
//!
//! With `[storage] backend = "redis"` there is no actor: the handle asks the
//! shared windows in Redis (one atomic script per request, same buckets), and
//! while Redis is down follows `on_redis_down_quotas` (fail_closed refuses
//! with a 1 s Retry-After, fail_open admits uncounted).

use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

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

// ---- messages ----

/// Take one request slot in both windows, or learn how long until one frees.
#[derive(Message)]
#[rtype(result = "Result<(), Duration>")]
pub struct TryAcquire;

/// Current counts, for `/v1/status` and selection.
#[derive(Message)]
#[rtype(result = "RateSnapshot")]
pub struct Snapshot;

/// The windows' persisted form, handed over at shutdown.
#[derive(Message)]
#[rtype(result = "Vec<StoreOp>")]
pub struct TakeState;

/// New limits after a config reload; the counts stay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLimits {
    pub rpm: Limit,
    pub rpd: Limit,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RateSnapshot {
    pub rpm: u64,
    pub rpd: u64,
    /// False when a window is full (or a limit is 0).
    pub has_room: bool,
}

// ---- actor ----

pub struct RateLimiter {
    endpoint_id: String,
    rpm_limit: Limit,
    rpd_limit: Limit,
    rpm: RateWindow,
    rpd: RateWindow,
    dirty: bool,
    writer: Addr<DiskWriter>,
}

impl RateLimiter {
    /// `stored` is what the counters tree held for this endpoint, if anything.
    pub fn new(
        endpoint_id: &str,
        rpm_limit: Limit,
        rpd_limit: Limit,
        stored: &[(Vec<u8>, Vec<u8>)],
        writer: Addr<DiskWriter>,
    ) -> Self {
        let find = |suffix: &str, window: Duration| {
            let key = format!("{endpoint_id}/{suffix}");
            stored
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .and_then(|(_, v)| RateWindow::restore(v, window))
                .unwrap_or_else(|| RateWindow::new(window))
        };
        RateLimiter {
            endpoint_id: endpoint_id.to_string(),
            rpm_limit,
            rpd_limit,
            rpm: find("rpm", MINUTE),
            rpd: find("rpd", DAY),
            dirty: false,
            writer,
        }
    }

    fn state_ops(&self) -> Vec<StoreOp> {
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

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| {
            if actor.dirty {
                actor.dirty = false;
                actor.writer.do_send(WriteBatch {
                    tree: Tree::Counters,
                    ops: actor.state_ops(),
                });
            }
        });
    }

    /// The endpoint left the config and the last request that used it ended:
    /// what it counted is kept for the day it comes back.
    fn stopped(&mut self, _: &mut Self::Context) {
        if self.dirty {
            self.writer.do_send(WriteBatch {
                tree: Tree::Counters,
                ops: self.state_ops(),
            });
        }
    }
}

impl Handler<SetLimits> for RateLimiter {
    type Result = ();
    fn handle(&mut self, msg: SetLimits, _: &mut Self::Context) {
        self.rpm_limit = msg.rpm;
        self.rpd_limit = msg.rpd;
    }
}

/// Both windows must have room; only then is the request counted in both.
impl Handler<TryAcquire> for RateLimiter {
    type Result = Result<(), Duration>;
    fn handle(&mut self, _: TryAcquire, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
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
}

/// Counts in the current windows.
impl Handler<Snapshot> for RateLimiter {
    type Result = MessageResult<Snapshot>;
    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        let has_room = wait_for(&mut self.rpm, self.rpm_limit, now).is_none()
            && wait_for(&mut self.rpd, self.rpd_limit, now).is_none();
        MessageResult(RateSnapshot {
            rpm: self.rpm.count(now),
            rpd: self.rpd.count(now),
            has_room,
        })
    }
}

/// Hands the current state to the shutdown sequence.
impl Handler<TakeState> for RateLimiter {
    type Result = MessageResult<TakeState>;
    fn handle(&mut self, _: TakeState, _: &mut Self::Context) -> Self::Result {
        self.dirty = false;
        MessageResult(self.state_ops())
    }
}

// ---- handle ----

/// The one way to an endpoint's limits, whichever backend holds them.
#[derive(Clone)]
pub struct RateLimiterHandle(Backend);

#[derive(Clone)]
enum Backend {
    Local(Addr<RateLimiter>),
    Shared(EndpointWindows),
}

impl RateLimiterHandle {
    /// The endpoint's limiter: its windows in Redis when `redis` is given,
    /// else an actor in this process restoring what `stored` (the counters
    /// tree) holds. Must run inside an actix `System`.
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
                RateLimiter::new(&endpoint.id, endpoint.rpm, endpoint.rpd, stored, writer).start(),
            ),
        }
    }

    /// The same counters under `endpoint`'s (reloaded) limits.
    pub fn with_limits(&self, endpoint: &EndpointConfig) -> Self {
        match &self.0 {
            Backend::Local(addr) => {
                addr.do_send(SetLimits {
                    rpm: endpoint.rpm,
                    rpd: endpoint.rpd,
                });
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

    /// A handle on an actor already started.
    pub fn local(addr: Addr<RateLimiter>) -> Self {
        RateLimiterHandle(Backend::Local(addr))
    }

    pub async fn try_acquire(&self) -> Result<Result<(), Duration>, GatewayError> {
        match &self.0 {
            Backend::Local(addr) => addr
                .send(TryAcquire)
                .await
                .map_err(|e| super::mailbox_error("RateLimiter", e)),
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
            Backend::Local(addr) => addr
                .send(Snapshot)
                .await
                .map_err(|e| super::mailbox_error("RateLimiter", e)),
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
            Backend::Local(addr) => addr
                .send(TakeState)
                .await
                .map_err(|e| super::mailbox_error("RateLimiter", e)),
            Backend::Shared(_) => Ok(Vec::new()),
        }
    }
}
