//! Blacklist: everything the gateway knows per client IP. It owns the per-IP
//! request windows (the IP rate limit) as well as the error counts and bans,
//! because the guard step asks both questions of the same IP at once. The
//! table sits behind a mutex the request's own thread locks for a few
//! operations (no message per request, see `actors`); the actor writes the
//! changed error windows and bans to disk once a second and forgets idle
//! IPs once a minute. Request windows live in memory only.
//!
//! With `[storage] backend = "redis"` there is no actor: the handle asks the
//! shared per-IP state in Redis (one atomic script per question), so a ban
//! made through one instance holds on all; while Redis is down it follows
//! `on_redis_down_ip_limits` (fail_open allows, fail_closed answers
//! `Limited` with a 1 s retry).

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::lock;
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

// ---- state ----

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

/// Every IP the gateway currently remembers.
pub struct IpTable {
    limits: LimitsConfig,
    ips: HashMap<IpAddr, IpState>,
    /// IPs whose persisted part changed since the last write.
    dirty: Vec<IpAddr>,
}

impl IpTable {
    /// Restores error windows and bans from the blacklist tree.
    pub fn new(limits: LimitsConfig, stored: &[(Vec<u8>, Vec<u8>)]) -> Self {
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
        IpTable {
            limits,
            ips,
            dirty: Vec::new(),
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

    /// Bans first (a banned IP is not counted), then the per-IP request
    /// window, which counts the request when it has room.
    pub fn check(&mut self, ip: IpAddr, now: u64) -> IpVerdict {
        let limit = self.limits.ip_requests;
        let interval = self.limits.ip_interval;
        if limit.is_none() && !self.ips.contains_key(&ip) {
            return IpVerdict::Allowed;
        }
        let state = self.entry(ip);
        if let Some(until) = state.banned_until_ms {
            if until > now {
                return IpVerdict::Banned {
                    retry_after: Duration::from_millis(until - now),
                };
            }
            state.banned_until_ms = None;
        }
        if let Some(limit) = limit {
            let window = state
                .requests
                .get_or_insert_with(|| RateWindow::new(interval));
            if let Err(retry_after) = window.try_acquire(now, limit) {
                return IpVerdict::Limited { retry_after };
            }
        }
        IpVerdict::Allowed
    }

    /// Counts an error (with a weight); at the threshold the IP is banned
    /// for one error window.
    pub fn record_error(&mut self, ip: IpAddr, weight: u64, now: u64) {
        let Some(threshold) = self.limits.ip_error_threshold else {
            return;
        };
        let window_ms = self.limits.ip_error_window.as_millis() as u64;
        let state = self.entry(ip);
        state.errors.add(now, weight.max(1));
        if state.errors.count(now) >= threshold && state.banned_until_ms.is_none() {
            state.banned_until_ms = Some(now + window_ms);
            log::warn!("blacklisted {ip} after {threshold} client errors");
        }
        self.dirty.push(ip);
    }

    /// Removes the ban and the error history of one IP.
    pub fn unban(&mut self, ip: IpAddr) -> bool {
        let existed = self.ips.remove(&ip).is_some();
        self.dirty.push(ip);
        existed
    }

    /// IPs banned now.
    pub fn list(&mut self, now: u64) -> Vec<BanInfo> {
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
        bans
    }

    /// New limits after a config reload. Bans stay; a window whose length
    /// changed restarts empty.
    pub fn set_limits(&mut self, limits: LimitsConfig) {
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

    /// Writes for every IP changed since the last call.
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
    fn prune(&mut self, now: u64) {
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

// ---- actor: persistence and pruning ----

pub struct Blacklist {
    table: Arc<Mutex<IpTable>>,
    writer: Addr<DiskWriter>,
}

impl Blacklist {
    fn persist(&self) {
        let ops = lock(&self.table).take_dirty_ops();
        if !ops.is_empty() {
            self.writer.do_send(WriteBatch {
                tree: Tree::Blacklist,
                ops,
            });
        }
    }
}

impl Actor for Blacklist {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| actor.persist());
        ctx.run_interval(PRUNE_EVERY, |actor, _| lock(&actor.table).prune(now_ms()));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.persist();
    }
}

// ---- handle ----

/// The one way to per-IP state, whichever backend holds it.
#[derive(Clone)]
pub struct BlacklistHandle(Backend);

#[derive(Clone)]
enum Backend {
    Local {
        table: Arc<Mutex<IpTable>>,
        /// Keeps the persisting actor alive while the table is in use.
        _persister: Addr<Blacklist>,
    },
    Shared(SharedBlacklist),
}

impl BlacklistHandle {
    /// Per-IP state in Redis when `redis` is given, else a table in this
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
            None => BlacklistHandle::local(IpTable::new(limits, stored), writer),
        }
    }

    /// A table of this process, persisted through `writer`.
    pub fn local(table: IpTable, writer: Addr<DiskWriter>) -> Self {
        let table = Arc::new(Mutex::new(table));
        let persister = Blacklist {
            table: table.clone(),
            writer,
        }
        .start();
        BlacklistHandle(Backend::Local {
            table,
            _persister: persister,
        })
    }

    /// The same per-IP state under reloaded limits.
    pub fn with_limits(&self, limits: LimitsConfig) -> Self {
        match &self.0 {
            Backend::Local { table, .. } => {
                lock(table).set_limits(limits);
                self.clone()
            }
            Backend::Shared(shared) => BlacklistHandle(Backend::Shared(SharedBlacklist::new(
                shared.redis().clone(),
                limits,
            ))),
        }
    }

    pub async fn check(&self, ip: IpAddr) -> Result<IpVerdict, GatewayError> {
        match &self.0 {
            Backend::Local { table, .. } => Ok(lock(table).check(ip, now_ms())),
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

    /// Never waits. With Redis the script runs on a spawned task (on this
    /// worker), queued on the connection before the response goes out.
    pub fn record_error(&self, ip: IpAddr, weight: u64) {
        match &self.0 {
            Backend::Local { table, .. } => lock(table).record_error(ip, weight, now_ms()),
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
            Backend::Local { table, .. } => Ok(lock(table).unban(ip)),
            Backend::Shared(shared) => shared.unban(ip).await.map_err(redis_error),
        }
    }

    pub async fn list(&self) -> Result<Vec<BanInfo>, GatewayError> {
        match &self.0 {
            Backend::Local { table, .. } => Ok(lock(table).list(now_ms())),
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
            Backend::Local { table, .. } => Ok(lock(table).take_dirty_ops()),
            Backend::Shared(_) => Ok(Vec::new()),
        }
    }
}

/// Admin calls (list, unban) cannot follow a fail-open policy: they fail.
fn redis_error(e: crate::storage::redis::RedisDown) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ip_requests: Option<u64>, threshold: Option<u64>) -> LimitsConfig {
        let mut limits = crate::config::from_toml_str("", &Default::default(), &Default::default())
            .unwrap()
            .limits;
        limits.ip_requests = ip_requests;
        limits.ip_error_threshold = threshold;
        limits
    }

    #[test]
    fn errors_ban_at_the_threshold_and_a_reload_keeps_the_ban() {
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        let mut table = IpTable::new(limits(None, Some(3)), &[]);
        let now = 1_000_000;
        for _ in 0..2 {
            table.record_error(ip, 1, now);
        }
        assert_eq!(table.check(ip, now), IpVerdict::Allowed);
        table.record_error(ip, 1, now);
        assert!(matches!(table.check(ip, now), IpVerdict::Banned { .. }));
        table.set_limits(limits(Some(1), Some(10)));
        assert!(matches!(table.check(ip, now + 1), IpVerdict::Banned { .. }));
        assert_eq!(table.list(now)[0].ip, ip);
        assert!(table.unban(ip));
        assert_eq!(table.check(ip, now + 2), IpVerdict::Allowed);
        // ip_requests = 1 now applies.
        assert!(matches!(
            table.check(ip, now + 3),
            IpVerdict::Limited { .. }
        ));
    }

    #[test]
    fn without_an_ip_limit_clean_ips_are_not_remembered() {
        let mut table = IpTable::new(limits(None, Some(3)), &[]);
        for last in 0..100u8 {
            let ip = IpAddr::from([198, 51, 100, last]);
            assert_eq!(table.check(ip, 1), IpVerdict::Allowed);
        }
        assert!(table.ips.is_empty());
    }
}
