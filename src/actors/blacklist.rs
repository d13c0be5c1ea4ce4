//! Blacklist: everything the gateway knows per client IP. It owns the per-IP
//! request windows (the IP rate limit) as well as the error counts and bans,
//! because the guard step asks both questions of the same IP in one message.
//! Error windows and bans are persisted; request windows live in memory.
//!
//! With `[storage] backend = "redis"` there is no actor: the handle asks the
//! shared per-IP state in Redis (one atomic script per question), so a ban
//! made through one instance holds on all; while Redis is down it follows
//! `on_redis_down_ip_limits` (fail_open allows, fail_closed answers
//! `Limited` with a 1 s retry).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::LimitsConfig;
use crate::error::GatewayError;
use crate::limits::{now_ms, RateWindow};
use crate::storage::redis::blacklist::{SharedBlacklist, SharedVerdict};
use crate::storage::redis::policy::{when_down, RETRY_WHILE_DOWN};
use crate::storage::redis::RedisShared;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};

const PERSIST_EVERY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

// ---- messages ----

/// Is this IP banned, and does it have room under the per-IP limit? Counts
/// the request when it does.
#[derive(Message)]
#[rtype(result = "IpVerdict")]
pub struct Check(pub IpAddr);

/// The client at this IP made an error that counts toward a ban, with a
/// weight (a wrong client key may count for more than one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordError(pub IpAddr, pub u64);

/// Lift a ban and forget the IP's errors.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Unban(pub IpAddr);

/// Current bans.
#[derive(Message)]
#[rtype(result = "Vec<BanInfo>")]
pub struct List;

/// New limits after a config reload. Bans stay; a window whose length
/// changed restarts empty.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLimits(pub LimitsConfig);

/// Persisted state of every changed IP, handed over at shutdown.
#[derive(Message)]
#[rtype(result = "Vec<StoreOp>")]
pub struct TakeState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVerdict {
    Allowed,
    Banned { retry_after: Duration },
    Limited { retry_after: Duration },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BanInfo {
    pub ip: IpAddr,
    pub banned_until_ms: u64,
    pub errors: u64,
}

// ---- actor ----

#[derive(Serialize, Deserialize)]
struct StoredIp {
    errors: RateWindow,
    banned_until_ms: Option<u64>,
}

struct IpState {
    requests: Option<RateWindow>,
    errors: RateWindow,
    banned_until_ms: Option<u64>,
}

pub struct Blacklist {
    limits: LimitsConfig,
    ips: HashMap<IpAddr, IpState>,
    /// IPs whose persisted part changed since the last write.
    dirty: Vec<IpAddr>,
    writer: Addr<DiskWriter>,
}

impl Blacklist {
    pub fn new(
        limits: LimitsConfig,
        stored: &[(Vec<u8>, Vec<u8>)],
        writer: Addr<DiskWriter>,
    ) -> Self {
        let mut ips = HashMap::new();
        for (key, value) in stored {
            let ip = std::str::from_utf8(key)
                .ok()
                .and_then(|k| k.parse::<IpAddr>().ok());
            let state = serde_json::from_slice::<StoredIp>(value).ok();
            if let (Some(ip), Some(state)) = (ip, state) {
                let errors = RateWindow::restore(&state.errors.to_bytes(), limits.ip_error_window)
                    .unwrap_or_else(|| RateWindow::new(limits.ip_error_window));
                ips.insert(
                    ip,
                    IpState {
                        requests: None,
                        errors,
                        banned_until_ms: state.banned_until_ms,
                    },
                );
            }
        }
        Blacklist {
            limits,
            ips,
            dirty: Vec::new(),
            writer,
        }
    }

    fn entry(&mut self, ip: IpAddr) -> &mut IpState {
        let window = self.limits.ip_error_window;
        self.ips.entry(ip).or_insert_with(|| IpState {
            requests: None,
            errors: RateWindow::new(window),
            banned_until_ms: None,
        })
    }

    fn take_dirty_ops(&mut self) -> Vec<StoreOp> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort();
        dirty.dedup();
        dirty
            .into_iter()
            .map(|ip| match self.ips.get(&ip) {
                Some(state) => {
                    let stored = StoredIp {
                        errors: state.errors.clone(),
                        banned_until_ms: state.banned_until_ms,
                    };
                    StoreOp::Put(
                        ip.to_string().into_bytes(),
                        serde_json::to_vec(&stored).unwrap_or_default(),
                    )
                }
                None => StoreOp::Delete(ip.to_string().into_bytes()),
            })
            .collect()
    }

