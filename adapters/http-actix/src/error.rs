//! The one HTTP error type: every failure becomes the exact status and JSON
//! body of the contract. Only this crate knows status codes.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::validation::ValidationError;

/// An answer that is not a success.
#[derive(Debug)]
pub enum ApiError {
    /// `400 {"detail": "CODE"}`.
    Code(&'static str),
    /// `400 {"detail": {"code": "CODE", "reason": "..."}}`.
    CodeReason(&'static str, &'static str),
    /// `401 {"detail": "Unauthorized"}` with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// `403 {"detail": "<text>"}`.
    Forbidden(&'static str),
    /// `404 {"detail": "Not Found"}`.
    NotFound,
    /// `405 {"detail": "Method Not Allowed"}`.
    MethodNotAllowed,
    /// `413`: the body is larger than any request of the contract needs.
    PayloadTooLarge,
    /// `422 {"detail": [...]}`.
    Validation(Vec<ValidationError>),
    /// `503`: the store cannot be reached; the cause is logged, not shown.
    Unavailable(String),
    /// `500`: a bug; the cause is logged, not shown.
    Internal(String),
}

impl ApiError {
    /// `403 {"detail": "Forbidden"}`.
    pub const FORBIDDEN: ApiError = ApiError::Forbidden("Forbidden");
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.status_code(), self)
    }
}

impl From<portcullis_application::InfraError> for ApiError {
    fn from(e: portcullis_application::InfraError) -> Self {
        use portcullis_application::InfraError;
        // The cause and its sources, for the log.
        let cause = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        match e {
            InfraError::Unavailable(_) => ApiError::Unavailable(cause),
            InfraError::Internal(_) => ApiError::Internal(cause),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Code(_) | ApiError::CodeReason(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let detail: Value = match self {
            ApiError::Code(code) => json!(code),
            ApiError::CodeReason(code, reason) => json!({"code": code, "reason": reason}),
            ApiError::Unauthorized => json!("Unauthorized"),
            ApiError::Forbidden(text) => json!(text),
            ApiError::NotFound => json!("Not Found"),
            ApiError::MethodNotAllowed => json!("Method Not Allowed"),
            ApiError::PayloadTooLarge => json!("Request Entity Too Large"),
            ApiError::Validation(errors) => json!(errors),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                json!("Service Unavailable")
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json!("Internal Server Error")
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        response.json(json!({ "detail": detail }))
    }
}
