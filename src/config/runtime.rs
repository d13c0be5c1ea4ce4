//! Stage two of the config: the checked, resolved values the gateway runs on.
//!
//! Nothing here can be out of range: secrets are resolved, paths joined,
//! durations typed, and "-1 means off" has become `Option` or [`Limit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Secret;

/// The whole runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub routing: RoutingConfig,
    pub log: LogConfig,
    pub realtime: RealtimeConfig,
    pub users: super::users::UsersConfig,
    pub storage: super::storage::StorageConfig,
    /// `[pricing]`: over the built-in prices, under an endpoint's own.
    pub pricing: crate::pricing::PriceTable,
    pub endpoints: Vec<EndpointConfig>,
    /// `endpoints` grouped for routing; built with them (not part of the
    /// TOML). Code that changes `endpoints` calls [`Config::reindex`].
    pub route_index: crate::pipeline::route_index::RouteIndex,
    /// The file the config was read from, if any.
    pub source: Option<PathBuf>,
    /// What the command line set; a reload applies them again.
    pub overrides: super::CliOverrides,
}

impl Config {
    /// Rebuilds [`Config::route_index`] after `endpoints` changed.
    pub fn reindex(&mut self) {
        self.route_index = crate::pipeline::route_index::RouteIndex::build(&self.endpoints);
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Resolved worker count, at least 1.
    pub workers: usize,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub max_body_bytes: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub client_keys: Vec<Secret>,
    pub admin_keys: Vec<Secret>,
    pub passthrough: bool,
    pub allow_anonymous: bool,
    /// Blacklist errors counted for one wrong client key.
    pub invalid_key_weight: u64,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Requests per IP per `ip_interval`; `None` = off.
    pub ip_requests: Option<u64>,
    pub ip_interval: Duration,
    /// Errors per IP per `ip_error_window` before the IP is blocked; `None` = off.
    pub ip_error_threshold: Option<u64>,
    pub ip_error_window: Duration,
    /// Upstream attempts per request (first try plus failovers), at least 1.
    pub max_attempts: u32,
    /// Client networks refused outright (403).
    pub blocked_cidrs: Vec<ipnet::IpNet>,
    /// Lowercased phrases that get a request refused.
    pub reject_phrases: Vec<String>,
}

/// Realtime (WebSocket) sessions.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Concurrent sessions per client; `None` = no cap.
    pub max_sessions_per_user: Option<u32>,
    pub idle_timeout: Duration,
    /// Bytes allowed to wait in one direction of a session (also the
    /// largest message accepted).
    pub max_queued_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub strategy: Strategy,
}

/// How an endpoint is picked among those that can serve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Random,
    RoundRobin,
    Weighted,
    LeastLatency,
    /// Cheapest price of the upstream model first.
    Cost,
    /// Most remaining daily requests first, then cheapest, then fastest.
    Quota,
}

impl Strategy {
    pub const EXPECTED: &'static str =
        "expected one of random, round_robin, weighted, least_latency, cost, quota";

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "random" => Some(Self::Random),
            "round_robin" => Some(Self::RoundRobin),
            "weighted" => Some(Self::Weighted),
            "least_latency" => Some(Self::LeastLatency),
            "cost" => Some(Self::Cost),
            "quota" => Some(Self::Quota),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::LeastLatency => "least_latency",
            Self::Cost => "cost",
            Self::Quota => "quota",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    /// Absolute, or already joined onto `data_dir`.
    pub dir: PathBuf,
}

/// Which upstream dialect and defaults an endpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    OpenAiCompatible,
    Anthropic,
    Azure,
    Gemini,
    Vertex,
    Bedrock,
    Mock,
}

impl ProviderKind {
    pub const EXPECTED: &'static str = "expected one of openai, openai_compatible, anthropic, azure, gemini, vertex, bedrock, mock";

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "openai" => Some(Self::OpenAi),
            "openai_compatible" => Some(Self::OpenAiCompatible),
            "anthropic" => Some(Self::Anthropic),
            "azure" => Some(Self::Azure),
            "gemini" => Some(Self::Gemini),
            "vertex" => Some(Self::Vertex),
            "bedrock" => Some(Self::Bedrock),
            "mock" => Some(Self::Mock),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiCompatible => "openai_compatible",
            Self::Anthropic => "anthropic",
            Self::Azure => "azure",
            Self::Gemini => "gemini",
            Self::Vertex => "vertex",
            Self::Bedrock => "bedrock",
            Self::Mock => "mock",
        }
    }

    /// The base URL used when the endpoint gives none (`None`: it must).
    pub fn default_base_url(&self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::Mock => Some(""),
            // Vertex and Bedrock derive theirs from the region.
            Self::OpenAiCompatible | Self::Azure | Self::Vertex | Self::Bedrock => None,
        }
    }
}

