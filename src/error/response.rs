//! GatewayError → HTTP response, in the dialect of the route the client called.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::{retry_secs, GatewayError};
use crate::api::dialect::{Dialect, ErrorKind};

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::InvalidJson(_)
            | GatewayError::BadRequest(_)
            | GatewayError::ModelMissing => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::Banned { .. } => StatusCode::FORBIDDEN,
            GatewayError::UnknownRoute { .. } | GatewayError::ModelNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::NoUsableKey | GatewayError::LimitsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::UpstreamUnavailable { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::PromptTooLarge { .. } => StatusCode::BAD_REQUEST,
            GatewayError::Upstream { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind_and_code(&self) -> (ErrorKind, &'static str) {
        match self {
            GatewayError::InvalidJson(_) => (ErrorKind::InvalidRequest, "invalid_json"),
            GatewayError::BadRequest(_) => (ErrorKind::InvalidRequest, "invalid_request"),
            GatewayError::ModelMissing => (ErrorKind::InvalidRequest, "model_required"),
            GatewayError::Unauthorized => (ErrorKind::Authentication, "invalid_api_key"),
            GatewayError::Banned { .. } => (ErrorKind::Permission, "ip_blocked"),
            GatewayError::UnknownRoute { .. } => (ErrorKind::NotFound, "unknown_url"),
            GatewayError::ModelNotFound { .. } => (ErrorKind::NotFound, "model_not_found"),
            GatewayError::PayloadTooLarge { .. } => (ErrorKind::TooLarge, "request_too_large"),
            GatewayError::RateLimited { .. } => (ErrorKind::RateLimit, "rate_limit_exceeded"),
            GatewayError::NoUsableKey => (ErrorKind::Overloaded, "no_upstream_key"),
            GatewayError::LimitsUnavailable => (ErrorKind::Overloaded, "limits_unavailable"),
            GatewayError::UpstreamUnavailable { .. } => (ErrorKind::Upstream, "upstream_error"),
            GatewayError::UpstreamTimeout { .. } => (ErrorKind::Timeout, "upstream_timeout"),
            GatewayError::Forbidden { code, .. } => (ErrorKind::Permission, code),
            GatewayError::QuotaExceeded { .. } => (ErrorKind::RateLimit, "quota_exceeded"),
            GatewayError::PromptTooLarge { .. } => (ErrorKind::InvalidRequest, "prompt_too_large"),
            GatewayError::Upstream { status, .. } => upstream_kind(*status),
            GatewayError::Internal(_) => (ErrorKind::Internal, "internal_error"),
        }
    }

    /// The response a client of `dialect` gets for this error.
    pub fn to_response(&self, dialect: Dialect) -> HttpResponse {
        let (kind, code) = self.kind_and_code();
        let body = dialect.error_body(kind, code, &self.to_string());
        let mut response = HttpResponse::build(self.status());
        if let Some(after) = self.retry_after() {
            response.insert_header(("retry-after", retry_secs(&after).max(1).to_string()));
        }
        response.json(body)
    }
}

/// The kind an upstream's status stands for.
fn upstream_kind(status: u16) -> (ErrorKind, &'static str) {
    match status {
        400 | 422 => (ErrorKind::InvalidRequest, "invalid_request"),
        401 => (ErrorKind::Authentication, "upstream_authentication"),
        403 => (ErrorKind::Permission, "upstream_permission"),
        404 => (ErrorKind::NotFound, "not_found"),
        413 => (ErrorKind::TooLarge, "request_too_large"),
        429 => (ErrorKind::RateLimit, "rate_limit_exceeded"),
        503 | 529 => (ErrorKind::Overloaded, "overloaded"),
        _ => (ErrorKind::Upstream, "upstream_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LimitScope;
    use std::time::Duration;

    #[test]
    fn rate_limited_has_retry_after_and_dialect_body() {
        let err = GatewayError::RateLimited {
            scope: LimitScope::ClientIp,
            retry_after: Duration::from_millis(1500),
        };
        let resp = err.to_response(Dialect::Anthropic);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "2");
    }

    #[test]
    fn statuses() {
        assert_eq!(GatewayError::Unauthorized.status(), 401);
        assert_eq!(
            GatewayError::ModelNotFound {
                model: "x".into(),
                available: vec![]
            }
            .status(),
            404
        );
        assert_eq!(
            GatewayError::PayloadTooLarge { limit_bytes: 1 }.status(),
            413
        );
        assert_eq!(GatewayError::UpstreamTimeout { attempts: 1 }.status(), 504);
    }
}
