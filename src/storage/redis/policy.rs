//! Whether Redis answers, as the last call found it. A change is logged once
//! (not once per request), with what the limits do meanwhile; while Redis is
//! down a probe pings it every second, so recovery is noticed (and `/health`
//! turns back to ok) even when no request comes in.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::RedisShared;
use crate::config::DownPolicy;

// 0: not yet asked.
const UP: u8 = 1;
const DOWN: u8 = 2;

/// How often a down Redis is pinged.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Redis's last known state; starts unknown (not yet asked).
#[derive(Debug, Default)]
pub struct Availability(AtomicU8);

impl Availability {
    /// Up, or not yet asked: only a failed call makes it down.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed) != DOWN
    }

    pub(crate) fn mark_up(&self) {
        if self.0.swap(UP, Ordering::Relaxed) == DOWN {
            log::warn!("Redis answers again: shared limits are enforced again");
        }
    }

    pub(crate) fn mark_down(&self, reason: &str, shared: &RedisShared) {
        if self.0.swap(DOWN, Ordering::Relaxed) != DOWN {
            log::error!(
                "Redis is down ({reason}): endpoint and user limits {}, per-IP limits {} until it answers",
                describe(shared.quotas_policy()),
                describe(shared.ip_limits_policy()),
            );
        }
    }
}

fn describe(policy: DownPolicy) -> &'static str {
    match policy {
        DownPolicy::FailOpen => "let requests through (fail_open)",
        DownPolicy::FailClosed => "refuse requests (fail_closed)",
    }
}

/// Pings Redis every second while it is down; ends with the last handle.
pub(crate) fn spawn_probe(shared: &RedisShared) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(&shared.inner);
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let shared = RedisShared { inner };
            if !shared.is_up() {
                let _ = shared.ping().await;
            }
        }
    });
}

/// The answer a limit gives while Redis is down: `open` under fail_open,
/// `closed` under fail_closed.
pub fn when_down<T>(policy: DownPolicy, open: T, closed: T) -> T {
    match policy {
        DownPolicy::FailOpen => open,
        DownPolicy::FailClosed => closed,
    }
}

/// Retry-After of a request refused because Redis is down (fail_closed).
pub const RETRY_WHILE_DOWN: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_down_follows_the_policy() {
        assert_eq!(when_down(DownPolicy::FailOpen, 1, 2), 1);
        assert_eq!(when_down(DownPolicy::FailClosed, 1, 2), 2);
        assert!(Availability::default().is_up());
    }
}
