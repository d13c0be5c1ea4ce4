//! The vault: seals upstream keys added at runtime with AES-256-GCM before
//! they reach disk, under a master key that never touches disk through us.
//!
//! The master key comes from `AIGATE_MASTER_KEY` (64 hex characters, or
//! base64 of 32 bytes) or from the file named by `AIGATE_MASTER_KEY_FILE`
//! (the same text, or 32 raw bytes). Each seal draws a fresh random 96-bit
//! nonce; the caller's associated data binds a ciphertext to its place (the
//! key store uses endpoint id and key id), so a ciphertext copied to another
//! entry no longer opens. ring's AEAD does the work: it is already linked for
//! TLS, so this adds no second crypto stack.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The variable holding the master key itself.
pub const MASTER_KEY_VAR: &str = "AIGATE_MASTER_KEY";
/// The variable naming a file that holds the master key.
pub const MASTER_KEY_FILE_VAR: &str = "AIGATE_MASTER_KEY_FILE";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("{source_name}: expected 32 bytes as 64 hex characters or base64 (e.g. the output of `openssl rand -hex 32`)")]
    BadMasterKey { source_name: String },
    #[error("{MASTER_KEY_FILE_VAR}: cannot read {path}: {message}")]
    MasterKeyFile { path: String, message: String },
    #[error("set only one of {MASTER_KEY_VAR} and {MASTER_KEY_FILE_VAR}")]
    BothSet,
    #[error("cannot seal: {0}")]
    Seal(String),
    /// Wrong master key, tampered data, or data moved to another entry: AES-GCM
    /// cannot tell these apart, on purpose.
    #[error("cannot decrypt: wrong master key, or the stored data was altered")]
    Open,
}

/// Ciphertext (with its 16-byte tag appended) and the nonce it was sealed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// An AES-256-GCM key. Prints `*****`, never its bytes.
#[derive(Clone)]
pub struct Vault {
    key: LessSafeKey,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(*****)")
    }
}

impl Vault {
    /// The master key from the process environment (and `./.env`), or `None`
    /// when neither variable is set.
    pub fn from_env() -> Result<Option<Vault>, VaultError> {
        Self::from_env_map(&crate::config::process_env())
    }

    /// The master key from an injected environment map.
    pub fn from_env_map(env: &BTreeMap<String, String>) -> Result<Option<Vault>, VaultError> {
        let set = |name: &str| env.get(name).filter(|v| !v.trim().is_empty());
        match (set(MASTER_KEY_VAR), set(MASTER_KEY_FILE_VAR)) {
            (Some(_), Some(_)) => Err(VaultError::BothSet),
            (Some(text), None) => Self::from_text(text, MASTER_KEY_VAR).map(Some),
            (None, Some(path)) => Self::from_file(path.trim()).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Reads a key file: 32 raw bytes, or the hex/base64 text.
    fn from_file(path: &str) -> Result<Vault, VaultError> {
        let bytes = std::fs::read(path).map_err(|e| VaultError::MasterKeyFile {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Self::from_bytes(raw);
        }
        let text = String::from_utf8_lossy(&bytes);
        Self::from_text(&text, &format!("{MASTER_KEY_FILE_VAR} ({path})"))
    }

    /// Parses 64 hex characters or base64 (standard or URL-safe) of 32 bytes.
    /// `source_name` names where the text came from, for the error.
    pub fn from_text(text: &str, source_name: &str) -> Result<Vault, VaultError> {
        let text = text.trim();
        let bad = || VaultError::BadMasterKey {
            source_name: source_name.to_string(),
        };
        let bytes = match text.len() {
            64 => decode_hex(text).ok_or_else(bad)?,
            _ => STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| bad())?,
        };
        let raw = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad())?;
        Self::from_bytes(raw)
    }

    /// A vault over 32 raw key bytes. (ring only refuses a key of the wrong
    /// length, which the array type already rules out.)
    pub fn from_bytes(raw: [u8; 32]) -> Result<Vault, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| VaultError::BadMasterKey {
            source_name: "master key".into(),
        })?;
        Ok(Vault {
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypts `plaintext` under a fresh random nonce, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Seal("no randomness available".into()))?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .map_err(|_| VaultError::Seal("AES-GCM refused the input".into()))?;
        Ok(Sealed {
            nonce,
            ciphertext: buffer,
        })
    }

