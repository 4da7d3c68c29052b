//! `GET /users/me` and `PATCH /users/me`.

use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{UpdateMeError, UserService};
use portcullis_domain::FieldWriter;
use secrecy::{ExposeSecret, SecretString};
use utoipa::ToSchema;

use crate::client_watch::while_connected;
use crate::error::{ApiError, ErrorModel};
use crate::error_code::ErrorCode;
use crate::extractors::{CurrentUser, authenticate};
use crate::openapi::responses::{Authenticated, Busy, Malformed};
use crate::request::{Body, json_body};
use crate::user_body::UserBody;

json_body! { Model;
    /// Body of `PATCH /users/me`: only the password can be changed here
    /// (`null` or absent: unchanged). Other fields are ignored.
    #[derive(ToSchema)]
    #[schema(as = UserMeUpdate)]
    pub struct UserMeUpdate {
        /// At least `PASSWORD_MIN_LENGTH` characters (8 by default), not
        /// containing the e-mail address, and passing the host's own rules;
        /// a password that fails them is a 400 with the reason, not a 422.
        #[schema(value_type = Option<String>)]
        password: Option<SecretString>,
    }
}

impl From<UpdateMeError> for ApiError {
    fn from(e: UpdateMeError) -> Self {
        match e {
            UpdateMeError::InvalidPassword(v) => {
                ApiError::CodeReason(ErrorCode::UpdateUserInvalidPassword, v.reason().to_owned())
            }
            UpdateMeError::Gone => ApiError::Unauthorized,
            UpdateMeError::Infra(e) => e.into(),
        }
    }
}

/// The current user
#[utoipa::path(
    get,
    path = "/users/me",
    operation_id = "users_current_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The user the token belongs to.", body = UserBody),
        Authenticated,
    )
)]
pub async fn get_me(CurrentUser(user): CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(UserBody::from(&user))
}

/// Change the current user's password
///
/// Only `password` is honoured; other fields (`email`, `role`, the flags)
/// are ignored. The token is judged before the body.
#[utoipa::path(
    patch,
    path = "/users/me",
    operation_id = "users_patch_current_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    request_body = UserMeUpdate,
    responses(
        (status = 200, description = "The user, updated.", body = UserBody),
        (status = 400, description = "The password fails the policy.", body = ErrorModel, examples(
            ("UPDATE_USER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        Authenticated,
        Malformed,
        Busy,
    )
)]
pub async fn patch_me(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    // 401 before the body is judged: read in this order, not as extractors.
    let user = authenticate(&req).await?;
    let (body, fields) = Body::<UserMeUpdate>::read_with_fields(
        &req,
        &mut payload.into_inner(),
        service.user_fields(),
        FieldWriter::User,
    )
    .await?;
    let password = body.password.as_ref().map(ExposeSecret::expose_secret);
    let update = service.update_me_with_fields(user, password, &fields);
    let user = while_connected(&req, update).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}
