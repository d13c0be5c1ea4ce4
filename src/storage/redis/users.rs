//! Per-user RPM, TPM, concurrency and token quotas in Redis, for several
//! instances serving the same users (`users::shared` calls them from the
//! Users handle; the actor keeps the rules that stay per instance). The
//! rules are those of `users::admission`, moved into two scripts:
//! [`UserCounters::reserve`] checks everything and, only if all pass,
//! counts the request and reserves its estimated prompt tokens;
//! [`UserCounters::charge`] drops the reservation and charges what was
//! really used. [`UserCounters::prepare`] names a reservation before it is
//! asked for, so a caller dropped mid-call can still release it.
//!
//! Keys of user `u` (`<prefix>user:{u}:…`): `requests` and `tokens` (60 s
//! windows), `reserved` (sorted set of running requests, member
//! `<random id>:<tokens>`, score = when it lapses, so a crashed instance's
//! reservations expire by themselves), and per quota `quota:<id>:<period
//! start>` (tokens used in that period; a new period is a new key) and
//! `quota:<id>:reserved`.

use std::time::Duration;

use super::{limit_arg, RedisDown, RedisShared};
use crate::limits::now_ms;

/// Slack kept on a quota counter after its period ends (the admin view may
/// still read it).
const QUOTA_KEPT_AFTER_PERIOD: Duration = Duration::from_secs(86_400);

/// One quota that matches the request's model, as the Users actor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Stable while the quota exists, e.g. `"<models>|<period>"`.
    pub id: String,
    /// Tokens allowed per period.
    pub tokens: u64,
    /// Start of the current period, Unix seconds (`users::period`).
    pub period_start: u64,
    /// End of the current period, Unix seconds; `None` = never refreshes.
    pub period_end: Option<u64>,
}

/// The user's limits for one request.
#[derive(Debug, Clone, Copy)]
pub struct UserLimits<'a> {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u32>,
    /// Only the quotas matching the requested model.
    pub quotas: &'a [QuotaWindow],
}

/// Why the shared counters refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRefusal {
    TooManyConcurrent {
        max: u32,
    },
    Rpm {
        retry_after: Duration,
    },
    Tpm {
        retry_after: Duration,
    },
    /// The quota at this index of [`UserLimits::quotas`] is used up.
    Quota {
        index: usize,
    },
}

/// What an admitted request holds until [`UserCounters::charge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedReservation {
    member: String,
    /// Estimated prompt tokens reserved.
    pub tokens: u64,
    /// Per quota: (used counter, reservations set, counter ttl ms).
    quota_keys: Vec<(String, String, u64)>,
}

/// A user's shared counters, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedUserUsage {
    pub requests_last_minute: u64,
    pub tokens_last_minute: u64,
    pub in_flight: u64,
    pub reserved_tokens: u64,
    /// Tokens used in the current period, parallel to the quotas asked.
    pub quota_used: Vec<u64>,
}

#[derive(Clone)]
pub struct UserCounters {
    redis: RedisShared,
}

impl UserCounters {
    pub fn new(redis: RedisShared) -> Self {
        UserCounters { redis }
    }

    fn key(&self, user_id: &str, part: &str) -> String {
        self.redis.key("user", user_id, part)
    }

    fn quota_keys(&self, user_id: &str, quota: &QuotaWindow) -> (String, String, u64) {
        let now_s = now_ms() / 1000;
        let ttl_ms = quota.period_end.map_or(0, |end| {
            end.saturating_sub(now_s) * 1000 + QUOTA_KEPT_AFTER_PERIOD.as_millis() as u64
        });
        (
            self.key(
                user_id,
                &format!("quota:{}:{}", quota.id, quota.period_start),
            ),
            self.key(user_id, &format!("quota:{}:reserved", quota.id)),
            ttl_ms,
        )
    }

    /// The reservation a request would hold: its id and keys, made before
    /// the script runs so that a caller cancelled while waiting for Redis
    /// can still release it ([`Self::release`] of a reservation never held
    /// does nothing).
    pub fn prepare(
        &self,
        user_id: &str,
        quotas: &[QuotaWindow],
        estimate: u64,
    ) -> SharedReservation {
        SharedReservation {
            member: format!("{:016x}:{estimate}", fastrand::u64(..)),
            tokens: estimate,
            quota_keys: quotas.iter().map(|q| self.quota_keys(user_id, q)).collect(),
        }
    }

    /// Checks concurrency, RPM, TPM and the quotas in one script; when all
    /// pass, counts the request and reserves `estimate` tokens for at most
    /// `hold` (longer than any request may run).
    pub async fn reserve(
        &self,
        user_id: &str,
        limits: &UserLimits<'_>,
        estimate: u64,
        hold: Duration,
    ) -> Result<Result<SharedReservation, UserRefusal>, RedisDown> {
        self.reserve_at(0, user_id, limits, estimate, hold).await
    }

    pub(crate) async fn reserve_at(
        &self,
        now_ms: u64,
        user_id: &str,
        limits: &UserLimits<'_>,
        estimate: u64,
        hold: Duration,
    ) -> Result<Result<SharedReservation, UserRefusal>, RedisDown> {
        let reservation = self.prepare(user_id, limits.quotas, estimate);
        let outcome = self
            .reserve_prepared_at(now_ms, user_id, limits, &reservation, hold)
            .await?;
        Ok(outcome.map(|()| reservation))
    }

