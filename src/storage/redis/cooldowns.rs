//! Upstream key cooldowns shared by every instance: when one instance gets a
//! 429 for a key, the others stop lending that key too. Stored per endpoint
//! (`<prefix>cooldowns:{<endpoint>}:keys`, key id → until, ms on Redis's
//! clock) and announced on the channel `<prefix>cooldowns` as JSON
//! ([`Cooldown`]), so a key pool learns of them without asking per request.
//! [`SharedCooldowns::watch`] follows the channel, reconnecting by itself,
//! and replays the stored cooldowns after each (re)subscription so nothing
//! announced while it was away is missed. The KeyPool announces its 429s
//! and applies what it hears (`actors::key_pool::shared_cooldowns`).

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{RedisDown, RedisShared};

/// Wait between two attempts to subscribe while Redis is away.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// One key cooling down, as announced and as delivered by `watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cooldown {
    pub endpoint_id: String,
    /// The key's stable id (`KeyLease::stable_id`).
    pub key_id: String,
    /// How long from when it was announced (or replayed).
    pub cooldown_ms: u64,
}

impl Cooldown {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.cooldown_ms)
    }
}

#[derive(Clone)]
pub struct SharedCooldowns {
    redis: RedisShared,
    channel: String,
}

impl SharedCooldowns {
    pub fn new(redis: RedisShared) -> Self {
        SharedCooldowns {
            channel: redis.global_key("cooldowns"),
            redis,
        }
    }

    fn hash_key(&self, endpoint_id: &str) -> String {
        self.redis.key("cooldowns", endpoint_id, "keys")
    }

    /// Key `key_id` of `endpoint_id` cools down for `duration`; stored and
    /// announced unless a later cooldown of it is known. True when announced.
    pub async fn set_cooldown(
        &self,
        endpoint_id: &str,
        key_id: &str,
        duration: Duration,
    ) -> Result<bool, RedisDown> {
        let cooldown_ms = duration.as_millis() as u64;
        let message = serde_json::to_string(&Cooldown {
            endpoint_id: endpoint_id.to_owned(),
            key_id: key_id.to_owned(),
            cooldown_ms,
        })
        .map_err(|e| RedisDown(e.to_string()))?;
        let stored: u8 = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .cooldown_set
                    .key(self.hash_key(endpoint_id))
                    .arg(key_id)
                    .arg(cooldown_ms)
                    .arg(0)
                    .arg(&self.channel)
                    .arg(message),
            )
            .await?;
        Ok(stored == 1)
    }

    /// The endpoint's keys still cooling down, with the time left.
    pub async fn cooldowns(&self, endpoint_id: &str) -> Result<Vec<Cooldown>, RedisDown> {
        let flat: Vec<(String, u64)> = self
            .redis
            .invoke(
                self.redis
                    .scripts()
                    .cooldown_list
                    .key(self.hash_key(endpoint_id))
                    .arg(0),
            )
            .await?;
        Ok(flat
            .into_iter()
            .map(|(key_id, cooldown_ms)| Cooldown {
                endpoint_id: endpoint_id.to_owned(),
                key_id,
                cooldown_ms,
            })
            .collect())
    }

    /// Follows every announced cooldown (of any endpoint) until the receiver
    /// is dropped. After each (re)subscription the stored cooldowns of
    /// `endpoint_ids` are replayed first. Must run inside a Tokio runtime.
    pub fn watch(&self, endpoint_ids: Vec<String>) -> mpsc::UnboundedReceiver<Cooldown> {
        let (tx, rx) = mpsc::unbounded_channel();
        let this = self.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                if let Err(e) = this.follow(&endpoint_ids, &tx).await {
                    log::debug!("cooldown channel interrupted: {e}");
                }
                tokio::time::sleep(RESUBSCRIBE_EVERY).await;
            }
        });
        rx
    }

    /// One subscription: until the connection drops or the receiver goes.
    async fn follow(
        &self,
        endpoint_ids: &[String],
        tx: &mpsc::UnboundedSender<Cooldown>,
    ) -> Result<(), RedisDown> {
        let down = |e: ::redis::RedisError| RedisDown(e.to_string());
        let mut pubsub = self.redis.client().get_async_pubsub().await.map_err(down)?;
        pubsub.subscribe(&self.channel).await.map_err(down)?;
        for endpoint_id in endpoint_ids {
            for cooldown in self.cooldowns(endpoint_id).await? {
                if tx.send(cooldown).is_err() {
                    return Ok(());
                }
            }
        }
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Ok(cooldown) = serde_json::from_str::<Cooldown>(&payload) else {
                log::warn!("ignored a malformed cooldown announcement");
                continue;
            };
            if tx.send(cooldown).is_err() {
                return Ok(());
            }
        }
        Err(RedisDown("subscription ended".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::RedisServer;
    use super::*;

    #[actix_web::test]
    async fn stored_announced_and_replayed_after_a_restart() {
        let Some(mut server) = RedisServer::start_or_skip("shared cooldowns") else {
            return;
        };
        let one = SharedCooldowns::new(server.shared("c1:"));
        let two = SharedCooldowns::new(server.shared("c1:"));
        let mut feed = two.watch(vec!["up".into()]);
        // Let the watcher subscribe before announcing.
        tokio::time::sleep(Duration::from_millis(300)).await;

        assert!(one
            .set_cooldown("up", "k-1", Duration::from_secs(30))
            .await
            .unwrap());
        let heard = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (heard.endpoint_id.as_str(), heard.key_id.as_str()),
            ("up", "k-1")
        );
        assert_eq!(heard.cooldown_ms, 30_000);
        assert!(
            !one.set_cooldown("up", "k-1", Duration::from_secs(5))
                .await
                .unwrap(),
            "a shorter cooldown does not shorten a known one"
        );
        let stored = two.cooldowns("up").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].cooldown_ms > 29_000 && stored[0].cooldown_ms <= 30_000);
        assert!(two.cooldowns("other").await.unwrap().is_empty());

        // Redis restarts empty: the watcher resubscribes; a cooldown set
        // afterwards reaches it again.
        server.restart();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut announced = false;
        for _ in 0..20 {
            if one
                .set_cooldown("up", "k-2", Duration::from_secs(10))
                .await
                .is_ok()
            {
                announced = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(announced, "the connection manager reconnects by itself");
        let heard = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let c = feed.recv().await.unwrap();
                if c.key_id == "k-2" {
                    return c;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(heard.endpoint_id, "up");
    }
}
