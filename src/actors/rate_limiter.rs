//! Rate limits: each endpoint's RPM (sliding 60 s) and RPD
//! (rolling 24 h) windows. A request takes its slot synchronously, under a
//! mutex held for a few arithmetic operations, on the worker thread that
//! serves it: a message to an actor on another thread cost two thread
//! switches per request (BENCHMARKS.md, hot spot 3). One actor for all
//! endpoints ([`CounterPersistence`]) writes the windows that changed to
//! disk once a second, and an endpoint's windows are written when it leaves
//! the config and its last request ends, so a restart does not reset the
//! counts.
//!
//! With `[storage] backend = "redis"` there is no actor: the handle asks the
//! shared windows in Redis (one atomic script per request, same buckets), and
//! while Redis is down follows `on_redis_down_quotas` (fail_closed refuses
//! with a 1 s Retry-After, fail_open admits uncounted).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use super::lock;
use crate::config::{EndpointConfig, Limit};
use crate::error::GatewayError;
use crate::limits::{now_ms, RateWindow};
use crate::storage::redis::endpoint::EndpointWindows;
use crate::storage::redis::policy::{when_down, RETRY_WHILE_DOWN};
use crate::storage::redis::RedisShared;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
const PERSIST_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RateSnapshot {
    pub rpm: u64,
    pub rpd: u64,
    /// False when a window is full (or a limit is 0).
    pub has_room: bool,
}

// ---- state ----

/// One endpoint's windows and limits.
pub struct Windows {
    endpoint_id: String,
    rpm_limit: Limit,
    rpd_limit: Limit,
    rpm: RateWindow,
    rpd: RateWindow,
    dirty: bool,
}

impl Windows {
    /// `stored` is what the counters tree held for this endpoint, if anything.
    pub fn new(
        endpoint_id: &str,
        rpm_limit: Limit,
        rpd_limit: Limit,
        stored: &[(Vec<u8>, Vec<u8>)],
    ) -> Self {
        let find = |suffix: &str, window: Duration| {
            let key = format!("{endpoint_id}/{suffix}");
            stored
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .and_then(|(_, v)| RateWindow::restore(v, window))
                .unwrap_or_else(|| RateWindow::new(window))
        };
        Windows {
            endpoint_id: endpoint_id.to_string(),
            rpm_limit,
            rpd_limit,
            rpm: find("rpm", MINUTE),
            rpd: find("rpd", DAY),
            dirty: false,
        }
    }

    /// Both windows must have room; only then is the request counted in both.
    pub fn try_acquire(&mut self, now: u64) -> Result<(), Duration> {
        let wait_minute = wait_for(&mut self.rpm, self.rpm_limit, now);
        let wait_day = wait_for(&mut self.rpd, self.rpd_limit, now);
        if let Some(wait) = wait_minute.into_iter().chain(wait_day).max() {
            return Err(wait);
        }
        self.rpm.add(now, 1);
        self.rpd.add(now, 1);
        self.dirty = true;
        Ok(())
    }

    /// Counts in the current windows.
    pub fn snapshot(&mut self, now: u64) -> RateSnapshot {
        let has_room = wait_for(&mut self.rpm, self.rpm_limit, now).is_none()
            && wait_for(&mut self.rpd, self.rpd_limit, now).is_none();
        RateSnapshot {
            rpm: self.rpm.count(now),
            rpd: self.rpd.count(now),
            has_room,
        }
    }

    /// The persisted form; clears the dirty mark.
    fn take_ops(&mut self) -> Vec<StoreOp> {
        self.dirty = false;
        vec![
            StoreOp::Put(
                format!("{}/rpm", self.endpoint_id).into_bytes(),
                self.rpm.to_bytes(),
            ),
            StoreOp::Put(
                format!("{}/rpd", self.endpoint_id).into_bytes(),
                self.rpd.to_bytes(),
            ),
        ]
    }
}

/// How long until `window` has room under `limit`, if it has none now.
fn wait_for(window: &mut RateWindow, limit: Limit, now: u64) -> Option<Duration> {
    match limit {
        Limit::Unlimited => None,
        Limit::Max(max) if window.count(now) >= max => Some(window.time_until_below(now, max)),
        Limit::Max(_) => None,
    }
}

// ---- persistence ----

/// An endpoint's windows in this process, and where they are written.
struct LocalWindows {
    windows: Mutex<Windows>,
    writer: Addr<DiskWriter>,
}

impl LocalWindows {
    fn persist(&self, only_if_dirty: bool) {
        let ops = {
            let mut windows = lock(&self.windows);
            if only_if_dirty && !windows.dirty {
                return;
            }
            windows.take_ops()
        };
        self.writer.do_send(WriteBatch {
            tree: Tree::Counters,
            ops,
        });
    }
}

