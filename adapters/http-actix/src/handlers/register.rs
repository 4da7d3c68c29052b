//! `POST /auth/register`.

use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{RegisterError, UserService};
use portcullis_domain::{EmailAddress, FieldWriter};
use secrecy::{ExposeSecret, SecretString};
use utoipa::ToSchema;

use crate::client_watch::while_connected;
use crate::error::{ApiError, ErrorModel};
use crate::error_code::ErrorCode;
use crate::openapi::responses::{Busy, Malformed};
use crate::openapi::schemas::email;
use crate::request::{Body, json_body};
use crate::user_body::UserBody;

json_body! { Model;
    /// Body of `POST /auth/register`. Other fields (`is_active`,
    /// `is_superuser`, `is_verified`, `role`) are ignored: nobody promotes
    /// themselves.
    #[derive(ToSchema)]
    #[schema(as = UserCreate)]
    pub struct RegisterBody {
        #[schema(schema_with = email)]
        email: EmailAddress,
        /// At least `PASSWORD_MIN_LENGTH` characters (8 by default), not
        /// containing the e-mail address, and passing the host's own rules;
        /// a password that fails them is a 400 with the reason, not a 422.
        #[schema(value_type = String, examples("correct horse battery"))]
        password: SecretString,
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::AlreadyExists => ApiError::Code(ErrorCode::RegisterUserAlreadyExists),
            RegisterError::InvalidPassword(v) => {
                ApiError::CodeReason(ErrorCode::RegisterInvalidPassword, v.reason().to_owned())
            }
            RegisterError::Infra(e) => e.into(),
        }
    }
}

/// Register a new user
///
/// Creates an active, unverified `student`. The password is checked
/// against the policy before the e-mail address is looked up.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register_register",
    tag = "Auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new user.", body = UserBody, links(
            ("GetUser" = (operation_id = "users_user", parameters(("id" = "$response.body#/id")))),
            ("PatchUser" = (operation_id = "users_patch_user", parameters(("id" = "$response.body#/id")))),
            ("DeleteUser" = (operation_id = "users_delete_user", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "The address is taken, or the password fails the policy.", body = ErrorModel, examples(
            ("REGISTER_USER_ALREADY_EXISTS" = (summary = "A user with this e-mail address already exists.",
                value = json!({"detail": "REGISTER_USER_ALREADY_EXISTS"}))),
            ("REGISTER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "REGISTER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        Malformed,
        Busy,
    )
)]
pub async fn register(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let (body, fields) = Body::<RegisterBody>::read_with_fields(
        &req,
        &mut payload.into_inner(),
        service.user_fields(),
        FieldWriter::User,
    )
    .await?;
    let register = service.register_with_fields(body.email, body.password.expose_secret(), &fields);
    let user = while_connected(&req, register).await?;
    Ok(HttpResponse::Created().json(UserBody::from(&user)))
}
