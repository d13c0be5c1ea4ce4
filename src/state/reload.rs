//! Config reload (`POST /admin/api/config/reload`, SIGHUP): the config file
//! is read again with the same environment rules and command-line values
//! as at start, and the next [`Live`] snapshot is built beside the current
//! one. Nothing that counts is reset: endpoints that stay keep their rate
//! limiter (new limits, same windows), latency and keys' states; new
//! endpoints start from what was persisted for their id; users, bans and
//! usage are untouched. Requests already running finish on the snapshot
//! they started with. Settings the running process cannot change (the
//! listener, workers, directories, storage backend, logging) keep their
//! running value and are named in the report.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde::Serialize;

use super::live::Live;
use super::{config_users, user_settings, AppState};
use crate::actors::rate_limiter::RateLimiterHandle;
use crate::config::{self, Config, ConfigError};
use crate::storage::Tree;
use crate::users::actor::SyncConfig;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this gateway was started without a config file: there is nothing to reload")]
    NoConfigFile,
    /// The file does not load; the running config stays.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Persisted counters or a state actor could not be reached.
    #[error("reload failed: {0}")]
    State(String),
}

/// What a reload changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// The file read.
    pub source: String,
    /// Endpoint ids new in this config.
    pub added: Vec<String>,
    /// Endpoint ids gone (their counters and runtime keys are kept).
    pub removed: Vec<String>,
    /// Endpoint ids in both, with their counters carried over.
    pub kept: Vec<String>,
    /// Settings that differ in the file but need a restart to change; the
    /// running value stays.
    pub needs_restart: Vec<&'static str>,
}

impl AppState {
    /// Reloads the config file. One reload at a time; a file that does not
    /// load leaves everything as it was.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let current = self.live();
        let source = current
            .config
            .source
            .clone()
            .ok_or(ReloadError::NoConfigFile)?;
        let env = config::process_env();
        let mut next = config::load(Some(&source), &env, &current.config.overrides)?;
        let needs_restart = keep_running_values(&current.config, &mut next);

        let report = ReloadReport {
            source: source.display().to_string(),
            added: ids_not_in(&next, &current.config),
            removed: ids_not_in(&current.config, &next),
            kept: next
                .endpoints
                .iter()
                .filter(|e| current.config.endpoints.iter().any(|o| o.id == e.id))
                .map(|e| e.id.clone())
                .collect(),
            needs_restart,
        };
        let rate_limiters = self.rate_limiters_for(&current, &next).await?;
        let latency_us = next
            .endpoints
            .iter()
            .map(|e| AtomicU64::new(current.latency_by_id(&e.id)))
            .collect();
        let blacklist = current.blacklist.with_limits(next.limits.clone());
        self.key_pool
            .reconfigure(next.endpoints.clone())
            .await
            .map_err(|e| ReloadError::State(e.to_string()))?;
        self.users
            .send(SyncConfig {
                keys: config_users(&next),
                settings: user_settings(&next),
            })
            .await
            .map_err(|e| ReloadError::State(e.to_string()))?;
        self.swap(Live {
            prices: crate::pricing::PriceMemo::new(next.endpoints.len()),
            config: Arc::new(next),
            rate_limiters,
            latency_us,
            blacklist,
        });
        log::info!(
            "config reloaded from {}: {} endpoint(s) added, {} removed, {} kept",
            report.source,
            report.added.len(),
            report.removed.len(),
            report.kept.len()
        );
        for setting in &report.needs_restart {
            log::warn!(
                "config reload: {setting} changed in the file; it takes effect at the next restart"
            );
        }
        Ok(report)
    }

    /// Endpoints that stay keep their limiter under the new limits; new ones
    /// start from the counters persisted under their id.
    async fn rate_limiters_for(
        &self,
        current: &Live,
        next: &Config,
    ) -> Result<Vec<RateLimiterHandle>, ReloadError> {
        let position = |id: &str| current.config.endpoints.iter().position(|e| e.id == id);
        let any_new = next.endpoints.iter().any(|e| position(&e.id).is_none());
        let counters = match any_new && self.redis.is_none() {
            true => {
                let store = self.store.clone();
                actix_web::web::block(move || store.load_all(Tree::Counters))
                    .await
                    .map_err(|e| ReloadError::State(e.to_string()))?
                    .map_err(|e| ReloadError::State(e.to_string()))?
            }
            false => Vec::new(),
        };
        Ok(next
            .endpoints
            .iter()
            .map(|e| match position(&e.id) {
                Some(i) => current.rate_limiters[i].with_limits(e),
                None => RateLimiterHandle::start(
                    e,
                    &counters,
                    &self.counter_persistence,
                    self.redis.as_ref(),
                ),
            })
            .collect())
    }
}

/// Endpoint ids of `a` that `b` does not have, in `a`'s order.
fn ids_not_in(a: &Config, b: &Config) -> Vec<String> {
    a.endpoints
        .iter()
        .filter(|e| !b.endpoints.iter().any(|o| o.id == e.id))
        .map(|e| e.id.clone())
        .collect()
}

/// Puts the running values of restart-only settings into `next`, naming
/// those the file changed.
fn keep_running_values(running: &Config, next: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut note = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    note("server.listen", running.server.listen != next.server.listen);
    note(
        "server.workers",
        running.server.workers != next.server.workers,
    );
    note(
        "server.data_dir",
        running.server.data_dir != next.server.data_dir,
    );
    note(
        "server.connect_timeout",
        running.server.connect_timeout != next.server.connect_timeout,
    );
    note(
        "log",
        format!("{:?}", running.log) != format!("{:?}", next.log),
    );
    note(
        "storage",
        format!("{:?}", running.storage) != format!("{:?}", next.storage),
    );
    next.server.listen = running.server.listen;
    next.server.workers = running.server.workers;
    next.server.data_dir = running.server.data_dir.clone();
    next.server.connect_timeout = running.server.connect_timeout;
    next.log = running.log.clone();
    next.storage = running.storage.clone();
    changed
}