    /// Drops IPs with nothing left to remember, so memory follows live IPs.
    fn prune(&mut self) {
        let now = now_ms();
        let mut forgotten = Vec::new();
        self.ips.retain(|ip, state| {
            let banned = state.banned_until_ms.is_some_and(|until| until > now);
            let busy = state.requests.as_mut().is_some_and(|w| w.count(now) > 0);
            let keep = banned || busy || state.errors.count(now) > 0;
            if !keep {
                forgotten.push(*ip);
            }
            keep
        });
        self.dirty.extend(forgotten);
    }
}

impl Actor for Blacklist {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| {
            if !actor.dirty.is_empty() {
                let ops = actor.take_dirty_ops();
                actor.writer.do_send(WriteBatch {
                    tree: Tree::Blacklist,
                    ops,
                });
            }
        });
        ctx.run_interval(PRUNE_EVERY, |actor, _| actor.prune());
    }
}

impl Handler<SetLimits> for Blacklist {
    type Result = ();
    fn handle(&mut self, SetLimits(limits): SetLimits, _: &mut Self::Context) {
        let new_errors = limits.ip_error_window != self.limits.ip_error_window;
        let new_requests = limits.ip_interval != self.limits.ip_interval;
        for state in self.ips.values_mut() {
            if new_errors {
                state.errors = RateWindow::new(limits.ip_error_window);
            }
            if new_requests {
                state.requests = None;
            }
        }
        self.limits = limits;
    }
}

/// Bans first (a banned IP is not counted), then the per-IP request window.
impl Handler<Check> for Blacklist {
    type Result = MessageResult<Check>;
    fn handle(&mut self, Check(ip): Check, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        let limit = self.limits.ip_requests;
        let interval = self.limits.ip_interval;
        let state = self.entry(ip);
        if let Some(until) = state.banned_until_ms {
            if until > now {
                return MessageResult(IpVerdict::Banned {
                    retry_after: Duration::from_millis(until - now),
                });
            }
            state.banned_until_ms = None;
        }
        if let Some(limit) = limit {
            let window = state
                .requests
                .get_or_insert_with(|| RateWindow::new(interval));
            if let Err(retry_after) = window.try_acquire(now, limit) {
                return MessageResult(IpVerdict::Limited { retry_after });
            }
        }
        MessageResult(IpVerdict::Allowed)
    }
}

/// Counts the error; at the threshold the IP is banned for one error window.
impl Handler<RecordError> for Blacklist {
    type Result = ();
    fn handle(&mut self, RecordError(ip, weight): RecordError, _: &mut Self::Context) {
        let Some(threshold) = self.limits.ip_error_threshold else {
            return;
        };
        let now = now_ms();
        let window_ms = self.limits.ip_error_window.as_millis() as u64;
        let state = self.entry(ip);
        state.errors.add(now, weight.max(1));
        if state.errors.count(now) >= threshold && state.banned_until_ms.is_none() {
            state.banned_until_ms = Some(now + window_ms);
            log::warn!("blacklisted {ip} after {threshold} client errors");
        }
        self.dirty.push(ip);
    }
}

/// Removes the ban and the error history of one IP.
impl Handler<Unban> for Blacklist {
    type Result = bool;
    fn handle(&mut self, Unban(ip): Unban, _: &mut Self::Context) -> bool {
        let existed = self.ips.remove(&ip).is_some();
        self.dirty.push(ip);
        existed
    }
}

/// Lists IPs banned now.
impl Handler<List> for Blacklist {
    type Result = MessageResult<List>;
    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        let mut bans: Vec<BanInfo> = self
            .ips
            .iter_mut()
            .filter_map(|(ip, state)| {
                let until = state.banned_until_ms.filter(|u| *u > now)?;
                Some(BanInfo {
                    ip: *ip,
                    banned_until_ms: until,
                    errors: state.errors.count(now),
                })
            })
            .collect();
        bans.sort_by_key(|b| b.ip);
        MessageResult(bans)
    }
}

/// Hands pending writes to the shutdown sequence.
impl Handler<TakeState> for Blacklist {
    type Result = MessageResult<TakeState>;
    fn handle(&mut self, _: TakeState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.take_dirty_ops())
    }
}

// ---- handle ----

/// The one way to per-IP state, whichever backend holds it.
#[derive(Clone)]
pub struct BlacklistHandle(Backend);

