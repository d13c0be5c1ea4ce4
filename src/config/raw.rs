//! Stage one of the config: the TOML file exactly as written.
//!
//! Every struct denies unknown keys and spells out its defaults here, so this
//! file is the reference for what `aigate.toml` may contain. Values stay close
//! to the text (integers as `i64`, enums as strings): ranges and meanings are
//! checked in `validate.rs`, where an error can name the key path and say what
//! was expected instead of serde's generic wording.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole file. A missing section means all of its defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    pub server: RawServer,
    pub auth: RawAuth,
    pub limits: RawLimits,
    pub routing: RawRouting,
    pub log: RawLog,
    pub realtime: RawRealtime,
    pub users: super::users::RawUsers,
    pub storage: super::storage::RawStorage,
    /// Model (exact or glob) → USD per 1M tokens.
    pub pricing: super::pricing::RawPrices,
    pub endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    pub listen: String,
    pub workers: i64,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<String>,
    pub max_body_mb: i64,
    pub connect_timeout_secs: i64,
    pub request_timeout_secs: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:6543".to_owned(),
            workers: 0,
            data_dir: PathBuf::from("data"),
            trusted_proxies: Vec::new(),
            max_body_mb: 32,
            connect_timeout_secs: 10,
            request_timeout_secs: 600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAuth {
    pub client_keys: Vec<String>,
    /// Client keys with the admin role (the admin API).
    pub admin_keys: Vec<String>,
    pub passthrough: bool,
    pub allow_anonymous: bool,
    pub force_anonymous: bool,
    /// How many blacklist errors one wrong client key counts for.
    pub invalid_key_weight: i64,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            client_keys: Vec::new(),
            admin_keys: Vec::new(),
            passthrough: false,
            allow_anonymous: false,
            force_anonymous: false,
            invalid_key_weight: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub ip_requests: i64,
    pub ip_interval_secs: i64,
    pub ip_error_threshold: i64,
    pub ip_error_window_secs: i64,
    pub max_attempts: i64,
    /// Client CIDRs refused outright.
    pub blocked_cidrs: Vec<String>,
    /// A request whose prompt contains one of these (case-insensitive) is
    /// refused and logged.
    pub reject_phrases: Vec<String>,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            ip_requests: 100,
            ip_interval_secs: 60,
            ip_error_threshold: 10,
            ip_error_window_secs: 86_400,
            max_attempts: 3,
            blocked_cidrs: Vec::new(),
            reject_phrases: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRouting {
    pub strategy: String,
}

impl Default for RawRouting {
    fn default() -> Self {
        Self {
            strategy: "random".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLog {
    pub level: String,
    pub dir: PathBuf,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            dir: PathBuf::from("logs"),
        }
    }
}

/// `[realtime]`: WebSocket sessions relayed to the Realtime API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRealtime {
    /// Concurrent sessions per client key; -1 = no cap, 0 = realtime off.
    pub max_sessions_per_user: i64,
    /// A session with no frame either way for this long is closed.
    pub idle_timeout_secs: i64,
    /// Bytes waiting in one direction of a session before it is closed.
    pub max_queued_bytes: i64,
}

impl Default for RawRealtime {
    fn default() -> Self {
        Self {
            max_sessions_per_user: 5,
            idle_timeout_secs: 300,
            max_queued_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One `[[endpoints]]` table. `id` and `provider` are required; the
/// provider-dependent defaults (`base_url`) are filled in by validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEndpoint {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default = "unlimited")]
    pub rpm: i64,
    #[serde(default = "unlimited")]
    pub rpd: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub weight: i64,
    #[serde(default)]
    pub route_prefix: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub latency_ms: i64,
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// Azure: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Azure: model → deployment name.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Vertex: the Google Cloud project.
    #[serde(default)]
    pub project: Option<String>,
    /// Vertex and Bedrock: the cloud region.
    #[serde(default)]
    pub region: Option<String>,
    /// Vertex: a service-account JSON key (reference or literal).
    #[serde(default)]
    pub credentials: Option<String>,
    /// Bedrock: AWS credentials (references or literals).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
    /// Output cap sent to upstreams that require one (Anthropic) when the
    /// client gave none.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: i64,
    /// Prices on this endpoint, over `[pricing]` and the built-in ones.
    #[serde(default)]
    pub prices: super::pricing::RawPrices,
}

fn default_max_tokens() -> i64 {
    4096
}

impl RawEndpoint {
    /// An endpoint with every optional key at its default, as the file would
    /// give it; used when an environment variable creates an endpoint.
    pub fn new(id: &str, provider: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: None,
            provider: provider.to_owned(),
            base_url: None,
            keys: Vec::new(),
            rpm: unlimited(),
            rpd: unlimited(),
            enabled: yes(),
            models: Vec::new(),
            model_mapping: BTreeMap::new(),
            weight: one(),
            route_prefix: String::new(),
            hosts: Vec::new(),
            latency_ms: 0,
            anthropic_version: None,
            api_version: None,
            deployments: BTreeMap::new(),
            project: None,
            region: None,
            credentials: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            default_max_tokens: default_max_tokens(),
            prices: BTreeMap::new(),
        }
    }
}

fn unlimited() -> i64 {
    -1
}

fn yes() -> bool {
    true
}

fn one() -> i64 {
    1
}
