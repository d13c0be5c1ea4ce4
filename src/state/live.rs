//! Live: the part of the gateway's state that a config reload replaces as
//! one piece. A request takes the current snapshot once, at its start, and
//! keeps it to its end, so endpoint indexes, their rate limiters and their
//! latency cells always agree with the config that chose them; a reload
//! builds the next snapshot beside it and swaps it in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::actors::blacklist::BlacklistHandle;
use crate::actors::rate_limiter::RateLimiterHandle;
use crate::config::Config;
use crate::pricing::{Price, PriceMemo};

pub struct Live {
    pub config: Arc<Config>,
    /// One per endpoint, same order as `config.endpoints`.
    pub rate_limiters: Vec<RateLimiterHandle>,
    /// Per endpoint: smoothed time to first byte in µs (0 = not yet known),
    /// for the least_latency strategy.
    pub latency_us: Vec<AtomicU64>,
    /// Per-IP limits and bans, under this config's `[limits]`.
    pub blacklist: BlacklistHandle,
    /// Prices looked up under this config.
    pub prices: PriceMemo,
}

impl Live {
    /// The price of `model` (the upstream name) on endpoint `endpoint`
    /// ([`crate::pricing::endpoint_price`], remembered for this snapshot).
    pub fn price(&self, endpoint: usize, model: &str) -> Option<Price> {
        self.prices.endpoint_price(&self.config, endpoint, model)
    }

    /// Folds one observed time to first byte into the endpoint's average.
    pub fn observe_latency(&self, endpoint: usize, ttfb: Duration) {
        if let Some(cell) = self.latency_us.get(endpoint) {
            let sample = ttfb.as_micros().min(u128::from(u64::MAX)) as u64;
            let previous = cell.load(Ordering::Relaxed);
            let next = match previous {
                0 => sample.max(1),
                p => (p * 4 + sample) / 5,
            };
            cell.store(next.max(1), Ordering::Relaxed);
        }
    }

    /// The endpoint's smoothed latency in µs, 0 when unknown.
    pub fn latency_of(&self, endpoint: usize) -> u64 {
        self.latency_us
            .get(endpoint)
            .map_or(0, |cell| cell.load(Ordering::Relaxed))
    }

    /// The latency of the endpoint with id `id`, to carry over a reload.
    pub fn latency_by_id(&self, id: &str) -> u64 {
        self.config
            .endpoints
            .iter()
            .position(|e| e.id == id)
            .map_or(0, |i| self.latency_of(i))
    }
}
