//! Errors of the admin API, mapped to HTTP in this one place. Admin clients
//! are scripts and dashboards rather than SDKs of one dialect, so every
//! error has the OpenAI shape: `{"error":{"message","type","param","code"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::api::dialect::{Dialect, ErrorKind};
use crate::error::GatewayError;
use crate::storage::StorageError;
use crate::users::actor::UserError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Guard, auth and unavailable actors: the gateway's own family.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A valid key, but not an admin's.
    #[error("This route needs an admin key.")]
    AdminOnly,
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The target exists but may not be changed this way.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A body or query the route cannot use; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    #[error("Method not allowed on this admin route.")]
    MethodNotAllowed,
    #[error("Internal gateway error: {0}")]
    Internal(String),
}

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        let message = e.to_string();
        match e {
            UserError::NotFound(_) => AdminError::NotFound {
                code: "user_not_found",
                message,
            },
            UserError::FromConfig(_) => AdminError::Conflict {
                code: "user_from_config",
                message,
            },
            UserError::Invalid(_) => AdminError::BadRequest(message),
            UserError::KeyGeneration => AdminError::Internal(message),
        }
    }
}

impl From<StorageError> for AdminError {
    fn from(e: StorageError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

impl AdminError {
    fn kind_and_code(&self) -> (ErrorKind, &'static str) {
        match self {
            AdminError::Gateway(_) => (ErrorKind::Internal, "internal_error"),
            AdminError::AdminOnly => (ErrorKind::Permission, "admin_only"),
            AdminError::NotFound { code, .. } => (ErrorKind::NotFound, code),
            AdminError::Conflict { code, .. } => (ErrorKind::InvalidRequest, code),
            AdminError::BadRequest(_) => (ErrorKind::InvalidRequest, "invalid_request"),
            AdminError::MethodNotAllowed => (ErrorKind::InvalidRequest, "method_not_allowed"),
            AdminError::Internal(_) => (ErrorKind::Internal, "internal_error"),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Gateway(e) => e.status(),
            AdminError::AdminOnly => StatusCode::FORBIDDEN,
            AdminError::NotFound { .. } => StatusCode::NOT_FOUND,
            AdminError::Conflict { .. } => StatusCode::CONFLICT,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AdminError::Gateway(e) = self {
            // Keeps Retry-After of bans and per-IP limits.
            return e.to_response(Dialect::OpenAi);
        }
        let (kind, code) = self.kind_and_code();
        HttpResponse::build(self.status_code()).json(Dialect::OpenAi.error_body(
            kind,
            code,
            &self.to_string(),
        ))
    }
}

/// A path under the admin prefix that is no admin route.
pub async fn unknown_route(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, AdminError> {
    Err(AdminError::NotFound {
        code: "unknown_route",
        message: format!("No admin route {} {}.", req.method(), req.path()),
    })
}

/// Wrong method on an admin path.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, AdminError> {
    Err(AdminError::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(e: AdminError) -> (u16, serde_json::Value) {
        let response = e.error_response();
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body()).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_web::test]
    async fn errors_have_the_openai_shape() {
        let (status, body) = body_of(AdminError::AdminOnly).await;
        assert_eq!(status, 403);
        assert_eq!(
            body,
            serde_json::json!({"error": {"message": "This route needs an admin key.",
                "type": "permission_error", "param": null, "code": "admin_only"}})
        );
        let (status, body) = body_of(UserError::FromConfig("cfg-1".into()).into()).await;
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "user_from_config");
        let (status, body) = body_of(UserError::NotFound("u-1".into()).into()).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["message"], "no user with id u-1");
        let (status, body) = body_of(GatewayError::Unauthorized.into()).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }
}