    /// [`Self::reserve`] of a reservation made by [`Self::prepare`] with
    /// the same quotas.
    pub async fn reserve_prepared(
        &self,
        user_id: &str,
        limits: &UserLimits<'_>,
        reservation: &SharedReservation,
        hold: Duration,
    ) -> Result<Result<(), UserRefusal>, RedisDown> {
        self.reserve_prepared_at(0, user_id, limits, reservation, hold)
            .await
    }

    async fn reserve_prepared_at(
        &self,
        now_ms: u64,
        user_id: &str,
        limits: &UserLimits<'_>,
        reservation: &SharedReservation,
        hold: Duration,
    ) -> Result<Result<(), UserRefusal>, RedisDown> {
        let script = &self.redis.scripts().user_reserve;
        let mut invocation = script.key(self.key(user_id, "requests"));
        invocation
            .key(self.key(user_id, "tokens"))
            .key(self.key(user_id, "reserved"));
        for (used, reserved, _) in &reservation.quota_keys {
            invocation.key(used).key(reserved);
        }
        invocation
            .arg(now_ms)
            .arg(limit_arg(limits.rpm))
            .arg(limit_arg(limits.tpm))
            .arg(limit_arg(limits.max_concurrent.map(u64::from)))
            .arg(reservation.tokens)
            .arg(&reservation.member)
            .arg(hold.as_millis() as u64);
        for quota in limits.quotas {
            invocation.arg(quota.tokens);
        }
        let (code, value): (u8, u64) = self.redis.invoke(&invocation).await?;
        Ok(match code {
            0 => Ok(()),
            1 => Err(UserRefusal::Rpm {
                retry_after: Duration::from_millis(value.max(1)),
            }),
            2 => Err(UserRefusal::Tpm {
                retry_after: Duration::from_millis(value.max(1)),
            }),
            3 => Err(UserRefusal::Quota {
                index: value as usize,
            }),
            _ => Err(UserRefusal::TooManyConcurrent {
                max: u32::try_from(value).unwrap_or(u32::MAX),
            }),
        })
    }

    /// Ends a request: drops its reservation and charges `tokens_used`
    /// (prompt + completion) to TPM and its quotas. True when the
    /// reservation was still held (false: it had lapsed).
    pub async fn charge(
        &self,
        user_id: &str,
        reservation: &SharedReservation,
        tokens_used: u64,
    ) -> Result<bool, RedisDown> {
        self.charge_at(0, user_id, reservation, tokens_used).await
    }

    /// Ends a request that used nothing.
    pub async fn release(
        &self,
        user_id: &str,
        reservation: &SharedReservation,
    ) -> Result<bool, RedisDown> {
        self.charge(user_id, reservation, 0).await
    }

    pub(crate) async fn charge_at(
        &self,
        now_ms: u64,
        user_id: &str,
        reservation: &SharedReservation,
        tokens_used: u64,
    ) -> Result<bool, RedisDown> {
        let script = &self.redis.scripts().user_charge;
        let mut invocation = script.key(self.key(user_id, "tokens"));
        invocation.key(self.key(user_id, "reserved"));
        for (used, reserved, _) in &reservation.quota_keys {
            invocation.key(used).key(reserved);
        }
        invocation
            .arg(now_ms)
            .arg(&reservation.member)
            .arg(tokens_used);
        for (_, _, ttl_ms) in &reservation.quota_keys {
            invocation.arg(*ttl_ms);
        }
        let held: u8 = self.redis.invoke(&invocation).await?;
        Ok(held == 1)
    }

    /// Forgets what the user used of `quota` in its current period (the
    /// admin's quota reset). True when there was usage to forget.
    pub async fn reset_quota(&self, user_id: &str, quota: &QuotaWindow) -> Result<bool, RedisDown> {
        let (used, _, _) = self.quota_keys(user_id, quota);
        let removed: u64 = self.redis.query(::redis::cmd("DEL").arg(used)).await?;
        Ok(removed > 0)
    }

    /// The user's shared counters now; `quotas` as for [`Self::reserve`].
    pub async fn usage(
        &self,
        user_id: &str,
        quotas: &[QuotaWindow],
    ) -> Result<SharedUserUsage, RedisDown> {
        self.usage_at(0, user_id, quotas).await
    }

    pub(crate) async fn usage_at(
        &self,
        now_ms: u64,
        user_id: &str,
        quotas: &[QuotaWindow],
    ) -> Result<SharedUserUsage, RedisDown> {
        let script = &self.redis.scripts().user_usage;
        let mut invocation = script.key(self.key(user_id, "requests"));
        invocation
            .key(self.key(user_id, "tokens"))
            .key(self.key(user_id, "reserved"));
        for quota in quotas {
            invocation.key(self.quota_keys(user_id, quota).0);
        }
        invocation.arg(now_ms);
        let values: Vec<u64> = self.redis.invoke(&invocation).await?;
        let at = |i: usize| values.get(i).copied().unwrap_or(0);
        Ok(SharedUserUsage {
            requests_last_minute: at(0),
            tokens_last_minute: at(1),
            in_flight: at(2),
            reserved_tokens: at(3),
            quota_used: values.iter().skip(4).copied().collect(),
        })
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
