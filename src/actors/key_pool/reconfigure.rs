//! A new endpoint list (config reload): the pool is rebuilt by endpoint id,
//! so indexes follow the new config. Config keys that stay keep their
//! cooldown, latency and spending (revoked keys get another chance, as the
//! reload is what "until the next config load" means); runtime keys follow
//! their endpoint; runtime keys of an endpoint that is gone are parked (kept
//! on disk) and come back if it returns.

use super::pooled::{key_pool_endpoint, KeySource, KeyState, ParkedKey, PooledKey};
use super::{lock, KeyPool, KeyPoolHandle};
use crate::config::EndpointConfig;
use crate::error::GatewayError;

impl KeyPool {
    /// Replaces the endpoint list, keeping what can be kept.
    fn reconfigure(&mut self, endpoints: &[EndpointConfig]) {
        let mut old = std::mem::take(&mut self.endpoints);
        for endpoint in endpoints {
            let previous = old
                .iter()
                .position(|o| o.id == endpoint.id)
                .map(|i| old.swap_remove(i));
            let mut fresh = key_pool_endpoint(endpoint);
            let Some(mut previous) = previous else {
                self.endpoints.push(fresh);
                continue;
            };
            for key in &mut fresh.keys {
                if let Some(i) = previous.find(&key.id) {
                    let mut kept = previous.keys.remove(i);
                    if kept.source == KeySource::Config {
                        kept.secret = key.secret.clone();
                        if kept.state == KeyState::Revoked {
                            kept.state = KeyState::Active;
                            kept.last_error = None;
                        }
                        *key = kept;
                    }
                }
            }
            let runtime = previous
                .keys
                .into_iter()
                .filter(|k| k.source == KeySource::Runtime);
            fresh.keys.extend(runtime);
            self.endpoints.push(fresh);
        }
        for gone in old {
            let records = gone.keys.iter().filter_map(PooledKey::current_record);
            self.parked.extend(records.map(|record| ParkedKey {
                record,
                reason: "orphaned",
            }));
        }
        let parked = std::mem::take(&mut self.parked);
        for p in parked {
            let back = self.endpoints.iter().any(|e| e.id == p.record.endpoint);
            match (p.reason, back) {
                ("orphaned", true) => self.load(p.record),
                _ => self.parked.push(p),
            }
        }
    }
}

impl KeyPoolHandle {
    /// Rebuilds the pool for a reloaded endpoint list (same order as the new
    /// `config.endpoints`).
    pub async fn reconfigure(&self, endpoints: Vec<EndpointConfig>) -> Result<(), GatewayError> {
        lock(&self.pool).reconfigure(&endpoints);
        Ok(())
    }
}
