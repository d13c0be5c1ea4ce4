//! The KeyPool's admin side: add a runtime key (sealed, then stored), remove
//! it, disable or enable any key, list keys by id and hint, and write
//! runtime keys' spending on shutdown. Every change to a runtime key is
//! handed to the DiskWriter while the pool is locked, so writes reach disk
//! in the order the pool made them; the caller then waits for the write
//! with the pool unlocked.

use std::future::Future;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::pooled::{KeySource, PooledKey};
use super::{lock, KeyPool, KeyPoolHandle, StoredKey};
use crate::config::Secret;
use crate::storage::writer::{Flush, WriteBatch};
use crate::storage::{StoreOp, Tree};
use crate::vault::{MASTER_KEY_FILE_VAR, MASTER_KEY_VAR};

/// Longest upstream key accepted.
const MAX_KEY_BYTES: usize = 8192;

// ---- requests ----

/// Seal and store a new key for the endpoint with config id `endpoint_id`.
pub struct AddKey {
    pub endpoint_id: String,
    pub secret: Secret,
    pub budget_usd: Option<f64>,
}

/// Remove a runtime key (config keys are refused).
pub struct RemoveKey {
    pub endpoint_id: String,
    pub key_id: String,
}

/// Stop or resume lending a key. For a config key this holds until the
/// process restarts.
pub struct SetKeyDisabled {
    pub endpoint_id: String,
    pub key_id: String,
    pub disabled: bool,
}

/// What the admin sees of a new key: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedKey {
    pub endpoint: String,
    pub id: String,
    pub hint: String,
}

/// One key as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub endpoint: String,
    pub id: String,
    /// `…` and the last 4 characters.
    pub hint: String,
    /// `config` or `runtime`.
    pub source: String,
    /// `active`, `cooling`, `revoked`, `disabled`, `exhausted`; for stored
    /// keys not loaded: `locked` (no or wrong master key) or `orphaned`
    /// (the endpoint is not configured).
    pub state: String,
    pub cooldown_until: Option<u64>,
    pub in_flight: u32,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub budget_usd: Option<f64>,
    pub spent_usd: f64,
    /// Unix seconds; runtime keys only.
    pub added_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyAdminError {
    #[error("Runtime key storage needs a master key: set {MASTER_KEY_VAR} (32 bytes as 64 hex characters or base64, e.g. from `openssl rand -hex 32`) or {MASTER_KEY_FILE_VAR}, then restart aigate.")]
    NoMasterKey,
    #[error("No endpoint with id '{0}' is configured.")]
    UnknownEndpoint(String),
    #[error("Endpoint '{endpoint}' has no key with id '{id}'.")]
    UnknownKey { endpoint: String, id: String },
    #[error("Key {id} of endpoint '{endpoint}' comes from the config file; remove it from the config file.")]
    ConfigKey { endpoint: String, id: String },
    #[error("Endpoint '{endpoint}' already has this key (id {id}).")]
    Duplicate { endpoint: String, id: String },
    #[error("Key {id} of endpoint '{endpoint}' is stored but not loaded ({state}); it can only be removed.")]
    NotLoaded {
        endpoint: String,
        id: String,
        state: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("The change is in effect but could not be stored: {0}")]
    Storage(String),
}

// ---- handlers ----

