//! KeyPool: lends upstream keys. Keys of an endpoint rotate; a key that got a
//! 429 cools down until its Retry-After; a key refused with 401/403 is revoked
//! until the next config load; the pool remembers latency and the last error.
//!
//! Keys come from the config file or are added at runtime by an admin (sealed
//! by the [`crate::vault::Vault`] and kept in the `upstream_keys` tree). An
//! admin can disable any key; a key whose spending reached its `budget_usd`
//! is exhausted. Neither is lent.
//!
//! The pool sits behind a mutex that a request's own thread locks to take a
//! key and to report how it fared (a few field updates; no message to
//! another thread per request, see `actors`). Admin changes lock it too and
//! then wait, unlocked, for their write to reach disk; a small actor writes
//! runtime keys' spending once a second.
//!
//! - `pooled.rs`: per key and per endpoint bookkeeping.
//! - `restore.rs`: runtime keys loaded (decrypted) at start.
//! - `manage.rs`: the admin messages (add, remove, disable, list, persist).
//! - `reconfigure.rs`: a new endpoint list after a config reload.
//! - `stored.rs`: the on-disk record of a runtime key.
//! - `shared_cooldowns.rs`: 429 cooldowns announced to and from the other
//!   instances through Redis.

mod manage;
mod pooled;
mod reconfigure;
mod restore;
mod shared_cooldowns;
mod stored;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use serde::Serialize;

use super::lock;
use crate::config::{EndpointConfig, Secret};
use crate::error::GatewayError;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};
use crate::vault::Vault;
use pooled::{key_pool_endpoint, EndpointKeys, KeySource, KeyState, ParkedKey, PooledKey};

pub use manage::{AddKey, AddedKey, KeyAdminError, KeyInfo, RemoveKey, SetKeyDisabled};
pub use shared_cooldowns::ApplyCooldown;
pub use stored::{key_id_of, RecordError, StoredKey, KEY_FORMAT_VERSION};

/// Cooldown when a 429 carries no usable Retry-After.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

