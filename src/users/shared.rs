//! Per-user limits shared by every instance (`[storage] backend = "redis"`).
//! The user table keeps the rules that belong to one process (enabled,
//! expiry, first-use expiry, allowed models, distinct IPs, prompt cap) and
//! says which limits apply; RPM, TPM, concurrency and the model quotas are
//! then checked and consumed in Redis ([`UserCounters`]) by the handle,
//! outside the table's lock, so one slow round trip never holds up other
//! users.
//!
//! A user with none of those limits costs no Redis call. Every admitted
//! request's reservation is released exactly once: by the finish step's
//! charge, or here if the request is dropped while Redis is being asked.
//! While Redis does not answer, `on_redis_down_quotas` decides: fail_closed
//! refuses with a 503 ([`GatewayError::LimitsUnavailable`]), fail_open
//! admits on the local rules alone.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use super::admission::{Refusal, Reservation, Used};
use super::model::{glob_matches, Period, Quota, User};
use super::period::{period_end, period_start};
use super::table::{Admission, AuthRefusal, Authenticate, UserTable};
use super::view::UserView;
use crate::actors::lock;
use crate::config::{Config, DownPolicy};
use crate::error::GatewayError;
use crate::limits::now_ms;
use crate::storage::redis::users::{
    QuotaWindow, SharedReservation, UserCounters, UserLimits, UserRefusal,
};
use crate::storage::redis::{RedisDown, RedisShared};
use crate::users::unix_now;

/// The limits Redis counts for one user and one requested model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u32>,
    /// The quotas matching the model, without duplicates.
    pub quotas: Vec<Quota>,
}

impl SharedLimits {
    /// `None` when the user has no limit to share (then nothing is asked of
    /// Redis). A user with any limit is counted, even when no quota matches
    /// this model, so that its in-flight count stays whole.
    pub fn of(user: &User, model: Option<&str>) -> Option<Self> {
        let limited = user.rpm.is_some()
            || user.tpm.is_some()
            || user.max_concurrent.is_some()
            || !user.quotas.is_empty();
        if !limited {
            return None;
        }
        let mut quotas: Vec<Quota> = Vec::new();
        for quota in &user.quotas {
            let matches = model.is_some_and(|m| glob_matches(&quota.models, m));
            if matches && !quotas.contains(quota) {
                quotas.push(quota.clone());
            }
        }
        Some(SharedLimits {
            rpm: user.rpm,
            tpm: user.tpm,
            max_concurrent: user.max_concurrent,
            quotas,
        })
    }

    fn windows(&self, now: u64) -> Vec<QuotaWindow> {
        self.quotas.iter().map(|q| quota_window(q, now)).collect()
    }

    /// The refusal the local rules would have given.
    fn refusal(&self, refusal: UserRefusal, now: u64) -> Refusal {
        match refusal {
            UserRefusal::TooManyConcurrent { max } => Refusal::TooManyConcurrent { max },
            UserRefusal::Rpm { retry_after } => Refusal::Rpm {
                limit: self.rpm.unwrap_or_default(),
                retry_after,
            },
            UserRefusal::Tpm { retry_after } => Refusal::Tpm {
                limit: self.tpm.unwrap_or_default(),
                retry_after,
            },
            UserRefusal::Quota { index } => match self.quotas.get(index) {
                Some(quota) => Refusal::Quota {
                    models: quota.models.clone(),
                    tokens: quota.tokens,
                    refresh_at: period_end(quota.period, now),
                },
                None => Refusal::Quota {
                    models: String::new(),
                    tokens: 0,
                    refresh_at: None,
                },
            },
        }
    }
}

/// A quota's counter in its current period. The id holds everything that
/// defines the quota, so (as with the local counters) a changed quota
/// starts from zero and an unchanged one keeps its usage.
pub fn quota_window(quota: &Quota, now: u64) -> QuotaWindow {
    let period = match quota.period {
        Period::Daily => "daily",
        Period::Weekly => "weekly",
        Period::Monthly => "monthly",
        Period::Never => "never",
    };
    QuotaWindow {
        id: format!("{}|{period}|{}", quota.models, quota.tokens),
        tokens: quota.tokens,
        period_start: period_start(quota.period, now),
        period_end: period_end(quota.period, now),
    }
}

/// The Users handle's way to the shared counters.
#[derive(Clone)]
pub struct SharedUsers {
    redis: RedisShared,
    counters: UserCounters,
    /// How long a reservation outlives a crashed instance.
    hold: Duration,
}

impl SharedUsers {
    /// `hold`: longer than any request may run (its reservation lapses
    /// then, should the instance die before charging it).
    pub fn new(redis: RedisShared, hold: Duration) -> Self {
        SharedUsers {
            counters: UserCounters::new(redis.clone()),
            redis,
            hold,
        }
    }

    /// A reservation outlives its request only if the instance died: every
    /// attempt timed out, plus a minute.
    pub fn for_config(redis: &RedisShared, config: &Config) -> Self {
        let longest = config.server.request_timeout * config.limits.max_attempts.max(1);
        SharedUsers::new(redis.clone(), longest + Duration::from_secs(60))
    }

