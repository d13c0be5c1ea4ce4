//! What a user is: identity, role, limits, quotas, expiry, and what they have
//! used. Stored as versioned JSON; the key itself is never stored, only its
//! SHA-256 digest.

use serde::{Deserialize, Serialize};

/// Stored format version; bumped when the shape changes incompatibly.
pub const USER_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    /// Expires on its own (a fixed time, or hours after first use).
    Temporary,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Temporary => "temporary",
        }
    }
}

/// How often a quota starts over (UTC calendar periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
    Never,
}

/// A token budget for the models matching `models` (a glob: `gpt-4o*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub models: String,
    pub tokens: u64,
    pub period: Period,
}

/// Where a quota stands in its current period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// Unix seconds when the current period started.
    pub period_start: u64,
    pub used: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "v")]
    pub version: u32,
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// The key's last 4 characters, to recognise it.
    pub key_hint: String,
    pub role: Role,
    pub enabled: bool,
    /// Why an admin or a rule disabled the user.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub quotas: Vec<Quota>,
    /// Parallel to `quotas`.
    #[serde(default)]
    pub quota_usage: Vec<QuotaUsage>,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Temporary users: expire this many hours after first use.
    #[serde(default)]
    pub expires_after_first_use_hours: Option<u64>,
    /// Distinct client IPs allowed within the IP window; more disables.
    #[serde(default)]
    pub max_ips: Option<u32>,
    /// Model globs the user may call; empty = any.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    pub created_at: u64,
    #[serde(default)]
    pub first_used_at: Option<u64>,
    #[serde(default)]
    pub last_used_at: Option<u64>,
    #[serde(default)]
    pub totals: Totals,
    /// Configured in the file (`[auth] client_keys` / `admin_keys`): not
    /// editable through the API, recreated at start.
    #[serde(default)]
    pub from_config: bool,
}

impl User {
    /// When the user stops being valid, if ever.
    pub fn expiry(&self) -> Option<u64> {
        let after_use = match (self.expires_after_first_use_hours, self.first_used_at) {
            (Some(hours), Some(first)) => Some(first + hours * 3600),
            _ => None,
        };
        match (self.expires_at, after_use) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Matches `pattern` (with `*` wildcards anywhere) against `name`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_matches("gpt-4o*", "gpt-4o"));
        assert!(!glob_matches("gpt-4o*", "gpt-4"));
        assert!(glob_matches("claude-*", "claude-3-5-haiku"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("*mini", "gpt-4o-mini"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("a*b*c", "a-x-c"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }

    #[test]
    fn expiry_is_the_earliest_of_both_rules() {
        let mut user: User = serde_json::from_value(serde_json::json!({
            "v": 1, "id": "u", "name": "n", "key_hash": "h", "key_hint": "abcd", "role": "temporary",
            "enabled": true, "created_at": 0, "expires_after_first_use_hours": 2
        }))
        .unwrap();
        assert_eq!(user.expiry(), None);
        user.first_used_at = Some(1000);
        assert_eq!(user.expiry(), Some(1000 + 7200));
        user.expires_at = Some(5000);
        assert_eq!(user.expiry(), Some(5000));
    }
}