/// How often changed spending of runtime keys goes to disk.
const SPEND_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// A key lent for one attempt.
#[derive(Debug, Clone)]
pub struct KeyLease {
    pub endpoint: usize,
    pub key_index: usize,
    pub key: Secret,
    /// Safe to log: `…` and the last 4 characters.
    pub key_id: Arc<str>,
    /// The key's id in the admin API (`k-` and 8 hex digits); unlike
    /// `key_index` it stays right when other keys are removed.
    pub stable_id: Arc<str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyOutcome {
    Success {
        latency: Duration,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    Revoked {
        status: u16,
    },
    /// Network error, timeout, 5xx: not the key's fault.
    Failed {
        reason: String,
    },
    /// The request itself was refused (4xx), or the client left: the key is
    /// fine.
    ClientError,
    /// Lent but never used (the endpoint had no room after all).
    Unused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// Every key cools down; the first is back after this long.
    Cooling { retry_after: Duration },
    /// No key configured, or all revoked, disabled or out of budget.
    NoneUsable,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyStatus {
    pub id: String,
    /// `active`, `cooling`, `revoked`, `disabled` or `exhausted`.
    pub state: &'static str,
    /// Unix seconds when a cooling key is back, else null.
    pub cooldown_until: Option<u64>,
    pub in_flight: u32,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
}

// ---- the pool ----

pub struct KeyPool {
    endpoints: Vec<EndpointKeys>,
    vault: Option<Vault>,
    writer: Option<Addr<DiskWriter>>,
    parked: Vec<ParkedKey>,
    /// Runtime keys whose spending changed since the last write.
    dirty: BTreeSet<(String, String)>,
    /// Where 429 cooldowns are announced to the other instances.
    shared_cooldowns: Option<crate::storage::redis::cooldowns::SharedCooldowns>,
}

impl KeyPool {
    /// A pool of the config file's keys only (no runtime keys, no disk).
    pub fn new(endpoints: &[EndpointConfig]) -> Self {
        KeyPool {
            endpoints: endpoints.iter().map(key_pool_endpoint).collect(),
            vault: None,
            writer: None,
            parked: Vec::new(),
            dirty: BTreeSet::new(),
            shared_cooldowns: None,
        }
    }

    /// Where the key with stable id `id` is: at `(endpoint, index)` if the
    /// id matches there, else wherever it is now (keys were removed, or the
    /// config reloaded since the lease).
    fn position_of(&self, endpoint: usize, index: usize, id: &str) -> Option<(usize, usize)> {
        let here = self.endpoints.get(endpoint).and_then(|p| p.keys.get(index));
        if here.is_some_and(|k| *k.id == *id) {
            return Some((endpoint, index));
        }
        if let Some(i) = self.endpoints.get(endpoint).and_then(|p| p.find(id)) {
            return Some((endpoint, i));
        }
        self.endpoints
            .iter()
            .enumerate()
            .find_map(|(e, p)| Some((e, p.find(id)?)))
    }

    /// The writes for runtime keys whose spending changed since last time.
    fn take_dirty(&mut self) -> Vec<StoreOp> {
        let mut ops = Vec::new();
        for (endpoint_id, key_id) in std::mem::take(&mut self.dirty) {
            let record = self
                .endpoints
                .iter()
                .find(|e| e.id == endpoint_id)
                .and_then(|e| e.keys.iter().find(|k| *k.id == *key_id))
                .and_then(PooledKey::current_record);
            match record.map(|r| r.put_op()) {
                Some(Ok(op)) => ops.push(op),
                Some(Err(e)) => log::error!("cannot store upstream key {key_id}: {e}"),
                None => {}
            }
        }
        ops
    }
}

impl KeyPool {
    /// Lends a key of endpoint `endpoint` (its index in the config the
    /// request started with) whose id is `endpoint_id`: after a reload the
    /// index may point elsewhere, and the id decides. Round-robin over the
    /// endpoint's keys, skipping revoked, disabled and exhausted keys and
    /// keys still cooling (a key whose cooldown has passed becomes active
    /// again here).
    pub fn acquire(&mut self, endpoint: usize, endpoint_id: &str) -> Result<KeyLease, NoKey> {
        let endpoint = match self.endpoints.get(endpoint) {
            Some(pool) if pool.id == endpoint_id => endpoint,
            _ => self
                .endpoints
                .iter()
                .position(|pool| pool.id == endpoint_id)
                .ok_or(NoKey::NoneUsable)?,
        };
        let pool = &mut self.endpoints[endpoint];
        let now = Instant::now();
        let count = pool.keys.len();
        let mut soonest: Option<Instant> = None;
        for step in 0..count {
            let index = (pool.next + step) % count;
            let key = &mut pool.keys[index];
            if key.disabled || key.exhausted() {
                continue;
            }
            if let KeyState::Cooling { until, .. } = key.state {
                if until <= now {
                    key.state = KeyState::Active;
                } else {
                    soonest = Some(soonest.map_or(until, |s| s.min(until)));
                }
            }
            if key.state == KeyState::Active {
                pool.next = (index + 1) % count;
                key.in_flight += 1;
                // Copies, not clones of the pool's `Arc`s: their counts
                // would be written by every worker in turn (see
                // `state::worker`), a copy is this thread's alone.
                return Ok(KeyLease {
                    endpoint,
                    key_index: index,
                    key: Secret::new(key.secret.expose()),
                    key_id: Arc::from(&*key.hint),
                    stable_id: Arc::from(&*key.id),
                });
            }
        }
        match soonest {
            Some(until) => Err(NoKey::Cooling {
                retry_after: until.saturating_duration_since(now),
            }),
            None => Err(NoKey::NoneUsable),
        }
    }
}

impl KeyPool {
    /// Updates the key's state from the outcome of its attempt. A lease of
    /// a key removed meanwhile is dropped.
    pub fn report(&mut self, lease: &KeyLease, outcome: KeyOutcome) {
        let Some((e, k)) = self.position_of(lease.endpoint, lease.key_index, &lease.stable_id)
        else {
            return;
        };
        let key = &mut self.endpoints[e].keys[k];
        key.in_flight = key.in_flight.saturating_sub(1);
        match outcome {
            KeyOutcome::Success { latency } => {
                let ms = latency.as_secs_f64() * 1000.0;
                key.latency_ewma_ms = Some(match key.latency_ewma_ms {
                    Some(prev) => prev * 0.8 + ms * 0.2,
                    None => ms,
                });
            }
            KeyOutcome::RateLimited { retry_after } => {
                let wait = retry_after.unwrap_or(DEFAULT_COOLDOWN);
                log::warn!(
                    "key {} cooling down for {}s after a 429",
                    key.hint,
                    wait.as_secs()
                );
                key.state = KeyState::Cooling {
                    until: Instant::now() + wait,
                    until_wall: SystemTime::now() + wait,
                };
                key.last_error = Some("429 rate limited".into());
                self.announce_cooldown(e, k, wait);
            }
            KeyOutcome::Revoked { status } => {
                log::warn!("key {} revoked after upstream answered {status}", key.hint);
                key.state = KeyState::Revoked;
                key.last_error = Some(format!("{status} refused the key"));
            }
            KeyOutcome::Failed { reason } => key.last_error = Some(reason),
            KeyOutcome::ClientError | KeyOutcome::Unused => {}
        }
    }
}

impl KeyPool {
    /// Every key's state by its hint, never by value, for `/v1/status`.
    pub fn snapshot(&self) -> Vec<Vec<KeyStatus>> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .map(|pool| {
                pool.keys
                    .iter()
                    .map(|k| {
                        let (state, until) = k.label(now);
                        KeyStatus {
                            id: k.hint.to_string(),
                            state,
                            cooldown_until: until,
                            in_flight: k.in_flight,
                            latency_ms: k.latency_ewma_ms.map(|v| (v * 10.0).round() / 10.0),
                            last_error: k.last_error.clone(),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

impl KeyPool {
    /// Adds what a request cost to the spending of the key with stable id
    /// `key_id` ([`KeyLease::stable_id`]), looked for first at position
    /// `index` (the lease's: found at once unless the pool changed); a key
    /// that reaches its budget stops being lent. Runtime keys' spending is
    /// written within a second.
    pub fn spend(&mut self, endpoint: usize, index: usize, key_id: &str, cost_usd: f64) {
        if !cost_usd.is_finite() || cost_usd <= 0.0 {
            return;
        }
        let Some((e, k)) = self.position_of(endpoint, index, key_id) else {
            return;
        };
        let pool = &mut self.endpoints[e];
        let key = &mut pool.keys[k];
        let was_exhausted = key.exhausted();
        key.spent_usd += cost_usd;
        if key.exhausted() && !was_exhausted {
            log::warn!(
                "key {} of endpoint '{}' used up its budget of {:.2} USD and leaves the pool",
                key.id,
                pool.id,
                key.budget_usd.unwrap_or_default()
            );
        }
        if key.source == KeySource::Runtime {
            self.dirty.insert((pool.id.clone(), key.id.to_string()));
        }
    }
}

// ---- actor: spending to disk ----

/// Writes runtime keys' changed spending once a second.
struct SpendWriter {
    pool: Arc<Mutex<KeyPool>>,
}

impl Actor for SpendWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(SPEND_WRITE_INTERVAL, |actor, _| {
            let (ops, writer) = {
                let mut pool = lock(&actor.pool);
                (pool.take_dirty(), pool.writer.clone())
            };
            if let (Some(writer), false) = (writer, ops.is_empty()) {
                writer.do_send(WriteBatch {
                    tree: Tree::UpstreamKeys,
                    ops,
                });
            }
        });
    }
}

// ---- handle ----

/// What request handlers hold to use the KeyPool.
#[derive(Clone)]
pub struct KeyPoolHandle {
    pool: Arc<Mutex<KeyPool>>,
    /// Keeps the spending writer alive while the pool is in use.
    _writer: Addr<SpendWriter>,
}

impl KeyPool {
    /// Starts the pool (without sharing cooldowns). Must run inside an actix
    /// `System`.
    pub fn start(self) -> KeyPoolHandle {
        let pool = Arc::new(Mutex::new(self));
        let writer = SpendWriter { pool: pool.clone() }.start();
        KeyPoolHandle {
            pool,
            _writer: writer,
        }
    }
}

impl KeyPoolHandle {
    pub async fn acquire(
        &self,
        endpoint: usize,
        endpoint_id: &str,
    ) -> Result<Result<KeyLease, NoKey>, GatewayError> {
        Ok(lock(&self.pool).acquire(endpoint, endpoint_id))
    }

    /// Never waits, so outcomes can be reported from `Drop`.
    pub fn report(&self, lease: KeyLease, outcome: KeyOutcome) {
        lock(&self.pool).report(&lease, outcome);
    }

    pub async fn snapshot(&self) -> Result<Vec<Vec<KeyStatus>>, GatewayError> {
        Ok(lock(&self.pool).snapshot())
    }

    /// Charges `cost_usd` to the key with stable id `key_id`
    /// ([`KeyLease::stable_id`]) of endpoint index `endpoint`.
    pub fn spend(&self, endpoint: usize, key_id: &str, cost_usd: f64) {
        lock(&self.pool).spend(endpoint, usize::MAX, key_id, cost_usd);
    }

    /// Charges `cost_usd` to the key `lease` lent: found by the lease's
    /// position, not by a search through the endpoint's keys.
    pub fn spend_lease(&self, lease: &KeyLease, cost_usd: f64) {
        lock(&self.pool).spend(lease.endpoint, lease.key_index, &lease.stable_id, cost_usd);
    }
}
