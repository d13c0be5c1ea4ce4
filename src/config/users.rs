//! `[users]`: rules for users that come from the config rather than from
//! each user (the IP window, prompt caps per role).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::validate::{at_least, invalid, positive};
use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawUsers {
    /// Window in which a user's distinct client IPs are counted (`max_ips`).
    pub ip_window_secs: i64,
    /// Largest estimated prompt, in tokens, per role: `{ user = 32000 }`.
    pub max_prompt_tokens: BTreeMap<String, i64>,
}

impl Default for RawUsers {
    fn default() -> Self {
        Self {
            ip_window_secs: 86_400,
            max_prompt_tokens: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UsersConfig {
    pub ip_window: Duration,
    /// Role name (admin | user | temporary) → token cap.
    pub max_prompt_tokens: BTreeMap<String, u64>,
}

pub(crate) fn validate(raw: &RawUsers) -> Result<UsersConfig, ConfigError> {
    let mut caps = BTreeMap::new();
    for (role, cap) in &raw.max_prompt_tokens {
        let path = format!("users.max_prompt_tokens.{role}");
        if !matches!(role.as_str(), "admin" | "user" | "temporary") {
            return Err(invalid(path, "expected a role: admin, user or temporary"));
        }
        let cap = at_least(&path, *cap, 1)?;
        caps.insert(role.clone(), u64::try_from(cap).unwrap_or(u64::MAX));
    }
    Ok(UsersConfig {
        ip_window: Duration::from_secs(positive("users.ip_window_secs", raw.ip_window_secs)?),
        max_prompt_tokens: caps,
    })
}
