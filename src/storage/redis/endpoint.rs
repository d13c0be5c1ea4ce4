//! One endpoint's RPM (60 s) and RPD (24 h) windows in Redis, shared by
//! every instance: `<prefix>endpoint:{<id>}:rpm` and `…:rpd`. Check and
//! count are one script call, both windows at once.

use std::time::Duration;

use super::{limit_arg, window_ms, RedisDown, RedisShared};
use crate::config::Limit;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// Counts in both windows and whether both have room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointCounts {
    pub rpm: u64,
    pub rpd: u64,
    pub has_room: bool,
}

/// The shared windows of one endpoint.
#[derive(Clone)]
pub struct EndpointWindows {
    redis: RedisShared,
    rpm_key: String,
    rpd_key: String,
    rpm_limit: Limit,
    rpd_limit: Limit,
}

impl EndpointWindows {
    pub fn new(redis: RedisShared, endpoint_id: &str, rpm_limit: Limit, rpd_limit: Limit) -> Self {
        EndpointWindows {
            rpm_key: redis.key("endpoint", endpoint_id, "rpm"),
            rpd_key: redis.key("endpoint", endpoint_id, "rpd"),
            redis,
            rpm_limit,
            rpd_limit,
        }
    }

    pub fn redis(&self) -> &RedisShared {
        &self.redis
    }

    /// Takes one request slot in both windows, or says how long until one
    /// frees (the longer wait of the two).
    pub async fn try_acquire(&self) -> Result<Result<(), Duration>, RedisDown> {
        self.try_acquire_at(0).await
    }

    /// Counts without taking a slot.
    pub async fn counts(&self) -> Result<EndpointCounts, RedisDown> {
        let (_, _, counts) = self.call(0, false).await?;
        Ok(counts)
    }

    /// [`Self::try_acquire`] at a given time (0 = the Redis clock).
    pub(crate) async fn try_acquire_at(
        &self,
        now_ms: u64,
    ) -> Result<Result<(), Duration>, RedisDown> {
        let (admitted, wait_ms, _) = self.call(now_ms, true).await?;
        Ok(match admitted {
            true => Ok(()),
            false => Err(Duration::from_millis(wait_ms.max(1))),
        })
    }

    async fn call(
        &self,
        now_ms: u64,
        consume: bool,
    ) -> Result<(bool, u64, EndpointCounts), RedisDown> {
        let limit = |l: Limit| match l {
            Limit::Unlimited => None,
            Limit::Max(n) => Some(n),
        };
        let (admitted, wait_ms, rpm, rpd): (i64, u64, u64, u64) = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .endpoint_acquire
                    .key(&self.rpm_key)
                    .key(&self.rpd_key)
                    .arg(now_ms)
                    .arg(limit_arg(limit(self.rpm_limit)))
                    .arg(limit_arg(limit(self.rpd_limit)))
                    .arg(window_ms(MINUTE))
                    .arg(window_ms(DAY))
                    .arg(u8::from(consume)),
            )
            .await?;
        let has_room = admitted == 1;
        Ok((has_room, wait_ms, EndpointCounts { rpm, rpd, has_room }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::RedisServer;
    use super::*;
    use crate::limits::RateWindow;

    #[actix_web::test]
    async fn matches_the_in_process_window() {
        let Some(server) = RedisServer::start_or_skip("endpoint windows") else {
            return;
        };
        let redis = server.shared("t1:");
        let shared = EndpointWindows::new(redis, "up", Limit::Max(3), Limit::Unlimited);
        let mut local = RateWindow::new(MINUTE);
        let t0 = 1_700_000_000_000;
        for at in [
            t0,
            t0 + 1_000,
            t0 + 2_500,
            t0 + 5_000,
            t0 + 60_000,
            t0 + 61_200,
        ] {
            let expected = local.try_acquire(at, 3);
            let got = shared.try_acquire_at(at).await.unwrap();
            assert_eq!(got, expected, "at +{} ms", at - t0);
        }
    }

    #[actix_web::test]
    async fn both_windows_must_have_room_and_counts_read_only() {
        let Some(server) = RedisServer::start_or_skip("endpoint windows") else {
            return;
        };
        let redis = server.shared("t2:");
        let shared = EndpointWindows::new(redis, "up", Limit::Max(5), Limit::Max(2));
        assert_eq!(shared.try_acquire().await.unwrap(), Ok(()));
        assert_eq!(shared.try_acquire().await.unwrap(), Ok(()));
        let wait = shared.try_acquire().await.unwrap().unwrap_err();
        assert!(wait > Duration::from_secs(3600), "{wait:?}");
        let counts = shared.counts().await.unwrap();
        assert_eq!(
            counts,
            EndpointCounts {
                rpm: 2,
                rpd: 2,
                has_room: false
            },
            "a refused request is counted in neither window"
        );
        let zero = EndpointWindows::new(
            shared.redis().clone(),
            "off",
            Limit::Max(0),
            Limit::Unlimited,
        );
        assert_eq!(
            zero.try_acquire().await.unwrap(),
            Err(Duration::from_secs(60))
        );
    }
}