impl KeyPool {
    fn endpoint_index(&self, endpoint_id: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.id == endpoint_id)
    }

    /// Hands `ops` to the DiskWriter now, then a flush; the future says how
    /// it went. Without a writer (tests) there is nothing to wait for.
    fn persist(&self, ops: Vec<StoreOp>) -> impl Future<Output = Result<(), KeyAdminError>> {
        let requests = self.writer.as_ref().filter(|_| !ops.is_empty()).map(|w| {
            let write = w.send(WriteBatch {
                tree: Tree::UpstreamKeys,
                ops,
            });
            (write, w.send(Flush))
        });
        async move {
            let Some((write, flush)) = requests else {
                return Ok(());
            };
            let storage = |e: String| KeyAdminError::Storage(e);
            write
                .await
                .map_err(|e| storage(e.to_string()))?
                .map_err(|e| storage(e.to_string()))?;
            flush
                .await
                .map_err(|e| storage(e.to_string()))?
                .map_err(|e| storage(e.to_string()))
        }
    }

    /// Seals the key and adds it; returns the write that stores it. Public
    /// for the offline CLI, which applies the write itself.
    pub fn add(&mut self, msg: AddKey) -> Result<(AddedKey, StoreOp), KeyAdminError> {
        let vault = self.vault.as_ref().ok_or(KeyAdminError::NoMasterKey)?;
        let text = msg.secret.expose();
        if text.is_empty() || text.trim() != text || text.chars().any(char::is_control) {
            return Err(KeyAdminError::Invalid(
                "'key' must be non-empty, without surrounding spaces or control characters.".into(),
            ));
        }
        if text.len() > MAX_KEY_BYTES {
            return Err(KeyAdminError::Invalid(format!(
                "'key' is longer than {MAX_KEY_BYTES} bytes."
            )));
        }
        if let Some(budget) = msg.budget_usd {
            if !budget.is_finite() || budget <= 0.0 {
                return Err(KeyAdminError::Invalid(
                    "'budget_usd' must be a positive number.".into(),
                ));
            }
        }
        let index = self
            .endpoint_index(&msg.endpoint_id)
            .ok_or_else(|| KeyAdminError::UnknownEndpoint(msg.endpoint_id.clone()))?;
        let id = super::key_id_of(&msg.endpoint_id, text);
        if self.endpoints[index].find(&id).is_some() {
            return Err(KeyAdminError::Duplicate {
                endpoint: msg.endpoint_id,
                id,
            });
        }
        let now = crate::limits::now_ms() / 1000;
        let record = StoredKey::seal(vault, &msg.endpoint_id, &msg.secret, msg.budget_usd, now)
            .map_err(|e| KeyAdminError::Storage(e.to_string()))?;
        let op = record
            .put_op()
            .map_err(|e| KeyAdminError::Storage(e.to_string()))?;
        // A parked record with this id (sealed under another master key) is
        // replaced by the new one.
        self.parked
            .retain(|p| !(p.record.endpoint == msg.endpoint_id && p.record.id == id));
        let added = AddedKey {
            endpoint: msg.endpoint_id,
            id,
            hint: record.hint.clone(),
        };
        log::info!(
            "upstream key {} ({}) added to endpoint '{}'",
            added.id,
            added.hint,
            added.endpoint
        );
        self.endpoints[index]
            .keys
            .push(PooledKey::from_record(record, msg.secret));
        Ok((added, op))
    }

    fn info(&self, endpoint: usize, key: usize) -> Option<KeyInfo> {
        let pool = self.endpoints.get(endpoint)?;
        let key = pool.keys.get(key)?;
        let (state, cooldown_until) = key.label(Instant::now());
        Some(KeyInfo {
            endpoint: pool.id.clone(),
            id: key.id.to_string(),
            hint: key.hint.to_string(),
            source: match key.source {
                KeySource::Config => "config".into(),
                KeySource::Runtime => "runtime".into(),
            },
            state: state.into(),
            cooldown_until,
            in_flight: key.in_flight,
            latency_ms: key.latency_ewma_ms.map(|v| (v * 10.0).round() / 10.0),
            last_error: key.last_error.clone(),
            budget_usd: key.budget_usd,
            spent_usd: key.spent_usd,
            added_at: key.record.as_ref().map(|r| r.added_at),
        })
    }

    /// The loaded key `key_id` of `endpoint_id`, as (endpoint, key) indexes,
    /// or why there is none.
    fn locate(&self, endpoint_id: &str, key_id: &str) -> Result<(usize, usize), KeyAdminError> {
        let endpoint = self.endpoint_index(endpoint_id);
        if let Some(found) = endpoint.and_then(|e| Some((e, self.endpoints[e].find(key_id)?))) {
            return Ok(found);
        }
        let parked = self
            .parked
            .iter()
            .find(|p| p.record.endpoint == endpoint_id && p.record.id == key_id);
        match (parked, endpoint) {
            (Some(parked), _) => Err(KeyAdminError::NotLoaded {
                endpoint: endpoint_id.into(),
                id: key_id.into(),
                state: parked.reason,
            }),
            (None, Some(_)) => Err(KeyAdminError::UnknownKey {
                endpoint: endpoint_id.into(),
                id: key_id.into(),
            }),
            (None, None) => Err(KeyAdminError::UnknownEndpoint(endpoint_id.into())),
        }
    }

    /// Removes a runtime or parked key; returns the write that deletes it.
    /// Public for the offline CLI, which applies the write itself.
    pub fn remove(&mut self, msg: &RemoveKey) -> Result<(KeyInfo, StoreOp), KeyAdminError> {
        let parked = self
            .parked
            .iter()
            .position(|p| p.record.endpoint == msg.endpoint_id && p.record.id == msg.key_id);
        if let Some(position) = parked {
            let parked = self.parked.remove(position);
            let info = parked_info(&parked.record, parked.reason);
            return Ok((info, parked.record.delete_op()));
        }
        let (endpoint, key) = self.locate(&msg.endpoint_id, &msg.key_id)?;
        let info = self
            .info(endpoint, key)
            .ok_or_else(|| KeyAdminError::UnknownKey {
                endpoint: msg.endpoint_id.clone(),
                id: msg.key_id.clone(),
            })?;
        let pool = &mut self.endpoints[endpoint];
        if pool.keys[key].source == KeySource::Config {
            return Err(KeyAdminError::ConfigKey {
                endpoint: msg.endpoint_id.clone(),
                id: msg.key_id.clone(),
            });
        }
        pool.keys.remove(key);
        if pool.next > key {
            pool.next -= 1;
        }
        if pool.next >= pool.keys.len() {
            pool.next = 0;
        }
        self.dirty
            .remove(&(msg.endpoint_id.clone(), msg.key_id.clone()));
        log::info!(
            "upstream key {} removed from endpoint '{}'",
            msg.key_id,
            msg.endpoint_id
        );
        let op = StoreOp::Delete(super::stored::tree_key(&msg.endpoint_id, &msg.key_id));
        Ok((info, op))
    }

    fn set_disabled(
        &mut self,
        msg: &SetKeyDisabled,
    ) -> Result<(KeyInfo, Option<StoreOp>), KeyAdminError> {
        let (endpoint, index) = self.locate(&msg.endpoint_id, &msg.key_id)?;
        let key = &mut self.endpoints[endpoint].keys[index];
        key.disabled = msg.disabled;
        let op = match key.current_record() {
            Some(record) => Some(
                record
                    .put_op()
                    .map_err(|e| KeyAdminError::Storage(e.to_string()))?,
            ),
            None => None,
        };
        log::info!(
            "upstream key {} of endpoint '{}' {}",
            msg.key_id,
            msg.endpoint_id,
            if msg.disabled { "disabled" } else { "enabled" }
        );
        let info = self
            .info(endpoint, index)
            .ok_or_else(|| KeyAdminError::UnknownKey {
                endpoint: msg.endpoint_id.clone(),
                id: msg.key_id.clone(),
            })?;
        Ok((info, op))
    }
}