impl Drop for LocalWindows {
    /// The endpoint left the config and the last request that used it ended:
    /// what it counted is kept for the day it comes back.
    fn drop(&mut self) {
        self.persist(true);
    }
}

/// Writes every endpoint's windows that changed, once a second: one timer
/// for all of them (a timer per endpoint woke the process 1,004 times a
/// second with the benchmark's 1,004 endpoints, idle or not). Clones share
/// one list and one ticker.
#[derive(Clone)]
pub struct CounterPersistence {
    endpoints: Arc<Mutex<Vec<Weak<LocalWindows>>>>,
    writer: Addr<DiskWriter>,
    _ticker: Addr<PersistTicker>,
}

impl CounterPersistence {
    /// Must run inside an actix `System`.
    pub fn start(writer: Addr<DiskWriter>) -> Self {
        let endpoints = Arc::new(Mutex::new(Vec::new()));
        let ticker = PersistTicker {
            endpoints: endpoints.clone(),
        }
        .start();
        CounterPersistence {
            endpoints,
            writer,
            _ticker: ticker,
        }
    }

    fn register(&self, windows: Windows) -> Arc<LocalWindows> {
        let local = Arc::new(LocalWindows {
            windows: Mutex::new(windows),
            writer: self.writer.clone(),
        });
        lock(&self.endpoints).push(Arc::downgrade(&local));
        local
    }
}

struct PersistTicker {
    endpoints: Arc<Mutex<Vec<Weak<LocalWindows>>>>,
}

impl PersistTicker {
    fn persist_changed(&self) {
        // Taken out of the list's lock: dropping the last reference (an
        // endpoint gone meanwhile) writes it, see `LocalWindows::drop`.
        let live: Vec<Arc<LocalWindows>> = {
            let mut endpoints = lock(&self.endpoints);
            endpoints.retain(|e| e.strong_count() > 0);
            endpoints.iter().filter_map(Weak::upgrade).collect()
        };
        for endpoint in live {
            endpoint.persist(true);
        }
    }
}

impl Actor for PersistTicker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |ticker, _| ticker.persist_changed());
    }
}

// ---- handle ----

/// The one way to an endpoint's limits, whichever backend holds them.
#[derive(Clone)]
pub struct RateLimiterHandle(Backend);

#[derive(Clone)]
enum Backend {
    Local(Arc<LocalWindows>),
    Shared(EndpointWindows),
}

impl RateLimiterHandle {
    /// The endpoint's limiter: its windows in Redis when `redis` is given,
    /// else in this process, restored from what `stored` (the counters tree)
    /// holds and written through `persistence`.
    pub fn start(
        endpoint: &EndpointConfig,
        stored: &[(Vec<u8>, Vec<u8>)],
        persistence: &CounterPersistence,
        redis: Option<&RedisShared>,
    ) -> Self {
        match redis {
            Some(redis) => RateLimiterHandle(Backend::Shared(EndpointWindows::new(
                redis.clone(),
                &endpoint.id,
                endpoint.rpm,
                endpoint.rpd,
            ))),
            None => RateLimiterHandle(Backend::Local(persistence.register(Windows::new(
                &endpoint.id,
                endpoint.rpm,
                endpoint.rpd,
                stored,
            )))),
        }
    }

    /// The same counters under `endpoint`'s (reloaded) limits.
    pub fn with_limits(&self, endpoint: &EndpointConfig) -> Self {
        match &self.0 {
            Backend::Local(local) => {
                let mut windows = lock(&local.windows);
                windows.rpm_limit = endpoint.rpm;
                windows.rpd_limit = endpoint.rpd;
                drop(windows);
                self.clone()
            }
            Backend::Shared(windows) => RateLimiterHandle(Backend::Shared(EndpointWindows::new(
                windows.redis().clone(),
                &endpoint.id,
                endpoint.rpm,
                endpoint.rpd,
            ))),
        }
    }

    pub async fn try_acquire(&self) -> Result<Result<(), Duration>, GatewayError> {
        match &self.0 {
            Backend::Local(local) => Ok(lock(&local.windows).try_acquire(now_ms())),
            Backend::Shared(windows) => Ok(match windows.try_acquire().await {
                Ok(answer) => answer,
                Err(_) => when_down(
                    windows.redis().quotas_policy(),
                    Ok(()),
                    Err(RETRY_WHILE_DOWN),
                ),
            }),
        }
    }

