//! The two client dialects and the shape of their error bodies.
//!
//! Every error a client sees is rendered here, so an OpenAI client always gets
//! `{"error":{...}}` and an Anthropic client `{"type":"error","error":{...}}`.

use serde_json::json;

/// The API family a client speaks, decided by the route it called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

/// The kind of an error, named once and spelled per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    TooLarge,
    RateLimit,
    Upstream,
    Overloaded,
    Timeout,
    Internal,
}

impl Dialect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }

    /// The JSON error body for this dialect. `code` is the OpenAI `code` field.
    pub fn error_body(&self, kind: ErrorKind, code: &str, message: &str) -> serde_json::Value {
        match self {
            Dialect::OpenAi => json!({
                "error": {
                    "message": message,
                    "type": openai_type(kind),
                    "param": null,
                    "code": code,
                }
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(kind), "message": message }
            }),
        }
    }
}

fn openai_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::TooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Upstream | ErrorKind::Overloaded | ErrorKind::Timeout => "upstream_error",
        ErrorKind::Internal => "server_error",
    }
}

fn anthropic_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::TooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Upstream | ErrorKind::Timeout | ErrorKind::Internal => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_error_shape() {
        let body = Dialect::OpenAi.error_body(ErrorKind::Authentication, "invalid_api_key", "bad");
        assert_eq!(
            body,
            json!({"error":{"message":"bad","type":"authentication_error","param":null,"code":"invalid_api_key"}})
        );
    }

    #[test]
    fn anthropic_error_shape() {
        let body = Dialect::Anthropic.error_body(ErrorKind::NotFound, "model_not_found", "nope");
        assert_eq!(
            body,
            json!({"type":"error","error":{"type":"not_found_error","message":"nope"}})
        );
    }
}
