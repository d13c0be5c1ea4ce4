//! KeyPool: lends upstream keys. Keys of an endpoint rotate; a key that got a
//! 429 cools down until its Retry-After; a key refused with 401/403 is revoked
//! until the next config load; the pool remembers latency and the last error.

use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use serde::Serialize;

use crate::config::{EndpointConfig, Secret};
use crate::error::GatewayError;

/// Cooldown when a 429 carries no usable Retry-After.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

// ---- messages ----

/// Lend a key of endpoint `endpoint` (its index in the config).
#[derive(Message)]
#[rtype(result = "Result<KeyLease, NoKey>")]
pub struct AcquireKey {
    pub endpoint: usize,
}

/// How a leased key fared; returns the lease.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportOutcome {
    pub lease: KeyLease,
    pub outcome: KeyOutcome,
}

/// Every key's state, for `/v1/status`.
#[derive(Message)]
#[rtype(result = "Vec<Vec<KeyStatus>>")]
pub struct Snapshot;

/// A key lent for one attempt.
#[derive(Debug, Clone)]
pub struct KeyLease {
    pub endpoint: usize,
    pub key_index: usize,
    pub key: Secret,
    /// Safe to log: `…` and the last 4 characters.
    pub key_id: String,
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
    /// No key configured, or all revoked.
    NoneUsable,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyStatus {
    pub id: String,
    pub state: &'static str,
    /// Unix seconds when a cooling key is back, else null.
    pub cooldown_until: Option<u64>,
    pub in_flight: u32,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
}

// ---- actor ----

#[derive(Debug, Clone, PartialEq)]
enum KeyState {
    Active,
    Cooling {
        until: Instant,
        until_wall: SystemTime,
    },
    Revoked,
}

struct PooledKey {
    secret: Secret,
    id: String,
    state: KeyState,
    in_flight: u32,
    latency_ewma_ms: Option<f64>,
    last_error: Option<String>,
}

pub struct KeyPool {
    endpoints: Vec<EndpointKeys>,
}

struct EndpointKeys {
    keys: Vec<PooledKey>,
    next: usize,
}

impl KeyPool {
    pub fn new(endpoints: &[EndpointConfig]) -> Self {
        KeyPool {
            endpoints: endpoints
                .iter()
                .map(|e| EndpointKeys {
                    keys: e
                        .keys
                        .iter()
                        .map(|k| PooledKey {
                            secret: k.clone(),
                            id: k.key_id(),
                            state: KeyState::Active,
                            in_flight: 0,
                            latency_ewma_ms: None,
                            last_error: None,
                        })
                        .collect(),
                    next: 0,
                })
                .collect(),
        }
    }
}

impl Actor for KeyPool {
    type Context = Context<Self>;
}

/// Round-robin over the endpoint's keys, skipping revoked keys and keys still
/// cooling (a key whose cooldown has passed becomes active again here).
impl Handler<AcquireKey> for KeyPool {
    type Result = Result<KeyLease, NoKey>;
    fn handle(&mut self, msg: AcquireKey, _: &mut Self::Context) -> Self::Result {
        let pool = self
            .endpoints
            .get_mut(msg.endpoint)
            .ok_or(NoKey::NoneUsable)?;
        let now = Instant::now();
        let count = pool.keys.len();
        let mut soonest: Option<Instant> = None;
        for step in 0..count {
            let index = (pool.next + step) % count;
            let key = &mut pool.keys[index];
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
                return Ok(KeyLease {
                    endpoint: msg.endpoint,
                    key_index: index,
                    key: key.secret.clone(),
                    key_id: key.id.clone(),
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

/// Updates the key's state from the outcome of its attempt.
impl Handler<ReportOutcome> for KeyPool {
    type Result = ();
    fn handle(&mut self, msg: ReportOutcome, _: &mut Self::Context) {
        let Some(key) = self
            .endpoints
            .get_mut(msg.lease.endpoint)
            .and_then(|p| p.keys.get_mut(msg.lease.key_index))
        else {
            return;
        };
        key.in_flight = key.in_flight.saturating_sub(1);
        match msg.outcome {
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
                    key.id,
                    wait.as_secs()
                );
                key.state = KeyState::Cooling {
                    until: Instant::now() + wait,
                    until_wall: SystemTime::now() + wait,
                };
                key.last_error = Some("429 rate limited".into());
            }
            KeyOutcome::Revoked { status } => {
                log::warn!("key {} revoked after upstream answered {status}", key.id);
                key.state = KeyState::Revoked;
                key.last_error = Some(format!("{status} refused the key"));
            }
            KeyOutcome::Failed { reason } => key.last_error = Some(reason),
            KeyOutcome::ClientError | KeyOutcome::Unused => {}
        }
    }
}

/// Reports every key by id, never by value.
impl Handler<Snapshot> for KeyPool {
    type Result = Vec<Vec<KeyStatus>>;
    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        self.endpoints
            .iter()
            .map(|pool| {
                pool.keys
                    .iter()
                    .map(|k| {
                        let (state, until) = match &k.state {
                            KeyState::Cooling { until, until_wall } if *until > now => (
                                "cooling",
                                until_wall
                                    .duration_since(SystemTime::UNIX_EPOCH)
                                    .ok()
                                    .map(|d| d.as_secs()),
                            ),
                            KeyState::Revoked => ("revoked", None),
                            _ => ("active", None),
                        };
                        KeyStatus {
                            id: k.id.clone(),
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

// ---- handle ----

/// What request handlers hold to talk to the KeyPool.
#[derive(Clone)]
pub struct KeyPoolHandle(pub Addr<KeyPool>);

impl KeyPoolHandle {
    pub async fn acquire(&self, endpoint: usize) -> Result<Result<KeyLease, NoKey>, GatewayError> {
        self.0
            .send(AcquireKey { endpoint })
            .await
            .map_err(|e| super::mailbox_error("KeyPool", e))
    }

    /// Fire and forget: outcomes must be reported even from `Drop`.
    pub fn report(&self, lease: KeyLease, outcome: KeyOutcome) {
        self.0.do_send(ReportOutcome { lease, outcome });
    }

    pub async fn snapshot(&self) -> Result<Vec<Vec<KeyStatus>>, GatewayError> {
        self.0
            .send(Snapshot)
            .await
            .map_err(|e| super::mailbox_error("KeyPool", e))
    }
}