    /// The local rules in the table, then the shared limits in Redis. The
    /// table is locked before and after the wait for Redis, not across it.
    pub async fn authenticate(
        &self,
        table: &Mutex<UserTable>,
        ask: Authenticate<'_>,
    ) -> Result<Result<Admission, AuthRefusal>, GatewayError> {
        let estimate = ask.prompt_estimate;
        let local = lock(table).check_local_rules(&ask, now_ms());
        let local = match local {
            Ok(local) => local,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let admitted = |reservation| {
            Ok(Ok(Admission {
                user_id: local.user_id.clone(),
                role: local.role,
                reservation,
            }))
        };
        let Some(limits) = &local.limits else {
            return admitted(Reservation::untracked());
        };
        let now = unix_now();
        let windows = limits.windows(now);
        let ask = UserLimits {
            rpm: limits.rpm,
            tpm: limits.tpm,
            max_concurrent: limits.max_concurrent,
            quotas: &windows,
        };
        let user_id = local.user_id.as_str();
        let pending = PendingRelease {
            counters: self.counters.clone(),
            user_id: user_id.to_owned(),
            reservation: Some(self.counters.prepare(user_id, &windows, estimate)),
        };
        let Some(reservation) = &pending.reservation else {
            return admitted(Reservation::untracked());
        };
        let outcome = self
            .counters
            .reserve_prepared(user_id, &ask, reservation, self.hold)
            .await;
        match outcome {
            Ok(Ok(())) => {
                lock(table).mark_admitted(local.user_id.clone(), unix_now());
                admitted(Reservation {
                    shared: pending.settle(),
                    ..Reservation::untracked()
                })
            }
            Ok(Err(refusal)) => {
                pending.settle();
                Ok(Err(AuthRefusal::Refused(limits.refusal(refusal, now))))
            }
            // `pending` releases whatever the lost answer may have reserved.
            Err(_) => match self.redis.quotas_policy() {
                DownPolicy::FailOpen => {
                    lock(table).mark_admitted(local.user_id.clone(), unix_now());
                    admitted(Reservation::untracked())
                }
                DownPolicy::FailClosed => Err(GatewayError::LimitsUnavailable),
            },
        }
    }

    /// Drops the request's reservation in Redis and charges what it used
    /// (the table, charged separately, keeps the totals).
    pub fn charge(&self, user_id: String, reservation: SharedReservation, used: &Used) {
        let counters = self.counters.clone();
        let tokens = used.prompt_tokens + used.completion_tokens;
        spawn_detached(async move {
            if let Err(e) = counters.charge(&user_id, &reservation, tokens).await {
                log::debug!("user {user_id}: {tokens} tokens not charged in Redis: {e}");
            }
        });
    }

    /// Tokens used outside a request: charged to the user's TPM window and
    /// the quotas matching the model (`limits`: the user's for it), with no
    /// reservation.
    pub fn charge_tokens(&self, user_id: String, limits: SharedLimits, used: &Used) {
        let tokens = used.prompt_tokens + used.completion_tokens;
        if tokens == 0 {
            return;
        }
        let counters = self.counters.clone();
        spawn_detached(async move {
            let windows = limits.windows(unix_now());
            let unheld = counters.prepare(&user_id, &windows, 0);
            if let Err(e) = counters.charge(&user_id, &unheld, tokens).await {
                log::debug!("user {user_id}: {tokens} tokens not charged in Redis: {e}");
            }
        });
    }

    /// The view with quota usage and requests in flight as Redis counts
    /// them, all instances together. While Redis does not answer, the view
    /// stays this instance's own.
    pub async fn with_usage(&self, mut view: UserView) -> UserView {
        let limited = view.rpm.is_some()
            || view.tpm.is_some()
            || view.max_concurrent.is_some()
            || !view.quotas.is_empty();
        if !limited {
            return view;
        }
        let windows = view_windows(&view);
        match self.counters.usage(&view.id, &windows).await {
            Ok(usage) => {
                for (quota, used) in view.quotas.iter_mut().zip(usage.quota_used) {
                    quota.used = used;
                    quota.remaining = quota.tokens.saturating_sub(used);
                }
                view.in_flight = u32::try_from(usage.in_flight).unwrap_or(u32::MAX);
            }
            Err(e) => log::warn!("user {}: shared usage unavailable: {e}", view.id),
        }
        view
    }

    /// Forgets the current period's usage of every quota of the user.
    pub async fn reset_quotas(&self, view: &UserView) -> Result<(), RedisDown> {
        for window in view_windows(view) {
            self.counters.reset_quota(&view.id, &window).await?;
        }
        Ok(())
    }
}

fn view_windows(view: &UserView) -> Vec<QuotaWindow> {
    let now = unix_now();
    view.quotas
        .iter()
        .map(|q| {
            let quota = Quota {
                models: q.models.clone(),
                tokens: q.tokens,
                period: q.period,
            };
            quota_window(&quota, now)
        })
        .collect()
}

/// A reservation asked of Redis whose answer has not been taken yet: if
/// the request is dropped meanwhile (the client left), it is released.
struct PendingRelease {
    counters: UserCounters,
    user_id: String,
    reservation: Option<SharedReservation>,
}

impl PendingRelease {
    /// The answer came: the caller owns the reservation now.
    fn settle(mut self) -> Option<SharedReservation> {
        self.reservation.take()
    }
}

impl Drop for PendingRelease {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            let (counters, user_id) = (self.counters.clone(), std::mem::take(&mut self.user_id));
            spawn_detached(async move {
                let _ = counters.release(&user_id, &reservation).await;
            });
        }
    }
}

/// Runs `task` on the current Tokio runtime, if there is one (a `Drop` at
/// shutdown may come after it).
fn spawn_detached(task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(task);
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
