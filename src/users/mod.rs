//! Users: everyone gets their own client key, with a role, limits, quotas
//! and an expiry. They live in one [`table::UserTable`] that requests lock
//! on their own thread; the [`actor::Users`] actor persists it and runs the
//! admin operations. Keys are stored only as SHA-256 digests and shown
//! once, at creation or rotation.
//!
//! - [`model`]: the stored user.
//! - [`period`]: quota periods on the UTC calendar.
//! - [`admission`]: the per-user rules as pure functions.
//! - [`table`]: every user with their live counters; the request path, the
//!   admin edits, config keys as users, what to persist.
//! - [`actor`]: the actor (persistence, admin messages) and the typed
//!   handle requests use.
//! - [`view`]: what the admin API shows of a user.
//! - [`shared`]: RPM, TPM, concurrency and quotas counted in Redis, for
//!   several instances.

pub mod actor;
pub mod admission;
pub mod model;
pub mod period;
pub mod shared;
pub mod table;
pub mod view;

#[cfg(test)]
mod tests;

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of the keys aigate issues.
pub const KEY_PREFIX: &str = "ak-";

/// A new random client key: `ak-` and 40 base62 characters (~238 bits).
pub fn generate_key() -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let rng = SystemRandom::new();
    let mut key = String::from(KEY_PREFIX);
    while key.len() < KEY_PREFIX.len() + 40 {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte).ok()?;
        // 248 = 4 * 62: rejecting above it keeps the choice uniform.
        if byte[0] < 248 {
            key.push(char::from(ALPHABET[usize::from(byte[0] % 62)]));
        }
    }
    Some(key)
}

/// SHA-256 of a key.
pub fn key_digest(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
    out
}

pub use crate::textfmt::hex;

/// The last 4 characters of a key, to recognise it.
pub fn key_hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

pub fn unix_now() -> u64 {
    crate::limits::now_ms() / 1000
}
