//! Step 4, select: order the candidate endpoints by the configured strategy
//! (see [`order`] for each one's exact order), then take the first that has
//! RPM/RPD room and (unless the client brought its own key, or the endpoint
//! is a mock) a key that is not cooling down.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::actors::key_pool::{KeyLease, KeyOutcome, NoKey};
use crate::config::{Limit, ProviderKind, Strategy};
use crate::error::GatewayError;
use crate::state::{AppState, Live};

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

/// Candidates in the order the strategy prefers, for a request for `model`
/// (the client's name, `""` when none; each endpoint is priced for the
/// upstream name it maps `model` to).
///
/// - `random`: shuffled. `round_robin`: rotated one step per request.
///   `weighted`: drawn one by one in proportion to `weight`.
/// - `least_latency`: smallest smoothed time to first byte first; not yet
///   measured endpoints before all others, so each gets measured.
/// - `cost`: cheapest first by input + output USD per 1M tokens of the
///   upstream model on that endpoint (endpoint `prices`, then `[pricing]`,
///   then the built-in prices); endpoints whose price is unknown last;
///   equal prices in random order.
/// - `quota`: most remaining daily requests first (the endpoint's `rpd`
///   minus the requests in its rolling 24 h window; unlimited counts as the
///   most), then the `cost` order, then the `least_latency` order, then
///   random.
pub async fn order(state: &AppState, live: &Live, candidates: &[usize], model: &str) -> Vec<usize> {
    let mut ordered = candidates.to_vec();
    let endpoints = &live.config.endpoints;
    match live.config.routing.strategy {
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
            ordered.sort_by_key(|&i| live.latency_of(i));
        }
        Strategy::Cost => {
            fastrand::shuffle(&mut ordered);
            let mut keyed: Vec<_> = ordered
                .iter()
                .map(|&i| (i, price(live, i, model)))
                .collect();
            keyed.sort_by(|a, b| cheaper(a.1, b.1));
            ordered = keyed.into_iter().map(|(i, _)| i).collect();
        }
        Strategy::Quota => {
            fastrand::shuffle(&mut ordered);
            let mut keyed = Vec::with_capacity(ordered.len());
            for i in ordered {
                let left = remaining_today(live, i).await;
                keyed.push((i, left, price(live, i, model), live.latency_of(i)));
            }
            keyed.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| cheaper(a.2, b.2))
                    .then_with(|| a.3.cmp(&b.3))
            });
            ordered = keyed.into_iter().map(|(i, ..)| i).collect();
        }
    }
    ordered
}

/// The sort key of the `cost` strategy: input + output per 1M tokens.
fn price(live: &Live, endpoint: usize, model: &str) -> Option<f64> {
    let upstream = live.config.endpoints[endpoint].upstream_model(model);
    live.price(endpoint, upstream).map(|p| p.sort_key())
}

/// Known prices ascending, unknown ones after them.
fn cheaper(a: Option<f64>, b: Option<f64>) -> CmpOrdering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => CmpOrdering::Less,
        (None, Some(_)) => CmpOrdering::Greater,
        (None, None) => CmpOrdering::Equal,
    }
}

/// Requests the endpoint may still take in its rolling day; `u64::MAX` when
/// unlimited, 0 when its limiter cannot be asked.
async fn remaining_today(live: &Live, endpoint: usize) -> u64 {
    match live.config.endpoints[endpoint].rpd {
        Limit::Unlimited => u64::MAX,
        Limit::Max(max) => match live.rate_limiters[endpoint].snapshot().await {
            Ok(snapshot) => max.saturating_sub(snapshot.rpd),
            Err(_) => 0,
        },
    }
}

/// Walks the ordered candidates (minus `excluded`) until one admits the
/// request. `own_key`: the client brings its key (passthrough); `model`: the
/// client's model name (`""` when none), which the `cost` and `quota`
/// strategies price.
pub async fn select(
    state: &AppState,
    live: &Live,
    candidates: &[usize],
    excluded: &[usize],
    own_key: bool,
    model: &str,
) -> Result<Result<Selected, NoCapacity>, GatewayError> {
    let mut earliest: Option<Duration> = None;
    let mut busy = false;
    for endpoint in order(state, live, candidates, model).await {
        if excluded.contains(&endpoint) {
            continue;
        }
        let config = &live.config.endpoints[endpoint];
        let needs_key = !own_key && config.provider != ProviderKind::Mock;
        let lease = match needs_key {
            false => None,
            true => match state.key_pool.acquire(endpoint, &config.id).await? {
                Ok(lease) => Some(lease),
                Err(NoKey::Cooling { retry_after }) => {
                    busy = true;
                    earliest = Some(earliest.map_or(retry_after, |e| e.min(retry_after)));
                    continue;
                }
                Err(NoKey::NoneUsable) => continue,
            },
        };
        match live.rate_limiters[endpoint].try_acquire().await? {
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
