//! The one HTTP error type: every failure becomes the exact status and JSON
//! body of the contract. Only this crate knows status codes. Each use
//! case's error enum is mapped to it next to the handler that calls the use
//! case (`From<RegisterError> for ApiError` in `handlers/register.rs`, …).

use std::error::Error as StdError;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use portcullis_application::InfraError;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error_code::ErrorCode;
use crate::pydantic::ValidationError;

/// A business error: `{"detail": "CODE"}`, or `{"detail": {"code": "CODE",
/// "reason": "..."}}` for password-policy failures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorModel {
    #[schema(schema_with = crate::openapi::schemas::error_detail)]
    detail: ErrorDetail,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ErrorDetail {
    Code(ErrorCode),
    CodeReason(ErrorCodeReasonModel),
}

/// The detail of a password-policy failure.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorCodeReasonModel {
    #[schema(value_type = String)]
    code: ErrorCode,
    #[schema(examples("Password should be at least 8 characters"))]
    reason: String,
}

/// Malformed input: one entry per problem.
#[derive(Debug, Serialize, ToSchema)]
#[allow(clippy::upper_case_acronyms)] // FastAPI's name for it
pub(crate) struct HTTPValidationError {
    detail: Vec<ValidationError>,
}

/// A cause kept for the log, never shown to a client.
pub type Cause = Box<dyn StdError + Send + Sync>;

/// An answer that is not a success.
#[derive(Debug)]
pub enum ApiError {
    /// `400 {"detail": "CODE"}`.
    Code(ErrorCode),
    /// `400 {"detail": {"code": "CODE", "reason": "..."}}`.
    CodeReason(ErrorCode, String),
    /// `401 {"detail": "Unauthorized"}` with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// `403 {"detail": "<text>"}`.
    Forbidden(&'static str),
    /// `404 {"detail": "Not Found"}`.
    NotFound,
    /// `400 {"detail": <text or null>}`: FastAPI's bare `HTTPException(400)`
    /// (`"Bad Request"`), or an OAuth callback without a code (the
    /// provider's `error`, else `null`).
    BadRequest(Option<String>),
    /// `502 {"detail": "OAUTH_PROVIDER_UNAVAILABLE"}`: a social-login
    /// provider could not be reached, did not answer in time or answered a
    /// server error; the cause is logged, not shown.
    ProviderUnavailable(String),
    /// `405 {"detail": "Method Not Allowed"}`.
    MethodNotAllowed,
    /// `413`: the body is larger than any request of the contract needs.
    PayloadTooLarge,
    /// `408 {"detail": "Request Timeout"}` with `Connection: close`: the
    /// body stalled (no data for [`BODY_STALL_TIMEOUT`](crate::BODY_STALL_TIMEOUT)).
    RequestTimeout,
    /// `422 {"detail": [...]}`.
    Validation(Vec<ValidationError>),
    /// `429 {"detail": "<code>"}` with `Retry-After: <seconds>` (at least 1):
    /// [`Limit::TooManyRequests`] or [`Limit::LoginTooManyAttempts`].
    TooMany(Limit, std::time::Duration),
    /// `503 {"detail": "SERVICE_BUSY"}` with `Retry-After: 1`: every
    /// password-hashing slot is taken and the queue is full, or the wait for
    /// a slot timed out.
    Busy,
    /// `503`: the store cannot be reached; the cause is logged, not shown.
    Unavailable(Cause),
    /// `499` (nginx's "client closed request"): the client closed its
    /// connection while the request waited (see [`on_connect`](crate::on_connect)),
    /// so the work was dropped. Nobody reads this answer; it exists for the
    /// request log.
    ClientGone,
    /// `500`: a bug; the cause is logged, not shown.
    Internal(Cause),
}

/// Which limit a `429` reports, as its `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `TOO_MANY_REQUESTS`: the client address sent more `POST`s under
    /// `/auth/` than `RATE_LIMIT_AUTH_PER_MINUTE` allows.
    TooManyRequests,
    /// `LOGIN_TOO_MANY_ATTEMPTS`: the address logged into failed
    /// `LOGIN_LOCKOUT_FAILURES` times within `LOGIN_LOCKOUT_MINUTES`.
    LoginTooManyAttempts,
}

impl Limit {
    /// The `detail` the answer carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::TooManyRequests => "TOO_MANY_REQUESTS",
            Limit::LoginTooManyAttempts => "LOGIN_TOO_MANY_ATTEMPTS",
        }
    }
}

/// `Retry-After` in whole seconds: rounded up, at least 1.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl ApiError {
    /// `403 {"detail": "Forbidden"}`.
    pub const FORBIDDEN: ApiError = ApiError::Forbidden("Forbidden");

    /// A `500` for a bug described by `what`.
    pub fn internal(what: impl Into<String>) -> Self {
        ApiError::Internal(what.into().into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.status_code(), self)
    }
}

