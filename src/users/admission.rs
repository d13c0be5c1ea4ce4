//! The per-user rules, as pure functions over one user's live state: may this
//! request start (expiry, models, IPs, concurrency, prompt size, RPM, TPM,
//! quotas), and what it used when it ended. Estimated prompt tokens are
//! reserved at the start so parallel requests cannot together overrun a TPM
//! limit or a quota by more than one request's completion.

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;
use std::time::Duration;

use super::model::{glob_matches, QuotaUsage, User};
use super::period::{period_end, period_start};
use crate::limits::RateWindow;
use crate::storage::redis::users::SharedReservation;

const MINUTE: Duration = Duration::from_secs(60);

/// A user with the live counters that are not persisted.
pub struct UserState {
    pub user: User,
    pub requests: RateWindow,
    pub tokens: RateWindow,
    /// Tokens reserved by requests still running (TPM).
    pub reserved_tpm: u64,
    /// Per quota (parallel to `user.quotas`): tokens reserved by running requests.
    pub reserved_quota: Vec<u64>,
    pub in_flight: u32,
    /// Client IPs seen, with the last time (Unix seconds).
    pub ips: HashMap<IpAddr, u64>,
}

impl UserState {
    pub fn new(user: User) -> Self {
        let quotas = user.quotas.len();
        let mut state = UserState {
            user,
            requests: RateWindow::new(MINUTE),
            tokens: RateWindow::new(MINUTE),
            reserved_tpm: 0,
            reserved_quota: vec![0; quotas],
            in_flight: 0,
            ips: HashMap::new(),
        };
        state.align_quotas();
        state
    }

    /// Keeps `quota_usage` and `reserved_quota` parallel to `quotas` after
    /// the quotas changed.
    pub fn align_quotas(&mut self) {
        let n = self.user.quotas.len();
        self.user.quota_usage.resize(n, QuotaUsage::default());
        self.reserved_quota.resize(n, 0);
    }

    /// Starts a new period for quotas whose period has ended.
    pub fn roll_quotas(&mut self, now: u64) {
        self.align_quotas();
        for (quota, usage) in self
            .user
            .quotas
            .iter()
            .zip(self.user.quota_usage.iter_mut())
        {
            let start = period_start(quota.period, now);
            if usage.period_start != start {
                usage.period_start = start;
                usage.used = 0;
            }
        }
    }

    pub fn matching_quotas(&self, model: Option<&str>) -> Vec<usize> {
        let Some(model) = model else {
            return Vec::new();
        };
        self.user
            .quotas
            .iter()
            .enumerate()
            .filter(|(_, q)| glob_matches(&q.models, model))
            .map(|(i, _)| i)
            .collect()
    }
}

/// One request's ask.
pub struct Ask<'a> {
    pub ip: IpAddr,
    pub model: Option<&'a str>,
    pub prompt_estimate: u64,
    /// The role's prompt cap, if any.
    pub max_prompt_tokens: Option<u64>,
    pub ip_window: Duration,
    pub now_ms: u64,
}

/// Why a user may not start a request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Disabled {
        reason: String,
    },
    Expired {
        at: u64,
    },
    ModelNotAllowed {
        model: String,
    },
    TooManyIps {
        max: u32,
    },
    TooManyConcurrent {
        max: u32,
    },
    PromptTooLarge {
        estimate: u64,
        limit: u64,
    },
    Rpm {
        limit: u64,
        retry_after: Duration,
    },
    Tpm {
        limit: u64,
        retry_after: Duration,
    },
    Quota {
        models: String,
        tokens: u64,
        refresh_at: Option<u64>,
    },
}

/// What a started request holds until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub tokens: u64,
    pub quotas: Vec<usize>,
    /// The reservation in Redis, when the shared counters admitted it
    /// (`users::shared`); its charge goes there.
    pub shared: Option<SharedReservation>,
}

impl Reservation {
    /// Nothing reserved in this process (the counters are elsewhere, or
    /// there are none).
    pub fn untracked() -> Self {
        Reservation {
            tokens: 0,
            quotas: Vec::new(),
            shared: None,
        }
    }
}

/// Checks every rule; on success counts the request and reserves its
/// estimated prompt tokens. Nothing is counted when it is refused.
pub fn admit(state: &mut UserState, ask: &Ask<'_>) -> Result<Reservation, Refusal> {
    let now = ask.now_ms / 1000;
    check_access(state, ask)?;
    if let Some(max) = state.user.max_concurrent {
        if state.in_flight >= max {
            return Err(Refusal::TooManyConcurrent { max });
        }
    }
    check_prompt_cap(ask)?;
    let user = &state.user;
    if let Some(limit) = user.rpm {
        if state.requests.count(ask.now_ms) >= limit {
            let retry_after = state.requests.time_until_below(ask.now_ms, limit);
            return Err(Refusal::Rpm { limit, retry_after });
        }
    }
    if let Some(limit) = user.tpm {
        let used = state.tokens.count(ask.now_ms) + state.reserved_tpm;
        if used >= limit {
            let below = limit.saturating_sub(state.reserved_tpm);
            let retry_after = state.tokens.time_until_below(ask.now_ms, below.max(1));
            return Err(Refusal::Tpm { limit, retry_after });
        }
    }
    state.roll_quotas(now);
    let quotas = state.matching_quotas(ask.model);
    for &i in &quotas {
        let quota = &state.user.quotas[i];
        let used = state.user.quota_usage[i].used + state.reserved_quota[i];
        if used >= quota.tokens {
            return Err(Refusal::Quota {
                models: quota.models.clone(),
                tokens: quota.tokens,
                refresh_at: period_end(quota.period, now),
            });
        }
    }
    // Admitted: count and reserve.
    state.requests.add(ask.now_ms, 1);
    state.reserved_tpm += ask.prompt_estimate;
    for &i in &quotas {
        state.reserved_quota[i] += ask.prompt_estimate;
    }
    mark_admitted(state, now);
    Ok(Reservation {
        tokens: ask.prompt_estimate,
        quotas,
        shared: None,
    })
}

