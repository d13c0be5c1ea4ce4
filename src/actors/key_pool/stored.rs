//! The on-disk record of an upstream key added at runtime: versioned JSON in
//! the `upstream_keys` tree under `"{endpoint_id}/{key_id}"`. The key itself
//! is only there sealed by the [`Vault`]; the associated data is the
//! endpoint and key id, so a ciphertext copied into another record (or
//! another endpoint) no longer decrypts.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::NONCE_LEN;
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::storage::StoreOp;
use crate::vault::{Sealed, Vault, VaultError};

/// Stored format version; bumped when the shape changes incompatibly.
pub const KEY_FORMAT_VERSION: u32 = 1;

/// The stable, non-reversible id of a key within an endpoint: `k-` and 8 hex
/// digits of SHA-256 over the endpoint id and the key. Config and runtime
/// keys get ids the same way, so a key cannot be added twice.
pub fn key_id_of(endpoint_id: &str, secret: &str) -> String {
    let input = format!("{endpoint_id}\n{secret}");
    let hash = digest(&SHA256, input.as_bytes());
    let hex: String = hash.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("k-{hex}")
}

/// What the ciphertext is bound to.
fn aad(endpoint_id: &str, key_id: &str) -> Vec<u8> {
    format!("aigate/upstream-key/v1\0{endpoint_id}\0{key_id}").into_bytes()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    #[serde(rename = "v")]
    pub version: u32,
    pub endpoint: String,
    pub id: String,
    /// `…` and the last 4 characters, to recognise the key.
    pub hint: String,
    /// Base64 of the 96-bit nonce.
    pub nonce: String,
    /// Base64 of the AES-256-GCM ciphertext with its tag.
    pub ciphertext: String,
    /// Unix seconds.
    pub added_at: u64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub budget_usd: Option<f64>,
    #[serde(default)]
    pub spent_usd: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("not a stored key record: {0}")]
    Format(String),
    #[error("stored key format v{0} is newer than this aigate understands")]
    Version(u32),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl StoredKey {
    /// Seals `secret` for `endpoint_id`.
    pub fn seal(
        vault: &Vault,
        endpoint_id: &str,
        secret: &Secret,
        budget_usd: Option<f64>,
        added_at: u64,
    ) -> Result<StoredKey, VaultError> {
        let id = key_id_of(endpoint_id, secret.expose());
        let sealed = vault.seal(secret.expose().as_bytes(), &aad(endpoint_id, &id))?;
        Ok(StoredKey {
            version: KEY_FORMAT_VERSION,
            endpoint: endpoint_id.to_string(),
            hint: secret.key_id(),
            id,
            nonce: STANDARD.encode(sealed.nonce),
            ciphertext: STANDARD.encode(&sealed.ciphertext),
            added_at,
            disabled: false,
            budget_usd,
            spent_usd: 0.0,
        })
    }

    /// Decrypts the key; fails on a wrong master key or an altered record.
    pub fn open(&self, vault: &Vault) -> Result<Secret, RecordError> {
        let bad = |what: &str| RecordError::Format(format!("{what} is not valid base64"));
        let nonce = STANDARD.decode(&self.nonce).map_err(|_| bad("nonce"))?;
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce.as_slice())
            .map_err(|_| RecordError::Format("nonce is not 12 bytes".into()))?;
        let ciphertext = STANDARD
            .decode(&self.ciphertext)
            .map_err(|_| bad("ciphertext"))?;
        let plain = vault.open(
            &Sealed { nonce, ciphertext },
            &aad(&self.endpoint, &self.id),
        )?;
        let text = String::from_utf8(plain).map_err(|_| VaultError::Open)?;
        Ok(Secret::new(text))
    }

    /// The record's key in the tree.
    pub fn tree_key(&self) -> Vec<u8> {
        tree_key(&self.endpoint, &self.id)
    }

    pub fn parse(bytes: &[u8]) -> Result<StoredKey, RecordError> {
        let record: StoredKey =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Format(e.to_string()))?;
        match record.version {
            v if v > KEY_FORMAT_VERSION => Err(RecordError::Version(v)),
            _ => Ok(record),
        }
    }

    pub fn put_op(&self) -> Result<StoreOp, RecordError> {
        let value = serde_json::to_vec(self).map_err(|e| RecordError::Format(e.to_string()))?;
        Ok(StoreOp::Put(self.tree_key(), value))
    }

    pub fn delete_op(&self) -> StoreOp {
        StoreOp::Delete(self.tree_key())
    }
}

pub fn tree_key(endpoint_id: &str, key_id: &str) -> Vec<u8> {
    format!("{endpoint_id}/{key_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(byte: u8) -> Vault {
        Vault::from_bytes([byte; 32]).unwrap()
    }

    #[test]
    fn record_round_trip_hides_the_key() {
        let secret = Secret::new("sk-live-0123456789abcdef");
        let record =
            StoredKey::seal(&vault(1), "openai", &secret, Some(5.0), 1_700_000_000).unwrap();
        assert_eq!(record.id, key_id_of("openai", secret.expose()));
        assert!(record.id.starts_with("k-") && record.id.len() == 10);
        assert_eq!(record.hint, "…cdef");
        assert_eq!(
            record.tree_key(),
            format!("openai/{}", record.id).into_bytes()
        );
        let StoreOp::Put(_, bytes) = record.put_op().unwrap() else {
            panic!("expected a put")
        };
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("0123456789ab"), "{text}");
        let parsed = StoredKey::parse(&bytes).unwrap();
        assert_eq!(parsed, record);
        assert_eq!(parsed.open(&vault(1)).unwrap().expose(), secret.expose());
        assert!(matches!(
            parsed.open(&vault(2)),
            Err(RecordError::Vault(VaultError::Open))
        ));
    }

    #[test]
    fn a_ciphertext_moved_to_another_record_does_not_open() {
        let v = vault(1);
        let a = StoredKey::seal(&v, "ep", &Secret::new("sk-aaaa"), None, 0).unwrap();
        let b = StoredKey::seal(&v, "ep", &Secret::new("sk-bbbb"), None, 0).unwrap();
        let mut moved = b.clone();
        moved.nonce = a.nonce.clone();
        moved.ciphertext = a.ciphertext.clone();
        assert!(moved.open(&v).is_err());
        let mut other_endpoint = a.clone();
        other_endpoint.endpoint = "other".into();
        assert!(other_endpoint.open(&v).is_err());
        assert!(StoredKey::parse(b"{}").is_err());
        let mut future = a.clone();
        future.version = KEY_FORMAT_VERSION + 1;
        let StoreOp::Put(_, bytes) = future.put_op().unwrap() else {
            panic!("expected a put")
        };
        assert_eq!(
            StoredKey::parse(&bytes),
            Err(RecordError::Version(KEY_FORMAT_VERSION + 1))
        );
    }
}
