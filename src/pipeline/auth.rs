//! Step 2, auth: which client is this? The key comes from
//! `Authorization: Bearer`, `x-api-key` or `api-key`. It is never compared
//! as text with the users' keys: its SHA-256 digest is looked up among the
//! users' digests (the Users actor holds only digests), so no timing reveals
//! how much of a key matched. (A connection remembers its last key and
//! digest, [`ConnectionKey`], and compares the next key with it in constant
//! time.) In passthrough mode an unknown key is forwarded upstream as-is.

use actix_web::http::header::{HeaderMap, HeaderName};

use std::cell::RefCell;
use std::net::IpAddr;

use crate::config::{constant_time_eq, AuthConfig, Secret};
use crate::error::{GatewayError, LimitScope};
use crate::state::AppState;
use crate::users::actor::{AuthRefusal, Authenticate};
use crate::users::admission::{Refusal, Reservation};
use crate::users::key_digest;
use crate::users::model::Role;

/// Who the gateway serves this request for.
#[derive(Debug, Clone)]
pub enum Client {
    /// A user (from the config or the admin API), admitted by the Users
    /// actor with a token reservation to settle when the request ends.
    User {
        id: String,
        role: Role,
        reservation: Reservation,
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
            Client::User { id, .. } => id.clone(),
            Client::Passthrough { key } => format!("passthrough:{}", fingerprint(key.expose())),
            Client::Anonymous => "anonymous".into(),
        }
    }
}

/// A short non-reversible id of a key: `ck-` and 8 hex digits of its hash.
pub fn fingerprint(key: &str) -> String {
    format!("ck-{}", crate::users::hex(&key_digest(key)[..4]))
}

// Header names outside the standard set, as statics: a lookup by `&str`
// parses the name, and a non-standard one is copied to the heap each time.
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static API_KEY: HeaderName = HeaderName::from_static("api-key");

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
                .get(&X_API_KEY)
                .or_else(|| headers.get(&API_KEY))
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// The last key a client connection presented, and its digest. Clients
/// (the SDKs included) send the same key with every request of a kept-alive
/// connection, and hashing it was most of admission's work (about 2,400 of
/// its 3,500 instructions). The key is kept as long as the connection (whose
/// read buffer held it anyway), never written anywhere, and a key is
/// compared to it in constant time: a proxy in front of the gateway may
/// carry several clients' requests on one connection.
#[derive(Default)]
pub struct ConnectionKey(RefCell<Option<(Box<str>, [u8; 32])>>);

impl ConnectionKey {
    /// `key`'s SHA-256 digest, hashed only when the connection's key changed.
    pub fn digest(&self, key: &str) -> [u8; 32] {
        let mut last = self.0.borrow_mut();
        if let Some((known, digest)) = &*last {
            if constant_time_eq(known.as_bytes(), key.as_bytes()) {
                return *digest;
            }
        }
        let digest = key_digest(key);
        *last = Some((key.into(), digest));
        digest
    }
}

/// Resolves the presented key to a user and applies the user's rules
/// (expiry, models, IPs, concurrency, prompt size, RPM, TPM, quotas). The
/// key is hashed and looked up by digest; the plain key is never stored
/// (`connection`, the memo of the request's connection when it has one,
/// holds it in memory while the connection lasts).
pub async fn admit(
    state: &AppState,
    auth: &AuthConfig,
    key: Option<&str>,
    connection: Option<&ConnectionKey>,
    ip: IpAddr,
    model: Option<&str>,
    prompt_estimate: u64,
) -> Result<Client, GatewayError> {
    let Some(key) = key else {
        return match auth.allow_anonymous {
            true => Ok(Client::Anonymous),
            false => Err(GatewayError::Unauthorized),
        };
    };
    let ask = Authenticate {
        digest: connection.map_or_else(|| key_digest(key), |c| c.digest(key)),
        ip,
        model,
        prompt_estimate,
    };
    match state.users.authenticate(ask).await? {
        Ok(admission) => Ok(Client::User {
            id: admission.user_id,
            role: admission.role,
            reservation: admission.reservation,
        }),
        Err(AuthRefusal::Unknown) if auth.passthrough => Ok(Client::Passthrough {
            key: Secret::new(key),
        }),
        Err(AuthRefusal::Unknown) => Err(GatewayError::Unauthorized),
        Err(AuthRefusal::Refused(refusal)) => Err(refusal_error(refusal)),
    }
}

