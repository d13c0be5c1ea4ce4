//! What `aigate users` prints. A user reaches here either as the actor's
//! view (offline) or as the admin API's JSON (online); both become an
//! [`ApiUser`] so the two ways print the same.

use serde::Deserialize;

use crate::users::model::{Period, Role, Totals};
use crate::users::view::UserView;

/// A user as the admin API answers it (the fields printed).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiUser {
    pub id: String,
    pub name: String,
    /// `…abcd`, or the plain key after create and rotate.
    pub key: String,
    pub role: Role,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub quotas: Vec<ApiQuota>,
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub totals: Totals,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiQuota {
    pub models: String,
    pub tokens: u64,
    pub period: Period,
    pub used: u64,
}

/// `GET /admin/api/users`.
#[derive(Debug, Deserialize)]
pub struct ApiUserList {
    pub data: Vec<ApiUser>,
}

impl From<UserView> for ApiUser {
    fn from(v: UserView) -> Self {
        ApiUser {
            id: v.id,
            name: v.name,
            key: v.key,
            role: v.role,
            enabled: v.enabled,
            disabled_reason: v.disabled_reason,
            rpm: v.rpm,
            tpm: v.tpm,
            quotas: v
                .quotas
                .into_iter()
                .map(|q| ApiQuota {
                    models: q.models,
                    tokens: q.tokens,
                    period: q.period,
                    used: q.used,
                })
                .collect(),
            expires_at: v.expires_at,
            totals: v.totals,
        }
    }
}

const NOT_AGAIN: &str = "Store this key now: it is shown this once and will not be shown again.";

fn describe(user: &ApiUser) -> String {
    format!(
        "{} \"{}\" (role {})",
        user.id,
        user.name,
        user.role.as_str()
    )
}

/// After `add`: the key on a line of its own.
pub fn created(user: &ApiUser, key: &str) -> String {
    format!("created user {}\nkey: {key}\n{NOT_AGAIN}\n", describe(user))
}

/// After `rotate`.
pub fn rotated(user: &ApiUser, key: &str) -> String {
    format!(
        "new key for user {} (the old key no longer works)\nkey: {key}\n{NOT_AGAIN}\n",
        describe(user)
    )
}

/// After `enable` / `disable`.
pub fn toggled(user: &ApiUser) -> String {
    let state = match user.enabled {
        true => "enabled",
        false => "disabled",
    };
    format!("user {} is {state}\n", describe(user))
}

fn time(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn period(p: Period) -> &'static str {
    match p {
        Period::Daily => "daily",
        Period::Weekly => "weekly",
        Period::Monthly => "monthly",
        Period::Never => "never",
    }
}

/// Users as an aligned table.
pub fn listed(users: &[ApiUser]) -> String {
    let header = [
        "ID", "NAME", "ROLE", "KEY", "STATE", "RPM", "TPM", "QUOTAS", "EXPIRES", "REQUESTS",
        "TOKENS",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for u in users {
        let state = match (&u.enabled, &u.disabled_reason) {
            (true, _) => "enabled".to_string(),
            (false, Some(reason)) => format!("disabled: {reason}"),
            (false, None) => "disabled".to_string(),
        };
        let quotas: Vec<String> = u
            .quotas
            .iter()
            .map(|q| format!("{}: {}/{} {}", q.models, q.used, q.tokens, period(q.period)))
            .collect();
        rows.push(vec![
            u.id.clone(),
            u.name.clone(),
            u.role.as_str().to_string(),
            u.key.clone(),
            state,
            limit(u.rpm),
            limit(u.tpm),
            match quotas.is_empty() {
                true => "-".into(),
                false => quotas.join(", "),
            },
            u.expires_at.map_or_else(|| "-".into(), time),
            u.totals.requests.to_string(),
            (u.totals.prompt_tokens + u.totals.completion_tokens).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if users.is_empty() {
        out.push_str("(no users)\n");
    }
    out
}
