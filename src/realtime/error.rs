//! Why a realtime session was refused before its upgrade, and the one place
//! where that becomes the HTTP answer: the gateway's errors as on any OpenAI
//! route, plus the few that only a WebSocket session can meet.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::api::dialect::{Dialect, ErrorKind};
use crate::error::GatewayError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RealtimeError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("/v1/realtime is a WebSocket endpoint: connect with 'Upgrade: websocket'.")]
    NotUpgrade,
    #[error(
        "Too many concurrent realtime sessions for this key (at most {limit}); close one first."
    )]
    TooManySessions { limit: u32 },
    /// The upstream refused the handshake for the request's own reasons (a
    /// bad model, a passthrough key it does not know): its answer is passed on.
    #[error("upstream refused the session ({status})")]
    Refused { status: u16, body: Vec<u8> },
}

impl RealtimeError {
    pub fn status(&self) -> StatusCode {
        match self {
            RealtimeError::Gateway(e) => e.status(),
            RealtimeError::NotUpgrade => StatusCode::UPGRADE_REQUIRED,
            RealtimeError::TooManySessions { .. } => StatusCode::TOO_MANY_REQUESTS,
            RealtimeError::Refused { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }
    }

    /// Whether the IP blacklist counts it (as the HTTP pipeline would).
    pub fn counts_against_ip(&self) -> bool {
        matches!(self, RealtimeError::Gateway(e) if e.counts_against_ip())
    }

    pub fn to_response(&self) -> HttpResponse {
        let openai = Dialect::OpenAi;
        match self {
            RealtimeError::Gateway(e) => e.to_response(openai),
            RealtimeError::NotUpgrade => HttpResponse::build(self.status())
                .insert_header(("upgrade", "websocket"))
                .json(openai.error_body(
                    ErrorKind::InvalidRequest,
                    "websocket_required",
                    &self.to_string(),
                )),
            RealtimeError::TooManySessions { .. } => HttpResponse::build(self.status()).json(
                openai.error_body(ErrorKind::RateLimit, "too_many_sessions", &self.to_string()),
            ),
            RealtimeError::Refused { body, .. } if is_json(body) => {
                HttpResponse::build(self.status())
                    .content_type("application/json")
                    .body(body.clone())
            }
            RealtimeError::Refused { body, .. } => {
                let message = String::from_utf8_lossy(body);
                let message = match message.trim() {
                    "" => self.to_string(),
                    text => format!("{self}: {text}"),
                };
                HttpResponse::build(self.status()).json(openai.error_body(
                    ErrorKind::InvalidRequest,
                    "upstream_refused",
                    &message,
                ))
            }
        }
    }
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_json(response: HttpResponse) -> serde_json::Value {
        let bytes = response.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn session_cap_in_the_openai_dialect() {
        let err = RealtimeError::TooManySessions { limit: 2 };
        let response = err.to_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            body_json(response),
            serde_json::json!({"error": {
                "message": "Too many concurrent realtime sessions for this key (at most 2); close one first.",
                "type": "rate_limit_error",
                "param": null,
                "code": "too_many_sessions",
            }})
        );
    }

    #[test]
    fn upstream_refusals_pass_through_or_get_wrapped() {
        let json = br#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#;
        let passed = RealtimeError::Refused {
            status: 400,
            body: json.to_vec(),
        }
        .to_response();
        assert_eq!(passed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(passed)["error"]["message"], "bad model");
        let wrapped = RealtimeError::Refused {
            status: 404,
            body: b"no such thing".to_vec(),
        }
        .to_response();
        assert_eq!(
            body_json(wrapped)["error"]["message"],
            "upstream refused the session (404): no such thing"
        );
        let not_ws = RealtimeError::NotUpgrade.to_response();
        assert_eq!(not_ws.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(not_ws.headers().get("upgrade").unwrap(), "websocket");
    }
}
