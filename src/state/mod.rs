//! AppState: what every request handler shares: the live config snapshot
//! (`live.rs`, replaced as one piece by a reload, `reload.rs`), the actors'
//! handles, and the few lock-free counters selection reads. Proxied
//! requests reach it through their worker thread's handle (`worker.rs`).

pub mod live;
pub mod reload;
pub mod worker;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use actix::prelude::*;

use crate::actors::blacklist::BlacklistHandle;
use crate::actors::key_pool::{KeyPool, KeyPoolHandle};
use crate::actors::rate_limiter::{CounterPersistence, RateLimiterHandle};
use crate::actors::usage_logger::UsageLoggerHandle;
use crate::config::Config;
use crate::storage::writer::DiskWriter;
use crate::storage::{SledStore, StateStore, StorageError, Tree};
use crate::users::actor::{UserSettings, Users, UsersHandle};
use crate::users::model::Role;
pub use live::Live;
pub use worker::{LiveRef, Worker};

pub struct AppState {
    /// Take it with [`AppState::live`], once per request.
    live: RwLock<Arc<Live>>,
    /// Bumped after each swap of `live`, for [`Worker`]s' copies.
    generation: AtomicU64,
    /// Serialises reloads.
    reload_lock: tokio::sync::Mutex<()>,
    /// Read when a reload brings an endpoint this process has not served.
    store: Arc<dyn StateStore>,
    pub key_pool: KeyPoolHandle,
    pub usage: UsageLoggerHandle,
    pub writer: Addr<DiskWriter>,
    /// Writes the endpoints' rate windows (sled backend).
    pub counter_persistence: CounterPersistence,
    pub users: UsersHandle,
    /// Cursor for the round_robin strategy.
    pub round_robin: AtomicUsize,
    pub started: Instant,
    /// Vertex service accounts and their access tokens.
    pub vertex: crate::providers::vertex::adapter::VertexAuth,
    /// Seals upstream keys added at runtime; `None` without a master key.
    pub vault: Option<crate::vault::Vault>,
    /// The shared store of several instances (`[storage] backend = "redis"`).
    pub redis: Option<crate::storage::redis::RedisShared>,
}

impl AppState {
    /// Opens storage under `data_dir/db`, restores persisted state and starts
    /// the actors. Must run inside an actix `System`.
    pub fn start(config: Config) -> Result<Self, StorageError> {
        let db_dir = config.server.data_dir.join("db");
        let store: Arc<dyn StateStore> = Arc::new(SledStore::open(&db_dir)?);
        let counters = store.load_all(Tree::Counters)?;
        let bans = store.load_all(Tree::Blacklist)?;
        let stored_users = store.load_all(Tree::Users)?;
        let stored_keys = store.load_all(Tree::UpstreamKeys)?;
        let vault =
            crate::vault::Vault::from_env().map_err(|e| StorageError::Backend(e.to_string()))?;

        let log_dir = config.log.dir.clone();
        let writer_store = store.clone();
        let writer = SyncArbiter::start(1, move || {
            DiskWriter::new(writer_store.clone(), log_dir.clone())
        });

        let redis = match config.storage.backend {
            crate::config::StorageBackend::Redis => Some(
                crate::storage::redis::RedisShared::connect(&config.storage)
                    .map_err(|e| StorageError::Backend(e.to_string()))?,
            ),
            crate::config::StorageBackend::Sled => None,
        };
        let counter_persistence = CounterPersistence::start(writer.clone());
        let rate_limiters = config
            .endpoints
            .iter()
            .map(|e| RateLimiterHandle::start(e, &counters, &counter_persistence, redis.as_ref()))
            .collect();
        let key_pool = KeyPool::restore(
            &config.endpoints,
            &stored_keys,
            vault.clone(),
            Some(writer.clone()),
        )
        .start_sharing(redis.as_ref());
        let blacklist =
            BlacklistHandle::start(config.limits.clone(), &bans, writer.clone(), redis.as_ref());
        let usage = UsageLoggerHandle::start(writer.clone());
        let users = UsersHandle::start(
            Users::new(
                &stored_users,
                &config_users(&config),
                user_settings(&config),
                Some(writer.clone()),
            ),
            redis.as_ref(),
            &config,
        );

        let latency_us = config.endpoints.iter().map(|_| AtomicU64::new(0)).collect();
        let live = Live {
            prices: crate::pricing::PriceMemo::new(config.endpoints.len()),
            config: Arc::new(config),
            rate_limiters,
            latency_us,
            blacklist,
        };
        Ok(AppState {
            live: RwLock::new(Arc::new(live)),
            generation: AtomicU64::new(0),
            reload_lock: tokio::sync::Mutex::new(()),
            store,
            key_pool,
            usage,
            writer,
            counter_persistence,
            users,
            round_robin: AtomicUsize::new(0),
            started: Instant::now(),
            vertex: Default::default(),
            redis,
            vault,
        })
    }

