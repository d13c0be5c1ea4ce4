//! Key cooldowns shared by every instance (`[storage] backend = "redis"`):
//! a 429 one instance sees for a key is announced through
//! [`SharedCooldowns`], and every instance (this one included) applies the
//! announcement with [`ApplyCooldown`]. Applying never announces, so nothing
//! echoes; a cooldown only ever lengthens a key's wait; keys and endpoints
//! this instance does not have are ignored (an instance with another
//! config, or a runtime key it has not loaded).

use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::pooled::KeyState;
use super::{lock, KeyPool, KeyPoolHandle};
use crate::storage::redis::cooldowns::SharedCooldowns;
use crate::storage::redis::RedisShared;

/// A known cooldown ending at most this much before an announced one is
/// taken as the same (this instance hearing its own announcement back).
const SAME_COOLDOWN: Duration = Duration::from_secs(1);

/// Key `key_id` (stable id) of endpoint `endpoint_id` cools down for
/// `duration` from now, as another instance (or this one) announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyCooldown {
    pub endpoint_id: String,
    pub key_id: String,
    pub duration: Duration,
}

// ---- the pool's side ----

impl KeyPool {
    /// Starts the pool; with Redis, its 429 cooldowns are announced to the
    /// other instances and theirs applied here. Must run inside an actix
    /// `System`.
    pub fn start_sharing(mut self, redis: Option<&RedisShared>) -> KeyPoolHandle {
        let Some(redis) = redis else {
            return self.start();
        };
        let shared = SharedCooldowns::new(redis.clone());
        let endpoint_ids = self.endpoints.iter().map(|p| p.id.clone()).collect();
        self.shared_cooldowns = Some(shared.clone());
        let handle = self.start();
        follow(
            std::sync::Arc::downgrade(&handle.pool),
            &shared,
            endpoint_ids,
        );
        handle
    }

    /// Tells the other instances that key `k` of endpoint `e` cools down for
    /// `wait` (from [`KeyPool::report`]; never from [`KeyPool::apply_cooldown`]).
    pub(super) fn announce_cooldown(&self, e: usize, k: usize, wait: Duration) {
        let (Some(shared), Some(pool)) = (&self.shared_cooldowns, self.endpoints.get(e)) else {
            return;
        };
        let Some(key) = pool.keys.get(k) else {
            return;
        };
        let (shared, endpoint_id, key_id) = (shared.clone(), pool.id.clone(), key.id.clone());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = shared.set_cooldown(&endpoint_id, &key_id, wait).await {
                log::debug!("cooldown of key {key_id} not shared: {e}");
            }
        });
    }
}

/// Follows the announcements and applies each to the pool; ends when the
/// pool is gone. `endpoint_ids`: whose stored cooldowns are replayed after
/// each (re)subscription. Must run inside a Tokio runtime.
fn follow(pool: Weak<Mutex<KeyPool>>, shared: &SharedCooldowns, endpoint_ids: Vec<String>) {
    let mut announced = shared.watch(endpoint_ids);
    actix::spawn(async move {
        while let Some(cooldown) = announced.recv().await {
            let Some(pool) = pool.upgrade() else {
                return;
            };
            lock(&pool).apply_cooldown(ApplyCooldown {
                duration: cooldown.duration(),
                endpoint_id: cooldown.endpoint_id,
                key_id: cooldown.key_id,
            });
        }
    });
}

impl KeyPoolHandle {
    /// Applies an announced cooldown (see [`KeyPool::apply_cooldown`]).
    pub fn apply_cooldown(&self, msg: ApplyCooldown) -> bool {
        lock(&self.pool).apply_cooldown(msg)
    }
}

impl KeyPool {
    /// Puts the key into cooldown unless it already waits longer; true when
    /// it was this instance's key and its wait changed.
    pub fn apply_cooldown(&mut self, msg: ApplyCooldown) -> bool {
        let Some(pool) = self.endpoints.iter_mut().find(|p| p.id == msg.endpoint_id) else {
            return false;
        };
        let Some(index) = pool.find(&msg.key_id) else {
            return false;
        };
        let key = &mut pool.keys[index];
        let until = Instant::now() + msg.duration;
        match key.state {
            KeyState::Revoked => return false,
            KeyState::Cooling { until: known, .. } if known + SAME_COOLDOWN >= until => {
                return false
            }
            _ => {}
        }
        log::info!(
            "key {} of endpoint '{}' cooling down for {}s (a 429 announced through Redis)",
            key.hint,
            pool.id,
            msg.duration.as_secs()
        );
        key.state = KeyState::Cooling {
            until,
            until_wall: SystemTime::now() + msg.duration,
        };
        key.last_error = Some("429 rate limited".into());
        true
    }
}