impl KeyPool {
    /// Every key (of one endpoint, if given): loaded keys in pool order, then
    /// stored keys that are not loaded.
    pub fn list(&self, endpoint_id: Option<&str>) -> Result<Vec<KeyInfo>, KeyAdminError> {
        let wanted = |id: &str| endpoint_id.is_none_or(|w| w == id);
        let mut keys = Vec::new();
        for (endpoint, pool) in self.endpoints.iter().enumerate() {
            if wanted(&pool.id) {
                keys.extend((0..pool.keys.len()).filter_map(|k| self.info(endpoint, k)));
            }
        }
        let parked = self.parked.iter().filter(|p| wanted(&p.record.endpoint));
        keys.extend(parked.map(|p| parked_info(&p.record, p.reason)));
        match endpoint_id {
            Some(id) if keys.is_empty() && self.endpoint_index(id).is_none() => {
                Err(KeyAdminError::UnknownEndpoint(id.to_string()))
            }
            _ => Ok(keys),
        }
    }
}

fn parked_info(record: &StoredKey, reason: &'static str) -> KeyInfo {
    KeyInfo {
        endpoint: record.endpoint.clone(),
        id: record.id.clone(),
        hint: record.hint.clone(),
        source: "runtime".into(),
        state: reason.into(),
        cooldown_until: None,
        in_flight: 0,
        latency_ms: None,
        last_error: None,
        budget_usd: record.budget_usd,
        spent_usd: record.spent_usd,
        added_at: Some(record.added_at),
    }
}

// ---- handle ----

impl KeyPoolHandle {
    /// Seals the key, adds it to the pool and stores it; answers once it is
    /// on disk.
    pub async fn add_key(
        &self,
        endpoint_id: &str,
        secret: Secret,
        budget_usd: Option<f64>,
    ) -> Result<AddedKey, KeyAdminError> {
        let msg = AddKey {
            endpoint_id: endpoint_id.to_string(),
            secret,
            budget_usd,
        };
        let (added, stored) = {
            let mut pool = lock(&self.pool);
            let (added, op) = pool.add(msg)?;
            (added, pool.persist(vec![op]))
        };
        stored.await.map(|()| added)
    }

    /// Removes a runtime key (or a stored key that could not be loaded) from
    /// the pool and from disk. Leases already out are returned harmlessly.
    pub async fn remove_key(
        &self,
        endpoint_id: &str,
        key_id: &str,
    ) -> Result<KeyInfo, KeyAdminError> {
        let msg = RemoveKey {
            endpoint_id: endpoint_id.to_string(),
            key_id: key_id.to_string(),
        };
        let (info, stored) = {
            let mut pool = lock(&self.pool);
            let (info, op) = pool.remove(&msg)?;
            (info, pool.persist(vec![op]))
        };
        stored.await.map(|()| info)
    }

    /// Disables or enables a key; a runtime key's record is updated on disk.
    pub async fn set_key_disabled(
        &self,
        endpoint_id: &str,
        key_id: &str,
        disabled: bool,
    ) -> Result<KeyInfo, KeyAdminError> {
        let msg = SetKeyDisabled {
            endpoint_id: endpoint_id.to_string(),
            key_id: key_id.to_string(),
            disabled,
        };
        let (info, stored) = {
            let mut pool = lock(&self.pool);
            let (info, op) = pool.set_disabled(&msg)?;
            (info, pool.persist(op.into_iter().collect()))
        };
        stored.await.map(|()| info)
    }

    /// Loaded keys in pool order, then stored keys that are not loaded.
    pub async fn list_keys(
        &self,
        endpoint_id: Option<&str>,
    ) -> Result<Vec<KeyInfo>, KeyAdminError> {
        lock(&self.pool).list(endpoint_id)
    }

    /// Writes runtime keys' pending spending and flushes; called on
    /// shutdown.
    pub async fn persist(&self) -> Result<(), KeyAdminError> {
        let stored = {
            let mut pool = lock(&self.pool);
            let ops = pool.take_dirty();
            pool.persist(ops)
        };
        stored.await
    }
}
