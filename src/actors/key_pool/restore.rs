//! Starting the pool from disk: runtime keys stored in the `upstream_keys`
//! tree are decrypted into their endpoints; a record that cannot be used (no
//! or wrong master key, endpoint gone) is logged and parked: kept on disk,
//! listed, removable.

use actix::prelude::*;

use super::pooled::{ParkedKey, PooledKey};
use super::{KeyPool, StoredKey};
use crate::config::EndpointConfig;
use crate::storage::writer::DiskWriter;
use crate::storage::Entries;
use crate::vault::Vault;

impl KeyPool {
    /// The config file's keys plus the runtime keys stored in the
    /// `upstream_keys` tree, decrypted with `vault`. A record that cannot be
    /// loaded is logged and parked (kept on disk, listed, removable).
    pub fn restore(
        endpoints: &[EndpointConfig],
        stored: &Entries,
        vault: Option<Vault>,
        writer: Option<Addr<DiskWriter>>,
    ) -> Self {
        let mut pool = KeyPool {
            vault,
            writer,
            ..KeyPool::new(endpoints)
        };
        for (key, value) in stored {
            match StoredKey::parse(value) {
                Ok(record) => pool.load(record),
                Err(e) => log::error!(
                    "stored upstream key {} is skipped: {e}",
                    String::from_utf8_lossy(key)
                ),
            }
        }
        pool
    }

    /// Puts a stored record into its endpoint, or parks it.
    pub(super) fn load(&mut self, record: StoredKey) {
        let Some(endpoint) = self.endpoints.iter_mut().find(|e| e.id == record.endpoint) else {
            log::warn!(
                "stored upstream key {} is for endpoint '{}', which is not configured; it is kept but not used",
                record.id,
                record.endpoint
            );
            self.parked.push(ParkedKey {
                record,
                reason: "orphaned",
            });
            return;
        };
        let Some(vault) = &self.vault else {
            log::error!(
                "stored upstream key {} of endpoint '{}' is not used: {} is not set",
                record.id,
                record.endpoint,
                crate::vault::MASTER_KEY_VAR
            );
            self.parked.push(ParkedKey {
                record,
                reason: "locked",
            });
            return;
        };
        match record.open(vault) {
            Ok(_) if endpoint.find(&record.id).is_some() => log::info!(
                "stored upstream key {} of endpoint '{}' is also in the config file; the config entry is used",
                record.id,
                record.endpoint
            ),
            Ok(secret) => endpoint.keys.push(PooledKey::from_record(record, secret)),
            Err(e) => {
                log::error!(
                    "stored upstream key {} of endpoint '{}' is not used: {e}",
                    record.id,
                    record.endpoint
                );
                self.parked.push(ParkedKey {
                    record,
                    reason: "locked",
                });
            }
        }
    }
}