/// A valid, active user's id and role, without counting a request (for the
/// gateway's own endpoints).
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Role), GatewayError> {
    let key = presented_key(headers).ok_or(GatewayError::Unauthorized)?;
    state
        .users
        .lookup(&key_digest(key))
        .ok_or(GatewayError::Unauthorized)
}

/// A user rule's refusal, as the client sees it.
pub fn refusal_error(refusal: Refusal) -> GatewayError {
    let forbidden = |code: &'static str, message: String| GatewayError::Forbidden { code, message };
    match refusal {
        Refusal::Disabled { reason } => forbidden("user_disabled", format!("This key is disabled: {reason}.")),
        Refusal::Expired { at } => forbidden(
            "key_expired",
            format!(
                "This key expired at {}.",
                chrono::DateTime::from_timestamp(at as i64, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            ),
        ),
        Refusal::ModelNotAllowed { model } => {
            forbidden("model_not_allowed", format!("This key may not use the model '{model}'."))
        }
        Refusal::TooManyIps { max } => forbidden(
            "user_disabled",
            format!("This key was used from more than {max} IP addresses and is now disabled; an admin can enable it again."),
        ),
        Refusal::TooManyConcurrent { .. } => GatewayError::RateLimited {
            scope: LimitScope::UserConcurrency,
            retry_after: std::time::Duration::from_secs(1),
        },
        Refusal::PromptTooLarge { estimate, limit } => GatewayError::PromptTooLarge { estimate, limit },
        Refusal::Rpm { retry_after, .. } => GatewayError::RateLimited {
            scope: LimitScope::UserRequests,
            retry_after,
        },
        Refusal::Tpm { retry_after, .. } => GatewayError::RateLimited {
            scope: LimitScope::UserTokens,
            retry_after,
        },
        Refusal::Quota {
            models,
            tokens,
            refresh_at,
        } => GatewayError::QuotaExceeded {
            models,
            tokens,
            refresh_at,
        },
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

    #[test]
    fn a_connection_key_answers_each_key_with_its_own_digest() {
        let connection = ConnectionKey::default();
        for key in ["fk-a", "fk-a", "fk-b", "fk-a", "fk-ab", "", "fk-a"] {
            assert_eq!(connection.digest(key), key_digest(key), "{key:?}");
        }
    }

    #[test]
    fn bearer_x_api_key_and_api_key() {
        assert_eq!(
            presented_key(&headers("authorization", "Bearer fk-good")),
            Some("fk-good")
        );
        assert_eq!(
            presented_key(&headers("x-api-key", " fk-good ")),
            Some("fk-good")
        );
        assert_eq!(
            presented_key(&headers("api-key", "fk-good")),
            Some("fk-good")
        );
        assert_eq!(presented_key(&headers("authorization", "Basic abc")), None);
        assert_eq!(presented_key(&headers("authorization", "Bearer ")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn fingerprint_hides_the_key() {
        let id = fingerprint("fk-good-secret");
        assert!(id.starts_with("ck-") && !id.contains("secret"));
        assert_eq!(id.len(), 11);
    }

    #[test]
    fn refusals_map_to_statuses() {
        assert_eq!(refusal_error(Refusal::Expired { at: 0 }).status(), 403);
        assert_eq!(
            refusal_error(Refusal::Quota {
                models: "gpt-*".into(),
                tokens: 1,
                refresh_at: None
            })
            .status(),
            429
        );
        assert_eq!(
            refusal_error(Refusal::PromptTooLarge {
                estimate: 9,
                limit: 1
            })
            .status(),
            400
        );
    }
}