/// The rules that stay with this process when Redis holds the counters:
/// enabled, expiry, allowed models, distinct IPs, the role's prompt cap.
/// Counts nothing (but may disable a user seen from too many IPs).
pub fn admit_local(state: &mut UserState, ask: &Ask<'_>) -> Result<(), Refusal> {
    check_access(state, ask)?;
    check_prompt_cap(ask)
}

/// A request was admitted: one more in flight, first and last use noted.
pub fn mark_admitted(state: &mut UserState, now: u64) {
    state.in_flight += 1;
    let user = &mut state.user;
    user.first_used_at.get_or_insert(now);
    user.last_used_at = Some(now);
}

/// Enabled, not expired, the model allowed, not too many IPs.
fn check_access(state: &mut UserState, ask: &Ask<'_>) -> Result<(), Refusal> {
    let now = ask.now_ms / 1000;
    let user = &state.user;
    if !user.enabled {
        return Err(Refusal::Disabled {
            reason: user
                .disabled_reason
                .clone()
                .unwrap_or_else(|| "disabled by an admin".into()),
        });
    }
    if let Some(at) = user.expiry() {
        if now >= at {
            return Err(Refusal::Expired { at });
        }
    }
    if let Some(model) = ask.model {
        if !user.allowed_models.is_empty()
            && !user.allowed_models.iter().any(|p| glob_matches(p, model))
        {
            return Err(Refusal::ModelNotAllowed {
                model: model.into(),
            });
        }
    }
    if let Some(max) = user.max_ips {
        let window = ask.ip_window.as_secs();
        state
            .ips
            .retain(|_, seen| seen.saturating_add(window) > now);
        state.ips.insert(ask.ip, now);
        if state.ips.len() > max as usize {
            state.user.enabled = false;
            state.user.disabled_reason = Some(format!(
                "used from more than {max} IP addresses within {} hours",
                window / 3600
            ));
            log::warn!("user {} disabled: more than {max} IPs", state.user.id);
            return Err(Refusal::TooManyIps { max });
        }
    }
    Ok(())
}

fn check_prompt_cap(ask: &Ask<'_>) -> Result<(), Refusal> {
    match ask.max_prompt_tokens {
        Some(limit) if ask.prompt_estimate > limit => Err(Refusal::PromptTooLarge {
            estimate: ask.prompt_estimate,
            limit,
        }),
        _ => Ok(()),
    }
}

/// What a finished request used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Used {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// Whether it counts as a request in the totals (it reached an endpoint
    /// or was answered).
    pub counted: bool,
}

/// Releases the reservation and charges what was really used.
pub fn charge(state: &mut UserState, reservation: &Reservation, used: Used, now_ms: u64) {
    let total = used.prompt_tokens + used.completion_tokens;
    state.reserved_tpm = state.reserved_tpm.saturating_sub(reservation.tokens);
    state.roll_quotas(now_ms / 1000);
    for &i in &reservation.quotas {
        if let Some(reserved) = state.reserved_quota.get_mut(i) {
            *reserved = reserved.saturating_sub(reservation.tokens);
        }
        if let Some(usage) = state.user.quota_usage.get_mut(i) {
            usage.used += total;
        }
    }
    if total > 0 {
        state.tokens.add(now_ms, total);
    }
    state.in_flight = state.in_flight.saturating_sub(1);
    let totals = &mut state.user.totals;
    totals.requests += u64::from(used.counted);
    totals.prompt_tokens += used.prompt_tokens;
    totals.completion_tokens += used.completion_tokens;
    totals.cost_usd += used.cost_usd;
}

/// Charges tokens with no reservation and no request in flight (Realtime
/// responses): quotas matching `model`, the TPM window and the totals.
pub fn charge_tokens(state: &mut UserState, model: Option<&str>, used: Used, now_ms: u64) {
    let total = used.prompt_tokens + used.completion_tokens;
    state.roll_quotas(now_ms / 1000);
    for i in state.matching_quotas(model) {
        if let Some(usage) = state.user.quota_usage.get_mut(i) {
            usage.used += total;
        }
    }
    if total > 0 {
        state.tokens.add(now_ms, total);
    }
    let totals = &mut state.user.totals;
    totals.requests += u64::from(used.counted);
    totals.prompt_tokens += used.prompt_tokens;
    totals.completion_tokens += used.completion_tokens;
    totals.cost_usd += used.cost_usd;
}