/// A per-endpoint request budget (requests per minute or per day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    /// At most this many; `Max(0)` disables the endpoint for that window.
    Max(u64),
}

impl Limit {
    /// From the file's convention: -1 unlimited, otherwise a maximum.
    pub fn from_i64(value: i64) -> Option<Self> {
        match value {
            -1 => Some(Self::Unlimited),
            n => u64::try_from(n).ok().map(Self::Max),
        }
    }

    /// False only for `Max(0)`.
    pub fn allows_any(&self) -> bool {
        !matches!(self, Self::Max(0))
    }

    /// Back to the file's convention (-1 for unlimited).
    pub fn as_i64(&self) -> i64 {
        match self {
            Self::Unlimited => -1,
            Self::Max(n) => i64::try_from(*n).unwrap_or(i64::MAX),
        }
    }
}

/// One upstream endpoint, with its keys resolved.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub id: String,
    pub name: String,
    pub provider: ProviderKind,
    /// No trailing '/'; empty for a mock endpoint without one.
    pub base_url: String,
    pub keys: Vec<Secret>,
    pub rpm: Limit,
    pub rpd: Limit,
    pub enabled: bool,
    /// Empty = any model.
    pub models: Vec<String>,
    /// Requested model name → upstream model name.
    pub model_mapping: BTreeMap<String, String>,
    pub weight: u32,
    /// Normalised `/x` (leading '/', no trailing '/'); never `/v1`.
    pub route_prefix: Option<String>,
    /// Lowercased `Host` values this endpoint is reserved for.
    pub hosts: Vec<String>,
    /// Mock only: artificial delay before answering.
    pub latency_ms: u64,
    pub anthropic_version: String,
    /// Azure `api-version`.
    pub api_version: String,
    /// Azure: model → deployment (after model_mapping).
    pub deployments: BTreeMap<String, String>,
    /// Vertex project.
    pub project: Option<String>,
    /// Vertex / Bedrock region.
    pub region: Option<String>,
    /// Output cap for upstreams that need one when the client gave none.
    pub default_max_tokens: u64,
    /// This endpoint's `prices` (most specific price layer).
    pub prices: crate::pricing::PriceTable,
}

impl EndpointConfig {
    /// Whether a request for `model` may be sent here.
    pub fn serves(&self, model: &str) -> bool {
        self.models.is_empty()
            || self.models.iter().any(|m| m == model)
            || self.model_mapping.contains_key(model)
    }

    /// The model name to send upstream for a requested `model`.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_mapping.get(model).map_or(model, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_conventions() {
        assert_eq!(Limit::from_i64(-1), Some(Limit::Unlimited));
        assert_eq!(Limit::from_i64(0), Some(Limit::Max(0)));
        assert_eq!(Limit::from_i64(-2), None);
        assert!(!Limit::Max(0).allows_any());
        assert!(Limit::Max(5).allows_any() && Limit::Unlimited.allows_any());
        assert_eq!(Limit::Unlimited.as_i64(), -1);
        assert_eq!(Limit::Max(7).as_i64(), 7);
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiCompatible,
            ProviderKind::Anthropic,
            ProviderKind::Azure,
            ProviderKind::Gemini,
            ProviderKind::Vertex,
            ProviderKind::Bedrock,
            ProviderKind::Mock,
        ] {
            assert_eq!(ProviderKind::from_name(kind.as_str()), Some(kind));
        }
        for strategy in [
            Strategy::Random,
            Strategy::RoundRobin,
            Strategy::Weighted,
            Strategy::LeastLatency,
            Strategy::Cost,
            Strategy::Quota,
        ] {
            assert_eq!(Strategy::from_name(strategy.as_str()), Some(strategy));
        }
    }
}
