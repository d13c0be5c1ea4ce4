//! The pool's bookkeeping per key: where it came from, its state, its
//! spending, and (for runtime keys) its stored record; per endpoint, the
//! keys in lending order.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::{key_id_of, StoredKey};
use crate::config::{EndpointConfig, Secret};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum KeyState {
    Active,
    Cooling {
        until: Instant,
        until_wall: SystemTime,
    },
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeySource {
    Config,
    Runtime,
}

pub(super) struct PooledKey {
    pub(super) secret: Secret,
    /// `…` and the last 4 characters.
    pub(super) hint: Arc<str>,
    /// Stable id, see [`key_id_of`].
    pub(super) id: Arc<str>,
    pub(super) source: KeySource,
    pub(super) state: KeyState,
    pub(super) disabled: bool,
    pub(super) budget_usd: Option<f64>,
    pub(super) spent_usd: f64,
    pub(super) in_flight: u32,
    pub(super) latency_ewma_ms: Option<f64>,
    pub(super) last_error: Option<String>,
    /// Runtime keys: the record as stored (the sealed key, when added).
    pub(super) record: Option<StoredKey>,
}

impl PooledKey {
    pub(super) fn from_config(endpoint_id: &str, secret: &Secret) -> PooledKey {
        PooledKey {
            hint: secret.key_id().into(),
            id: key_id_of(endpoint_id, secret.expose()).into(),
            secret: secret.clone(),
            source: KeySource::Config,
            state: KeyState::Active,
            disabled: false,
            budget_usd: None,
            spent_usd: 0.0,
            in_flight: 0,
            latency_ewma_ms: None,
            last_error: None,
            record: None,
        }
    }

    pub(super) fn from_record(record: StoredKey, secret: Secret) -> PooledKey {
        PooledKey {
            hint: secret.key_id().into(),
            id: record.id.as_str().into(),
            secret,
            source: KeySource::Runtime,
            state: KeyState::Active,
            disabled: record.disabled,
            budget_usd: record.budget_usd,
            spent_usd: record.spent_usd,
            in_flight: 0,
            latency_ewma_ms: None,
            last_error: None,
            record: Some(record),
        }
    }

    pub(super) fn exhausted(&self) -> bool {
        self.budget_usd
            .is_some_and(|budget| self.spent_usd >= budget)
    }

    /// The state label and, for a cooling key, when it is back (Unix s).
    pub(super) fn label(&self, now: Instant) -> (&'static str, Option<u64>) {
        if self.disabled {
            return ("disabled", None);
        }
        match &self.state {
            KeyState::Revoked => ("revoked", None),
            _ if self.exhausted() => ("exhausted", None),
            KeyState::Cooling { until, until_wall } if *until > now => (
                "cooling",
                until_wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs()),
            ),
            _ => ("active", None),
        }
    }

    /// The record to store now (runtime keys only).
    pub(super) fn current_record(&self) -> Option<StoredKey> {
        self.record.clone().map(|mut record| {
            record.disabled = self.disabled;
            record.budget_usd = self.budget_usd;
            record.spent_usd = self.spent_usd;
            record
        })
    }
}

/// A stored key that could not be loaded: kept on disk, listed, removable.
pub(super) struct ParkedKey {
    pub(super) record: StoredKey,
    /// `locked` (no or wrong master key) or `orphaned` (no such endpoint).
    pub(super) reason: &'static str,
}

pub(super) struct EndpointKeys {
    /// The endpoint's id in the config.
    pub(super) id: String,
    pub(super) keys: Vec<PooledKey>,
    pub(super) next: usize,
}

impl EndpointKeys {
    pub(super) fn find(&self, key_id: &str) -> Option<usize> {
        self.keys.iter().position(|k| *k.id == *key_id)
    }
}

/// An endpoint's keys from the config file.
pub(super) fn key_pool_endpoint(endpoint: &EndpointConfig) -> EndpointKeys {
    EndpointKeys {
        id: endpoint.id.clone(),
        keys: endpoint
            .keys
            .iter()
            .map(|k| PooledKey::from_config(&endpoint.id, k))
            .collect(),
        next: 0,
    }
}
