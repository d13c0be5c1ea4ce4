//! Step 2, auth: which client is this? The key comes from
//! `Authorization: Bearer` or `x-api-key`; it is hashed and compared in
//! constant time against the configured client keys (which are held only as
//! hashes). In passthrough mode an unknown key is forwarded upstream as-is.

use actix_web::http::header::HeaderMap;
use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Secret};
use crate::error::GatewayError;

/// Who the gateway serves this request for.
#[derive(Debug, Clone)]
pub enum Client {
    /// A configured client key; `id` is safe to log.
    Key {
        id: String,
    },
    /// Not one of ours, forwarded upstream (passthrough mode).
    Passthrough {
        key: Secret,
    },
    Anonymous,
}

impl Client {
    /// The id usage records carry.
    pub fn log_id(&self) -> String {
        match self {
            Client::Key { id } => id.clone(),
            Client::Passthrough { key } => format!("passthrough:{}", fingerprint(key.expose())),
            Client::Anonymous => "anonymous".into(),
        }
    }
}

/// Configured client keys, stored as SHA-256 digests.
pub struct ClientKeys {
    hashes: Vec<[u8; 32]>,
}

fn sha256(value: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, value.as_bytes()).as_ref());
    out
}

/// A short non-reversible id of a key: `ck-` and 8 hex digits of its hash.
pub fn fingerprint(key: &str) -> String {
    let hash = sha256(key);
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("ck-{hex}")
}

impl ClientKeys {
    pub fn new(keys: &[Secret]) -> Self {
        ClientKeys {
            hashes: keys.iter().map(|k| sha256(k.expose())).collect(),
        }
    }

    /// Compares against every configured key without stopping early, so the
    /// time taken says nothing about which key (or how much of it) matched.
    pub fn contains(&self, presented: &str) -> bool {
        let hash = sha256(presented);
        let mut found = subtle::Choice::from(0);
        for known in &self.hashes {
            found |= known.ct_eq(&hash);
        }
        found.into()
    }
}

/// The key the client presented, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .or_else(|| headers.get("api-key"))
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// Resolves the request's key to a [`Client`], or refuses it with 401.
pub fn authenticate(
    headers: &HeaderMap,
    keys: &ClientKeys,
    auth: &AuthConfig,
) -> Result<Client, GatewayError> {
    match presented_key(headers) {
        Some(key) if keys.contains(key) => Ok(Client::Key {
            id: fingerprint(key),
        }),
        Some(key) if auth.passthrough => Ok(Client::Passthrough {
            key: Secret::new(key),
        }),
        None if auth.allow_anonymous => Ok(Client::Anonymous),
        _ => Err(GatewayError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        map
    }

    fn auth(passthrough: bool, anonymous: bool) -> AuthConfig {
        AuthConfig {
            client_keys: vec![Secret::new("fk-good")],
            passthrough,
            allow_anonymous: anonymous,
        }
    }

    #[test]
    fn bearer_and_x_api_key() {
        let keys = ClientKeys::new(&[Secret::new("fk-good")]);
        let a = auth(false, false);
        assert!(matches!(
            authenticate(&headers("authorization", "Bearer fk-good"), &keys, &a),
            Ok(Client::Key { .. })
        ));
        assert!(matches!(
            authenticate(&headers("x-api-key", "fk-good"), &keys, &a),
            Ok(Client::Key { .. })
        ));
        assert!(authenticate(&headers("x-api-key", "fk-bad"), &keys, &a).is_err());
        assert!(authenticate(&HeaderMap::new(), &keys, &a).is_err());
    }

    #[test]
    fn passthrough_and_anonymous() {
        let keys = ClientKeys::new(&[Secret::new("fk-good")]);
        assert!(matches!(
            authenticate(
                &headers("authorization", "Bearer sk-theirs"),
                &keys,
                &auth(true, false)
            ),
            Ok(Client::Passthrough { .. })
        ));
        assert!(matches!(
            authenticate(&HeaderMap::new(), &keys, &auth(false, true)),
            Ok(Client::Anonymous)
        ));
    }

    #[test]
    fn fingerprint_hides_the_key() {
        let id = fingerprint("fk-good-secret");
        assert!(id.starts_with("ck-") && !id.contains("secret"));
        assert_eq!(id.len(), 11);
    }
}
