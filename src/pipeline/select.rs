//! Step 4, select: order the candidate endpoints by the configured strategy,
//! then take the first that has RPM/RPD room and (unless the client brought
//! its own key, or the endpoint is a mock) a key that is not cooling down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::actors::key_pool::{KeyLease, KeyOutcome, NoKey};
use crate::config::{ProviderKind, Strategy};
use crate::error::GatewayError;
use crate::state::AppState;

/// An endpoint with a slot counted and, when it needs one, a key lent.
#[derive(Debug)]
pub struct Selected {
    pub endpoint: usize,
    pub lease: Option<KeyLease>,
}

/// Why nothing could be selected.
#[derive(Debug, PartialEq, Eq)]
pub enum NoCapacity {
    /// Limits or cooldowns: the earliest moment one candidate frees up.
    Busy { retry_after: Duration },
    /// Every candidate lacks a usable key.
    NoKeys,
}

/// Candidates in the order the strategy prefers.
pub fn order(state: &AppState, candidates: &[usize]) -> Vec<usize> {
    let mut ordered = candidates.to_vec();
    let endpoints = &state.config.endpoints;
    match state.config.routing.strategy {
        Strategy::Random => fastrand::shuffle(&mut ordered),
        Strategy::RoundRobin => {
            if !ordered.is_empty() {
                let turn = state.round_robin.fetch_add(1, Ordering::Relaxed);
                let len = ordered.len();
                ordered.rotate_left(turn % len);
            }
        }
        Strategy::Weighted => {
            let mut pool = ordered;
            ordered = Vec::with_capacity(pool.len());
            while !pool.is_empty() {
                let total: u64 = pool
                    .iter()
                    .map(|&i| u64::from(endpoints[i].weight.max(1)))
                    .sum();
                let mut ticket = fastrand::u64(0..total);
                let mut pick = 0;
                for (pos, &i) in pool.iter().enumerate() {
                    let weight = u64::from(endpoints[i].weight.max(1));
                    if ticket < weight {
                        pick = pos;
                        break;
                    }
                    ticket -= weight;
                }
                ordered.push(pool.remove(pick));
            }
        }
        Strategy::LeastLatency => {
            fastrand::shuffle(&mut ordered);
            // Unknown latency (0) sorts first so every endpoint gets measured.
            ordered.sort_by_key(|&i| state.latency_us[i].load(Ordering::Relaxed));
        }
    }
    ordered
}

/// Walks the ordered candidates (minus `excluded`) until one admits the
/// request. `own_key`: the client brings its key (passthrough).
pub async fn select(
    state: &AppState,
    candidates: &[usize],
    excluded: &[usize],
    own_key: bool,
) -> Result<Result<Selected, NoCapacity>, GatewayError> {
    let mut earliest: Option<Duration> = None;
    let mut busy = false;
    for endpoint in order(state, candidates) {
        if excluded.contains(&endpoint) {
            continue;
        }
        let needs_key = !own_key && state.config.endpoints[endpoint].provider != ProviderKind::Mock;
        let lease = match needs_key {
            false => None,
            true => match state.key_pool.acquire(endpoint).await? {
                Ok(lease) => Some(lease),
                Err(NoKey::Cooling { retry_after }) => {
                    busy = true;
                    earliest = Some(earliest.map_or(retry_after, |e| e.min(retry_after)));
                    continue;
                }
                Err(NoKey::NoneUsable) => continue,
            },
        };
        match state.rate_limiters[endpoint].try_acquire().await? {
            Ok(()) => return Ok(Ok(Selected { endpoint, lease })),
            Err(wait) => {
                busy = true;
                earliest = Some(earliest.map_or(wait, |e| e.min(wait)));
                if let Some(lease) = lease {
                    state.key_pool.report(lease, KeyOutcome::Unused);
                }
            }
        }
    }
    Ok(Err(match busy {
        true => NoCapacity::Busy {
            retry_after: earliest.unwrap_or(Duration::from_secs(1)),
        },
        false => NoCapacity::NoKeys,
    }))
}