    pub async fn snapshot(&self) -> Result<RateSnapshot, GatewayError> {
        match &self.0 {
            Backend::Local(local) => Ok(lock(&local.windows).snapshot(now_ms())),
            Backend::Shared(windows) => Ok(match windows.counts().await {
                Ok(counts) => RateSnapshot {
                    rpm: counts.rpm,
                    rpd: counts.rpd,
                    has_room: counts.has_room,
                },
                Err(_) => RateSnapshot {
                    rpm: 0,
                    rpd: 0,
                    has_room: when_down(windows.redis().quotas_policy(), true, false),
                },
            }),
        }
    }

    /// What to write to disk at shutdown (nothing when Redis holds it).
    pub async fn take_state(&self) -> Result<Vec<StoreOp>, GatewayError> {
        match &self.0 {
            Backend::Local(local) => Ok(lock(&local.windows).take_ops()),
            Backend::Shared(_) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_str, CliOverrides};
    use crate::storage::sled_store::SledStore;
    use crate::storage::writer::Flush;
    use crate::storage::StateStore;

    const TWO: &str = r#"
[[endpoints]]
id = "a"
provider = "mock"
rpm = 5
[[endpoints]]
id = "b"
provider = "mock"
"#;

    /// One ticker for every endpoint writes only the windows that changed;
    /// an endpoint's last handle dropped writes its windows and leaves the
    /// ticker's list.
    #[actix_web::test]
    async fn one_ticker_writes_what_changed_and_a_dropped_endpoint_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
        let (for_writer, logs) = (store.clone(), dir.path().to_path_buf());
        let writer =
            SyncArbiter::start(1, move || DiskWriter::new(for_writer.clone(), logs.clone()));
        let endpoints = from_toml_str(TWO, &Default::default(), &CliOverrides::default())
            .unwrap()
            .endpoints;
        let persistence = CounterPersistence::start(writer.clone());
        let a = RateLimiterHandle::start(&endpoints[0], &[], &persistence, None);
        let b = RateLimiterHandle::start(&endpoints[1], &[], &persistence, None);
        let ticker = PersistTicker {
            endpoints: persistence.endpoints.clone(),
        };
        let stored_keys = || {
            let mut keys: Vec<String> = store
                .load_all(Tree::Counters)
                .unwrap()
                .into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect();
            keys.sort();
            keys
        };

        assert_eq!(a.try_acquire().await.unwrap(), Ok(()));
        ticker.persist_changed();
        writer.send(Flush).await.unwrap().unwrap();
        assert_eq!(stored_keys(), ["a/rpd", "a/rpm"], "b did not change");

        assert_eq!(b.try_acquire().await.unwrap(), Ok(()));
        drop(b);
        writer.send(Flush).await.unwrap().unwrap();
        assert_eq!(stored_keys(), ["a/rpd", "a/rpm", "b/rpd", "b/rpm"]);
        let restored = Windows::new(
            "b",
            Limit::Unlimited,
            Limit::Unlimited,
            &store.load_all(Tree::Counters).unwrap(),
        )
        .snapshot(now_ms());
        assert_eq!(
            (restored.rpm, restored.rpd),
            (1, 1),
            "b's request, written as it left"
        );

        ticker.persist_changed();
        assert_eq!(lock(&persistence.endpoints).len(), 1, "b left the list");
        assert_eq!(a.snapshot().await.unwrap().rpm, 1);
    }

    #[test]
    fn both_windows_must_have_room_and_limits_change_in_place() {
        let mut windows = Windows::new("e", Limit::Max(2), Limit::Max(3), &[]);
        let now = 10_000_000;
        assert_eq!(windows.try_acquire(now), Ok(()));
        assert_eq!(windows.try_acquire(now), Ok(()));
        assert!(windows.try_acquire(now).is_err(), "rpm 2");
        // A minute later the minute window has room, the day has one slot.
        assert_eq!(windows.try_acquire(now + 61_000), Ok(()));
        assert!(windows.try_acquire(now + 61_001).is_err(), "rpd 3");
        let snapshot = windows.snapshot(now + 61_002);
        assert_eq!(
            (snapshot.rpm, snapshot.rpd, snapshot.has_room),
            (1, 3, false)
        );

        windows.rpd_limit = Limit::Unlimited;
        assert_eq!(windows.try_acquire(now + 61_003), Ok(()));
        let ops = windows.take_ops();
        assert!(!windows.dirty);
        let restored = Windows::new(
            "e",
            Limit::Unlimited,
            Limit::Unlimited,
            &ops.into_iter()
                .filter_map(|op| match op {
                    StoreOp::Put(k, v) => Some((k, v)),
                    StoreOp::Delete(_) => None,
                })
                .collect::<Vec<_>>(),
        );
        let mut restored = restored;
        assert_eq!(restored.snapshot(now + 61_004).rpd, 4);
    }
}
