//! The gateway's error family: who failed (client, upstream, gateway), whether
//! a retry may help, and, in `response.rs`, the one place where an error
//! becomes an HTTP response in the client's dialect.

mod response;

use std::time::Duration;

/// Everything that can end a client request without an upstream answer being
/// relayed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Incorrect or missing API key. Provide a valid key in 'Authorization: Bearer <key>' or 'x-api-key'.")]
    Unauthorized,
    #[error("Access from this IP address is blocked after repeated errors; retry in {} seconds.", .retry_after.as_secs())]
    Banned { retry_after: Duration },
    #[error("Unknown route: {method} {path}")]
    UnknownRoute { method: String, path: String },
    #[error("The model '{model}' does not exist or is not served here. Available models: {}", .available.join(", "))]
    ModelNotFound {
        model: String,
        available: Vec<String>,
    },
    #[error("'model' is required.")]
    ModelMissing,
    #[error("Request body is larger than the limit of {limit_bytes} bytes.")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("Rate limit reached for {scope}; retry in {} seconds.", retry_secs(.retry_after))]
    RateLimited {
        scope: LimitScope,
        retry_after: Duration,
    },
    #[error("No upstream key is usable for this request (all revoked or missing).")]
    NoUsableKey,
    #[error("Upstream failed after {attempts} attempt(s): {last}")]
    UpstreamUnavailable { attempts: u32, last: String },
    #[error("Upstream did not answer in time after {attempts} attempt(s).")]
    UpstreamTimeout { attempts: u32 },
    /// The client may not do this (disabled, expired, model not allowed,
    /// blocked network or phrase).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("Token quota of {tokens} for models '{models}' is used up{}.", refresh_text(.refresh_at))]
    QuotaExceeded {
        models: String,
        tokens: u64,
        refresh_at: Option<u64>,
    },
    #[error("The prompt is about {estimate} tokens; the limit for your key is {limit}.")]
    PromptTooLarge { estimate: u64, limit: u64 },
    /// The upstream refused the request; its message, in the client's
    /// dialect, with the upstream's status.
    #[error("{message}")]
    Upstream { status: u16, message: String },
    /// Redis holds the per-user limits and does not answer, and
    /// `on_redis_down_quotas` is fail_closed.
    #[error("Your key's limits cannot be checked right now (the gateway's shared store does not answer); retry in a moment.")]
    LimitsUnavailable,
    #[error("Internal gateway error: {0}")]
    Internal(String),
}

/// Which limit a 429 came from, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    ClientIp,
    Endpoints,
    UserRequests,
    UserTokens,
    UserConcurrency,
}

impl std::fmt::Display for LimitScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitScope::ClientIp => "requests from your IP address",
            LimitScope::Endpoints => "every upstream endpoint serving this model",
            LimitScope::UserRequests => "requests per minute of your key",
            LimitScope::UserTokens => "tokens per minute of your key",
            LimitScope::UserConcurrency => "concurrent requests of your key",
        })
    }
}

fn refresh_text(refresh_at: &Option<u64>) -> String {
    match refresh_at.and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0)) {
        Some(at) => format!(
            "; it refreshes at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => " and does not refresh".into(),
    }
}

fn retry_secs(d: &Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl GatewayError {
    /// Errors that count toward the IP blacklist: the client's own mistakes
    /// that a scanner or a misconfigured script would repeat.
    pub fn counts_against_ip(&self) -> bool {
        matches!(
            self,
            GatewayError::InvalidJson(_)
                | GatewayError::Unauthorized
                | GatewayError::UnknownRoute { .. }
                | GatewayError::ModelNotFound { .. }
                | GatewayError::PayloadTooLarge { .. }
        )
    }

    /// Seconds for the Retry-After header, when the error has one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::RateLimited { retry_after, .. }
            | GatewayError::Banned { retry_after } => Some(*retry_after),
            GatewayError::LimitsUnavailable => {
                Some(crate::storage::redis::policy::RETRY_WHILE_DOWN)
            }
            GatewayError::QuotaExceeded {
                refresh_at: Some(at),
                ..
            } => Some(Duration::from_secs(
                at.saturating_sub(crate::limits::now_ms() / 1000),
            )),
            _ => None,
        }
    }
}