    /// Decrypts and authenticates; any mismatch (key, data, `aad`) fails.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut buffer = sealed.ciphertext.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .map_err(|_| VaultError::Open)?;
        Ok(plain.to_vec())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    Some(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn vault() -> Vault {
        Vault::from_text(HEX, "test").unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let v = vault();
        let a = v.seal(b"sk-secret", b"ep/k-1").unwrap();
        let b = v.seal(b"sk-secret", b"ep/k-1").unwrap();
        assert_ne!(a.nonce, b.nonce, "every seal draws a new nonce");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(v.open(&a, b"ep/k-1").unwrap(), b"sk-secret");
    }

    #[test]
    fn wrong_key_tamper_and_moved_data_fail() {
        let sealed = vault().seal(b"sk-secret", b"ep/k-1").unwrap();
        let other = Vault::from_bytes([7u8; 32]).unwrap();
        assert_eq!(other.open(&sealed, b"ep/k-1"), Err(VaultError::Open));

        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(vault().open(&tampered, b"ep/k-1"), Err(VaultError::Open));
        let mut bad_nonce = sealed.clone();
        bad_nonce.nonce[0] ^= 1;
        assert_eq!(vault().open(&bad_nonce, b"ep/k-1"), Err(VaultError::Open));

        assert_eq!(vault().open(&sealed, b"ep/k-2"), Err(VaultError::Open));
        assert_eq!(vault().open(&sealed, b"other/k-1"), Err(VaultError::Open));
    }

    #[test]
    fn master_key_formats() {
        let b64 = STANDARD.encode((0u8..32).collect::<Vec<_>>());
        let sealed = vault().seal(b"x", b"").unwrap();
        let from_b64 = Vault::from_text(&b64, "test").unwrap();
        assert_eq!(from_b64.open(&sealed, b"").unwrap(), b"x");
        assert!(Vault::from_text("abcd", "X").is_err());
        assert!(Vault::from_text(&"zz".repeat(32), "X").is_err());
        let err = Vault::from_text(&STANDARD.encode([1u8; 16]), MASTER_KEY_VAR).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("AIGATE_MASTER_KEY: expected 32 bytes"));
        assert_eq!(format!("{:?}", vault()), "Vault(*****)");
    }

    #[test]
    fn from_env_map_and_files() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(Vault::from_env_map(&env(&[])).unwrap().is_none());
        assert!(Vault::from_env_map(&env(&[(MASTER_KEY_VAR, HEX)]))
            .unwrap()
            .is_some());
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        let text = dir.path().join("hex.key");
        std::fs::write(&text, format!("{HEX}\n")).unwrap();
        let sealed = vault().seal(b"x", b"").unwrap();
        let from_text = Vault::from_env_map(&env(&[(MASTER_KEY_FILE_VAR, text.to_str().unwrap())]))
            .unwrap()
            .unwrap();
        assert_eq!(from_text.open(&sealed, b"").unwrap(), b"x");
        let from_raw = Vault::from_env_map(&env(&[(MASTER_KEY_FILE_VAR, raw.to_str().unwrap())]))
            .unwrap()
            .unwrap();
        assert!(from_raw.open(&sealed, b"").is_err());
        assert_eq!(
            Vault::from_env_map(&env(&[(MASTER_KEY_VAR, HEX), (MASTER_KEY_FILE_VAR, "f")]))
                .unwrap_err(),
            VaultError::BothSet
        );
        let missing = Vault::from_env_map(&env(&[(MASTER_KEY_FILE_VAR, "/nonexistent/key")]));
        assert!(matches!(missing, Err(VaultError::MasterKeyFile { .. })));
    }
}