#[derive(Clone)]
enum Backend {
    Local(Addr<Blacklist>),
    Shared(SharedBlacklist),
}

impl BlacklistHandle {
    /// Per-IP state in Redis when `redis` is given, else an actor in this
    /// process restoring what `stored` (the blacklist tree) holds. Must run
    /// inside an actix `System`.
    pub fn start(
        limits: LimitsConfig,
        stored: &[(Vec<u8>, Vec<u8>)],
        writer: Addr<DiskWriter>,
        redis: Option<&RedisShared>,
    ) -> Self {
        match redis {
            Some(redis) => {
                BlacklistHandle(Backend::Shared(SharedBlacklist::new(redis.clone(), limits)))
            }
            None => BlacklistHandle::local(Blacklist::new(limits, stored, writer).start()),
        }
    }

    /// The same per-IP state under reloaded limits.
    pub fn with_limits(&self, limits: LimitsConfig) -> Self {
        match &self.0 {
            Backend::Local(addr) => {
                addr.do_send(SetLimits(limits));
                self.clone()
            }
            Backend::Shared(shared) => BlacklistHandle(Backend::Shared(SharedBlacklist::new(
                shared.redis().clone(),
                limits,
            ))),
        }
    }

    /// A handle on an actor already started.
    pub fn local(addr: Addr<Blacklist>) -> Self {
        BlacklistHandle(Backend::Local(addr))
    }

    pub async fn check(&self, ip: IpAddr) -> Result<IpVerdict, GatewayError> {
        match &self.0 {
            Backend::Local(addr) => addr
                .send(Check(ip))
                .await
                .map_err(|e| super::mailbox_error("Blacklist", e)),
            Backend::Shared(shared) => Ok(match shared.check(ip).await {
                Ok(SharedVerdict::Allowed) => IpVerdict::Allowed,
                Ok(SharedVerdict::Banned { retry_after }) => IpVerdict::Banned { retry_after },
                Ok(SharedVerdict::Limited { retry_after }) => IpVerdict::Limited { retry_after },
                Err(_) => when_down(
                    shared.redis().ip_limits_policy(),
                    IpVerdict::Allowed,
                    IpVerdict::Limited {
                        retry_after: RETRY_WHILE_DOWN,
                    },
                ),
            }),
        }
    }

    /// Fire and forget. With Redis the script runs on a spawned task (on
    /// this worker), queued on the connection before the response goes out.
    pub fn record_error(&self, ip: IpAddr, weight: u64) {
        match &self.0 {
            Backend::Local(addr) => addr.do_send(RecordError(ip, weight)),
            Backend::Shared(shared) => {
                if shared.limits().ip_error_threshold.is_none() {
                    return;
                }
                let shared = shared.clone();
                actix::spawn(async move {
                    // Redis down: the error goes uncounted (logged once by
                    // the connection's availability tracker).
                    let _ = shared.record_error(ip, weight).await;
                });
            }
        }
    }

    pub async fn unban(&self, ip: IpAddr) -> Result<bool, GatewayError> {
        match &self.0 {
            Backend::Local(addr) => addr
                .send(Unban(ip))
                .await
                .map_err(|e| super::mailbox_error("Blacklist", e)),
            Backend::Shared(shared) => shared.unban(ip).await.map_err(redis_error),
        }
    }

    pub async fn list(&self) -> Result<Vec<BanInfo>, GatewayError> {
        match &self.0 {
            Backend::Local(addr) => addr
                .send(List)
                .await
                .map_err(|e| super::mailbox_error("Blacklist", e)),
            Backend::Shared(shared) => Ok(shared
                .list()
                .await
                .map_err(redis_error)?
                .into_iter()
                .map(|ban| BanInfo {
                    ip: ban.ip,
                    banned_until_ms: ban.banned_until_ms,
                    errors: ban.errors,
                })
                .collect()),
        }
    }

    /// What to write to disk at shutdown (nothing when Redis holds it).
    pub async fn take_state(&self) -> Result<Vec<StoreOp>, GatewayError> {
        match &self.0 {
            Backend::Local(addr) => addr
                .send(TakeState)
                .await
                .map_err(|e| super::mailbox_error("Blacklist", e)),
            Backend::Shared(_) => Ok(Vec::new()),
        }
    }
}

/// Admin calls (list, unban) cannot follow a fail-open policy: they fail.
fn redis_error(e: crate::storage::redis::RedisDown) -> GatewayError {
    GatewayError::Internal(e.to_string())
}