    /// The config snapshot and what is indexed by its endpoints. Take it
    /// once per request and keep it: a reload may swap in the next one.
    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(live) => live.clone(),
            // A panic while holding the write lock cannot leave a torn
            // value: the swap is one assignment.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current config, for code that uses no endpoint index.
    pub fn config(&self) -> Arc<Config> {
        self.live().config.clone()
    }

    /// How many times the snapshot was swapped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn swap(&self, next: Live) {
        let next = Arc::new(next);
        match self.live.write() {
            Ok(mut live) => *live = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Writes every actor's state and the usage buffer, then flushes disk.
    /// Called once the HTTP server has stopped.
    pub async fn persist_all(&self) {
        use crate::storage::writer::{Flush, WriteBatch};
        if let Err(e) = self.usage.flush().await {
            log::error!("usage flush failed: {e}");
        }
        let live = self.live();
        for limiter in &live.rate_limiters {
            if let Ok(ops) = limiter.take_state().await {
                let _ = self
                    .writer
                    .send(WriteBatch {
                        tree: Tree::Counters,
                        ops,
                    })
                    .await;
            }
        }
        if let Ok(ops) = self.users.send(crate::users::actor::TakeState).await {
            let _ = self
                .writer
                .send(WriteBatch {
                    tree: Tree::Users,
                    ops,
                })
                .await;
        }
        if let Err(e) = self.key_pool.persist().await {
            log::error!("upstream keys not stored: {e}");
        }
        if let Ok(ops) = live.blacklist.take_state().await {
            let _ = self
                .writer
                .send(WriteBatch {
                    tree: Tree::Blacklist,
                    ops,
                })
                .await;
        }
        match self.writer.send(Flush).await {
            Ok(Ok(())) => log::info!("state flushed to disk"),
            Ok(Err(e)) => log::error!("flush failed: {e}"),
            Err(e) => log::error!("disk writer unavailable: {e}"),
        }
    }
}

/// The keys of the config file, as users: `client_keys` with the user role,
/// `admin_keys` with the admin role.
pub(crate) fn config_users(config: &Config) -> Vec<(String, Role)> {
    let users = config
        .auth
        .client_keys
        .iter()
        .map(|k| (k.expose().to_string(), Role::User));
    let admins = config
        .auth
        .admin_keys
        .iter()
        .map(|k| (k.expose().to_string(), Role::Admin));
    users.chain(admins).collect()
}

pub(crate) fn user_settings(config: &Config) -> UserSettings {
    let role = |name: &str| match name {
        "admin" => Some(Role::Admin),
        "user" => Some(Role::User),
        "temporary" => Some(Role::Temporary),
        _ => None,
    };
    UserSettings {
        ip_window: config.users.ip_window,
        max_prompt_tokens: config
            .users
            .max_prompt_tokens
            .iter()
            .filter_map(|(name, cap)| Some((role(name)?, *cap)))
            .collect(),
    }
}
