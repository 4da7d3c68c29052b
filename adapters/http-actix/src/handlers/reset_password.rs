//! `POST /auth/forgot-password` and `POST /auth/reset-password`.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{ResetPasswordError, UserService};
use portcullis_domain::EmailAddress;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use utoipa::ToSchema;

use super::accepted_null;
use crate::client_watch::while_connected;
use crate::error::{ApiError, ErrorModel};
use crate::error_code::ErrorCode;
use crate::openapi::responses::{Busy, Malformed};
use crate::openapi::schemas::{JsonNull, email};
use crate::request::{Body, json_body};

json_body! { Embedded;
    /// Body of `POST /auth/forgot-password`.
    #[derive(ToSchema)]
    #[schema(as = BodyResetForgotPasswordAuthForgotPasswordPost)]
    pub struct ForgotPasswordBody {
        #[schema(schema_with = email)]
        email: EmailAddress,
    }
}

json_body! { Embedded;
    /// Body of `POST /auth/reset-password`.
    #[derive(ToSchema)]
    #[schema(as = BodyResetResetPasswordAuthResetPasswordPost)]
    pub struct ResetPasswordBody {
        /// The token of the reset link mailed by `forgot-password`.
        #[schema(value_type = String)]
        token: SecretString,
        /// At least `PASSWORD_MIN_LENGTH` characters (8 by default), not
        /// containing the e-mail address, and passing the host's own rules;
        /// a password that fails them is a 400 with the reason, not a 422.
        #[schema(value_type = String)]
        password: SecretString,
    }
}

impl From<ResetPasswordError> for ApiError {
    fn from(e: ResetPasswordError) -> Self {
        match e {
            ResetPasswordError::BadToken => ApiError::Code(ErrorCode::ResetPasswordBadToken),
            ResetPasswordError::InvalidPassword(v) => ApiError::CodeReason(
                ErrorCode::ResetPasswordInvalidPassword,
                v.reason().to_owned(),
            ),
            ResetPasswordError::Infra(e) => e.into(),
        }
    }
}

/// Forgot password
///
/// Mails a reset link to the address if it belongs to an active user. The
/// answer is the same whatever the address, so it reveals nothing.
#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    operation_id = "reset_forgot_password",
    tag = "Auth",
    request_body = ForgotPasswordBody,
    responses(
        (status = 202, description = "`null`, always.", body = inline(JsonNull)),
        Malformed,
        Busy,
    )
)]
pub async fn forgot_password(
    service: Data<UserService>,
    req: HttpRequest,
    Body(body): Body<ForgotPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    while_connected(&req, service.forgot_password(&body.email)).await?;
    Ok(accepted_null())
}

/// Reset password
///
/// A token works once: it dies when the password changes, and when the
/// user is deactivated or deleted.
#[utoipa::path(
    post,
    path = "/auth/reset-password",
    operation_id = "reset_reset_password",
    tag = "Auth",
    request_body = ResetPasswordBody,
    responses(
        (status = 200, description = "`null`: the password is changed.", body = inline(JsonNull)),
        (status = 400, description = "A bad or expired token, or a password failing the policy.", body = ErrorModel, examples(
            ("RESET_PASSWORD_BAD_TOKEN" = (summary = "Bad, expired or used token.",
                value = json!({"detail": "RESET_PASSWORD_BAD_TOKEN"}))),
            ("RESET_PASSWORD_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "RESET_PASSWORD_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        Malformed,
        Busy,
    )
)]
pub async fn reset_password(
    service: Data<UserService>,
    req: HttpRequest,
    Body(body): Body<ResetPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let reset = service.reset_password(body.token.expose_secret(), body.password.expose_secret());
    while_connected(&req, reset).await?;
    Ok(HttpResponse::Ok().json(Value::Null))
}
