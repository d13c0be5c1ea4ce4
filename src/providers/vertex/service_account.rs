//! A Google service-account key file (the JSON one downloads from the Cloud
//! console). It is parsed and its private key checked once, at load, so a bad
//! key fails at startup and not on the first request. The private key never
//! appears in Debug output or errors.

use std::fmt;

use serde::Deserialize;

use super::{jwt, VertexAuthError};

/// Where Google's key files send token requests when they name no other.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The fields of a service-account key that token requests need.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); read only by [`jwt`].
    pub(crate) private_key: String,
    pub private_key_id: String,
    pub token_uri: String,
    pub project_id: String,
}

/// The key file as written; every field optional so a missing one gets an
/// error that names it. Unknown fields (`client_id`, `auth_uri`, …) are
/// ignored: Google adds fields over time.
#[derive(Deserialize)]
struct RawKeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    project_id: Option<String>,
}

impl ServiceAccount {
    /// Parses the key file's text and checks that the private key loads.
    pub fn from_json(text: &str) -> Result<Self, VertexAuthError> {
        let raw: RawKeyFile = serde_json::from_str(text)
            .map_err(|error| VertexAuthError::KeyFile(format!("not valid JSON ({error})")))?;
        match raw.kind.as_deref() {
            None | Some("service_account") => {}
            Some(other) => {
                return Err(VertexAuthError::KeyFile(format!(
                    "`type` is \"{other}\", expected \"service_account\""
                )))
            }
        }
        let account = ServiceAccount {
            client_email: required(raw.client_email, "client_email")?,
            private_key: required(raw.private_key, "private_key")?,
            private_key_id: required(raw.private_key_id, "private_key_id")?,
            token_uri: raw
                .token_uri
                .filter(|uri| !uri.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            project_id: required(raw.project_id, "project_id")?,
        };
        jwt::key_pair(&account)?;
        Ok(account)
    }

    /// A label safe for logs and status pages: the account's email.
    pub fn key_id(&self) -> String {
        self.client_email.clone()
    }
}

fn required(value: Option<String>, field: &'static str) -> Result<String, VertexAuthError> {
    value
        .filter(|value| !value.trim().is_empty())
        .ok_or(VertexAuthError::MissingField(field))
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"*****")
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/vertex/service_account.json");

    fn fixture_with(
        change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        let mut value: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        change(value.as_object_mut().unwrap());
        value.to_string()
    }

    #[test]
    fn parses_the_fixture() {
        let account = ServiceAccount::from_json(FIXTURE).unwrap();
        assert_eq!(
            account.client_email,
            "aigate-test@aigate-test.iam.gserviceaccount.com"
        );
        assert_eq!(account.project_id, "aigate-test");
        assert_eq!(account.token_uri, "http://127.0.0.1:1/token");
        assert_eq!(account.key_id(), account.client_email);
    }

    #[test]
    fn debug_hides_the_key() {
        let account = ServiceAccount::from_json(FIXTURE).unwrap();
        let shown = format!("{account:?}");
        assert!(shown.contains("*****"));
        assert!(!shown.contains("PRIVATE KEY"));
        assert!(!shown.contains("MII"));
    }

    #[test]
    fn token_uri_defaults_to_google() {
        let text = fixture_with(|map| {
            map.remove("token_uri");
        });
        let account = ServiceAccount::from_json(&text).unwrap();
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
    }

    #[test]
    fn missing_fields_are_named() {
        for field in [
            "client_email",
            "private_key",
            "private_key_id",
            "project_id",
        ] {
            let text = fixture_with(|map| {
                map.remove(field);
            });
            let error = ServiceAccount::from_json(&text).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("service account key file: missing field `{field}`")
            );
        }
    }

    #[test]
    fn wrong_type_and_bad_json_are_clear() {
        let text = fixture_with(|map| {
            map.insert("type".into(), "authorized_user".into());
        });
        let error = ServiceAccount::from_json(&text).unwrap_err().to_string();
        assert!(error.contains("authorized_user"), "{error}");
        let error = ServiceAccount::from_json("{not json")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("service account key file: not valid JSON"),
            "{error}"
        );
    }

    #[test]
    fn bad_private_key_fails_at_load_without_showing_it() {
        let text = fixture_with(|map| {
            map.insert(
                "private_key".into(),
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n".into(),
            );
        });
        let error = ServiceAccount::from_json(&text).unwrap_err().to_string();
        assert!(error.starts_with("service account private key:"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
    }
}