impl From<InfraError> for ApiError {
    fn from(e: InfraError) -> Self {
        match e {
            InfraError::Busy => ApiError::Busy,
            InfraError::Unavailable(..) => ApiError::Unavailable(Box::new(e)),
            InfraError::Internal(..) => ApiError::Internal(Box::new(e)),
        }
    }
}

/// `cause` and every source under it, for the log.
fn chain(cause: &(dyn StdError + 'static)) -> String {
    let mut text = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Code(_) | ApiError::CodeReason(..) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::ProviderUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ClientGone => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let detail: Value = match self {
            ApiError::Code(code) => {
                return response.json(ErrorModel {
                    detail: ErrorDetail::Code(*code),
                });
            }
            ApiError::CodeReason(code, reason) => {
                return response.json(ErrorModel {
                    detail: ErrorDetail::CodeReason(ErrorCodeReasonModel {
                        code: *code,
                        reason: reason.clone(),
                    }),
                });
            }
            ApiError::Validation(errors) => {
                return response.json(HTTPValidationError {
                    detail: errors.clone(),
                });
            }
            ApiError::Unauthorized => json!("Unauthorized"),
            ApiError::Forbidden(text) => json!(text),
            ApiError::NotFound => json!("Not Found"),
            ApiError::BadRequest(detail) => json!(detail),
            ApiError::ProviderUnavailable(cause) => {
                tracing::warn!(cause = %cause, "OAuth provider unavailable");
                json!("OAUTH_PROVIDER_UNAVAILABLE")
            }
            ApiError::MethodNotAllowed => json!("Method Not Allowed"),
            ApiError::PayloadTooLarge => json!("Request Entity Too Large"),
            ApiError::RequestTimeout => json!("Request Timeout"),
            ApiError::TooMany(limit, _) => json!(limit.as_str()),
            ApiError::Busy => json!("SERVICE_BUSY"),
            ApiError::ClientGone => json!("Client Closed Request"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(cause = %chain(cause.as_ref()), "store unavailable");
                json!("Service Unavailable")
            }
            ApiError::Internal(cause) => {
                tracing::error!(cause = %chain(cause.as_ref()), "internal error");
                json!("Internal Server Error")
            }
        };
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::TooMany(_, wait) => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs(*wait)));
            }
            ApiError::Busy => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::RequestTimeout => {
                // The rest of the body may still come: the connection is done.
                response.force_close();
            }
            _ => {}
        }
        response.json(json!({ "detail": detail }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::to_bytes;

    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, Option<String>, Value) {
        let response = e.error_response();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status();
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn limits_are_429_with_their_code_and_a_whole_retry_after() {
        assert_eq!(
            answer(ApiError::TooMany(
                Limit::TooManyRequests,
                Duration::from_millis(1500)
            ))
            .await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("2".into()),
                json!({"detail": "TOO_MANY_REQUESTS"})
            )
        );
        assert_eq!(
            answer(ApiError::TooMany(
                Limit::LoginTooManyAttempts,
                Duration::ZERO
            ))
            .await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("1".into()),
                json!({"detail": "LOGIN_TOO_MANY_ATTEMPTS"})
            )
        );
        assert_eq!(
            answer(ApiError::TooMany(
                Limit::LoginTooManyAttempts,
                Duration::from_secs(900)
            ))
            .await
            .1,
            Some("900".into())
        );
    }

    #[actix_web::test]
    async fn a_stalled_body_is_408_request_timeout_closing_the_connection() {
        let response = ApiError::RequestTimeout.error_response();
        assert_eq!(
            response.head().connection_type(),
            actix_web::http::ConnectionType::Close
        );
        assert_eq!(
            answer(ApiError::RequestTimeout).await,
            (
                StatusCode::REQUEST_TIMEOUT,
                None,
                json!({"detail": "Request Timeout"})
            )
        );
    }

    #[actix_web::test]
    async fn busy_is_503_service_busy_retry_after_1() {
        assert_eq!(
            answer(ApiError::Busy).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1".into()),
                json!({"detail": "SERVICE_BUSY"})
            )
        );
    }

    #[actix_web::test]
    async fn a_busy_hasher_is_service_busy_not_a_server_error() {
        let e = ApiError::from(InfraError::from(portcullis_domain::HashError::Busy));
        assert!(matches!(e, ApiError::Busy), "{e:?}");
        let e = ApiError::from(InfraError::from(portcullis_domain::HashError::Failed(
            "broken".into(),
        )));
        assert!(matches!(e, ApiError::Internal(_)), "{e:?}");
    }
}
