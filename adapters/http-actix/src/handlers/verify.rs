//! `POST /auth/request-verify-token` and `POST /auth/verify`.

use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::{UserService, VerifyError};
use portcullis_domain::EmailAddress;
use secrecy::{ExposeSecret, SecretString};
use utoipa::ToSchema;

use super::accepted_null;
use crate::error::{ApiError, ErrorModel};
use crate::error_code::ErrorCode;
use crate::openapi::responses::Malformed;
use crate::openapi::schemas::{JsonNull, email};
use crate::request::{Body, json_body};
use crate::user_body::UserBody;

json_body! { Embedded;
    /// Body of `POST /auth/request-verify-token`.
    #[derive(ToSchema)]
    #[schema(as = BodyVerifyRequestTokenAuthRequestVerifyTokenPost)]
    pub struct RequestVerifyBody {
        #[schema(schema_with = email)]
        email: EmailAddress,
    }
}

json_body! { Embedded;
    /// Body of `POST /auth/verify`.
    #[derive(ToSchema)]
    #[schema(as = BodyVerifyVerifyAuthVerifyPost)]
    pub struct VerifyBody {
        /// The token of the verification link mailed by `request-verify-token`.
        #[schema(value_type = String)]
        token: SecretString,
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::BadToken => ApiError::Code(ErrorCode::VerifyUserBadToken),
            VerifyError::AlreadyVerified => ApiError::Code(ErrorCode::VerifyUserAlreadyVerified),
            VerifyError::Infra(e) => e.into(),
        }
    }
}

/// Request a verification token
///
/// Mails a verification link to the address if it belongs to an active,
/// unverified user. The answer is the same whatever the address.
#[utoipa::path(
    post,
    path = "/auth/request-verify-token",
    operation_id = "verify_request_token",
    tag = "Auth",
    request_body = RequestVerifyBody,
    responses(
        (status = 202, description = "`null`, always.", body = inline(JsonNull)),
        Malformed,
    )
)]
pub async fn request_verify_token(
    service: Data<UserService>,
    Body(body): Body<RequestVerifyBody>,
) -> Result<HttpResponse, ApiError> {
    service.request_verify(&body.email).await?;
    Ok(accepted_null())
}

/// Verify an e-mail address
///
/// The token is judged first, then whether the user is already verified.
#[utoipa::path(
    post,
    path = "/auth/verify",
    operation_id = "verify_verify",
    tag = "Auth",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The user, now verified.", body = UserBody),
        (status = 400, description = "A bad token, or an already verified user.", body = ErrorModel, examples(
            ("VERIFY_USER_BAD_TOKEN" = (summary = "Bad or expired token, unknown user, or not the user's current e-mail address.",
                value = json!({"detail": "VERIFY_USER_BAD_TOKEN"}))),
            ("VERIFY_USER_ALREADY_VERIFIED" = (summary = "The user is already verified.",
                value = json!({"detail": "VERIFY_USER_ALREADY_VERIFIED"}))),
        )),
        Malformed,
    )
)]
pub async fn verify(
    service: Data<UserService>,
    Body(body): Body<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let user = service.verify(body.token.expose_secret()).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}
