//! What the admin API shows of a user: everything but the key's digest, with
//! each quota's standing in its current period.

use serde::Serialize;

use super::admission::UserState;
use super::model::{Period, Role, Totals};
use super::period::period_end;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserView {
    pub id: String,
    pub name: String,
    /// `…` and the key's last 4 characters.
    pub key: String,
    pub role: Role,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub quotas: Vec<QuotaView>,
    pub expires_at: Option<u64>,
    pub expires_after_first_use_hours: Option<u64>,
    pub max_ips: Option<u32>,
    pub allowed_models: Vec<String>,
    pub max_concurrent: Option<u32>,
    pub created_at: u64,
    pub first_used_at: Option<u64>,
    pub last_used_at: Option<u64>,
    pub in_flight: u32,
    pub totals: Totals,
    pub from_config: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuotaView {
    pub models: String,
    pub tokens: u64,
    pub period: Period,
    pub used: u64,
    pub remaining: u64,
    /// Unix seconds when the quota starts over (null: never).
    pub refreshes_at: Option<u64>,
}

impl UserView {
    pub fn of(state: &mut UserState, now: u64) -> Self {
        state.roll_quotas(now);
        let user = &state.user;
        UserView {
            id: user.id.clone(),
            name: user.name.clone(),
            key: format!("…{}", user.key_hint),
            role: user.role,
            enabled: user.enabled,
            disabled_reason: user.disabled_reason.clone(),
            rpm: user.rpm,
            tpm: user.tpm,
            quotas: user
                .quotas
                .iter()
                .zip(&user.quota_usage)
                .map(|(q, u)| QuotaView {
                    models: q.models.clone(),
                    tokens: q.tokens,
                    period: q.period,
                    used: u.used,
                    remaining: q.tokens.saturating_sub(u.used),
                    refreshes_at: period_end(q.period, now),
                })
                .collect(),
            expires_at: user.expiry(),
            expires_after_first_use_hours: user.expires_after_first_use_hours,
            max_ips: user.max_ips,
            allowed_models: user.allowed_models.clone(),
            max_concurrent: user.max_concurrent,
            created_at: user.created_at,
            first_used_at: user.first_used_at,
            last_used_at: user.last_used_at,
            in_flight: state.in_flight,
            totals: user.totals.clone(),
            from_config: user.from_config,
        }
    }
}
