//! Per-IP state in Redis, shared by every instance: the request window of
//! the per-IP limit (`<prefix>ip:{<ip>}:requests`), the error window
//! (`…:errors`) and one sorted set of bans (`<prefix>bans`, member = IP,
//! score = banned until, ms). A ban made through one instance refuses the
//! IP on all of them.

use std::net::IpAddr;
use std::time::Duration;

use super::{limit_arg, window_ms, RedisDown, RedisShared};
use crate::config::LimitsConfig;

/// What the shared blacklist says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedVerdict {
    Allowed,
    Banned { retry_after: Duration },
    Limited { retry_after: Duration },
}

/// One current ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBan {
    pub ip: IpAddr,
    pub banned_until_ms: u64,
    pub errors: u64,
}

#[derive(Clone)]
pub struct SharedBlacklist {
    redis: RedisShared,
    limits: LimitsConfig,
    bans_key: String,
}

impl SharedBlacklist {
    pub fn new(redis: RedisShared, limits: LimitsConfig) -> Self {
        SharedBlacklist {
            bans_key: redis.global_key("bans"),
            redis,
            limits,
        }
    }

    pub fn redis(&self) -> &RedisShared {
        &self.redis
    }

    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    fn ip_key(&self, ip: IpAddr, part: &str) -> String {
        self.redis.key("ip", &ip.to_string(), part)
    }

    /// Bans first (a banned IP is not counted), then the per-IP window;
    /// counts the request when it is allowed.
    pub async fn check(&self, ip: IpAddr) -> Result<SharedVerdict, RedisDown> {
        let (code, wait_ms): (u8, u64) = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .ip_check
                    .key(&self.bans_key)
                    .key(self.ip_key(ip, "requests"))
                    .arg(0)
                    .arg(ip.to_string())
                    .arg(limit_arg(self.limits.ip_requests))
                    .arg(window_ms(self.limits.ip_interval)),
            )
            .await?;
        let retry_after = Duration::from_millis(wait_ms.max(1));
        Ok(match code {
            2 => SharedVerdict::Banned { retry_after },
            3 => SharedVerdict::Limited { retry_after },
            _ => SharedVerdict::Allowed,
        })
    }

    /// Counts a client error with its weight; true when it banned the IP.
    /// Does nothing (false) when the error threshold is off.
    pub async fn record_error(&self, ip: IpAddr, weight: u64) -> Result<bool, RedisDown> {
        let Some(threshold) = self.limits.ip_error_threshold else {
            return Ok(false);
        };
        let banned: u8 = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .ip_record_error
                    .key(self.ip_key(ip, "errors"))
                    .key(&self.bans_key)
                    .arg(0)
                    .arg(ip.to_string())
                    .arg(weight.max(1))
                    .arg(threshold)
                    .arg(window_ms(self.limits.ip_error_window)),
            )
            .await?;
        if banned == 1 {
            log::warn!("blacklisted {ip} after {threshold} client errors (shared)");
        }
        Ok(banned == 1)
    }

    /// Lifts the ban and forgets the IP's errors and requests; true when
    /// there was anything to forget.
    pub async fn unban(&self, ip: IpAddr) -> Result<bool, RedisDown> {
        let removed: u8 = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .ip_unban
                    .key(&self.bans_key)
                    .key(self.ip_key(ip, "errors"))
                    .key(self.ip_key(ip, "requests"))
                    .arg(ip.to_string()),
            )
            .await?;
        Ok(removed == 1)
    }

    /// IPs banned now, sorted by IP.
    pub async fn list(&self) -> Result<Vec<SharedBan>, RedisDown> {
        // The script builds each IP's error key as ARGV[2] .. ip .. ARGV[3].
        let marker = "\u{0}";
        let template = self.redis.key("ip", marker, "errors");
        let (before, after) = template.split_once(marker).unwrap_or((&template, ""));
        let flat: Vec<(String, u64, u64)> = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .ip_list_bans
                    .key(&self.bans_key)
                    .arg(0)
                    .arg(before)
                    .arg(after)
                    .arg(window_ms(self.limits.ip_error_window)),
            )
            .await?;
        let mut bans: Vec<SharedBan> = flat
            .into_iter()
            .filter_map(|(ip, banned_until_ms, errors)| {
                Some(SharedBan {
                    ip: ip.parse().ok()?,
                    banned_until_ms,
                    errors,
                })
            })
            .collect();
        bans.sort_by_key(|b| b.ip);
        Ok(bans)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::RedisServer;
    use super::*;

    fn limits(ip_requests: Option<u64>, threshold: Option<u64>) -> LimitsConfig {
        LimitsConfig {
            ip_requests,
            ip_interval: Duration::from_secs(60),
            ip_error_threshold: threshold,
            ip_error_window: Duration::from_secs(600),
            max_attempts: 1,
            blocked_cidrs: Vec::new(),
            reject_phrases: Vec::new(),
        }
    }

    #[actix_web::test]
    async fn per_ip_limit_then_ban_shared_between_two_handles() {
        let Some(server) = RedisServer::start_or_skip("shared blacklist") else {
            return;
        };
        let one = SharedBlacklist::new(server.shared("b1:"), limits(Some(2), Some(3)));
        let two = SharedBlacklist::new(server.shared("b1:"), limits(Some(2), Some(3)));
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(one.check(ip).await.unwrap(), SharedVerdict::Allowed);
        assert_eq!(two.check(ip).await.unwrap(), SharedVerdict::Allowed);
        assert!(matches!(
            one.check(ip).await.unwrap(),
            SharedVerdict::Limited { retry_after } if retry_after <= Duration::from_secs(60)
        ));

        let other: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(!one.record_error(other, 1).await.unwrap());
        assert!(one.record_error(other, 2).await.unwrap(), "3 of 3: banned");
        assert!(!two.record_error(other, 1).await.unwrap(), "already banned");
        let SharedVerdict::Banned { retry_after } = two.check(other).await.unwrap() else {
            panic!("the other handle must see the ban");
        };
        assert!(retry_after > Duration::from_secs(590), "{retry_after:?}");
        let bans = two.list().await.unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].ip, bans[0].errors), (other, 4));

        assert!(one.unban(other).await.unwrap());
        assert!(!one.unban(other).await.unwrap());
        assert_eq!(two.check(other).await.unwrap(), SharedVerdict::Allowed);
        assert!(two.list().await.unwrap().is_empty());
    }

    #[actix_web::test]
    async fn threshold_off_records_nothing() {
        let Some(server) = RedisServer::start_or_skip("shared blacklist") else {
            return;
        };
        let list = SharedBlacklist::new(server.shared("b2:"), limits(None, None));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            assert!(!list.record_error(ip, 10).await.unwrap());
            assert_eq!(list.check(ip).await.unwrap(), SharedVerdict::Allowed);
        }
    }
}
