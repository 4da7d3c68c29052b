//! `GET`, `PATCH` and `DELETE /users/{id}`: administration by superusers.

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{AdminDeleteError, AdminError, AdminUpdateError, UserService};
use portcullis_domain::{EmailAddress, FieldWriter, Role, UserChanges, UserId};
use secrecy::SecretString;
use utoipa::ToSchema;

use crate::client_watch::while_connected;
use crate::error::{ApiError, ErrorModel};
use crate::error_code::ErrorCode;
use crate::extractors::Superuser;
use crate::openapi::responses::{Authenticated, Busy, Malformed, SuperuserOnly};
use crate::openapi::schemas::{DeleteForbidden, NotFound, lax_bool, optional_email};
use crate::request::{Body, json_body};
use crate::user_body::UserBody;

json_body! { Model;
    /// Body of `PATCH /users/{id}`: each field given (and not `null`) is
    /// changed, the others left as they are.
    #[derive(ToSchema)]
    #[schema(as = UserUpdate)]
    pub struct UserUpdate {
        /// At least `PASSWORD_MIN_LENGTH` characters (8 by default), not
        /// containing the e-mail address, and passing the host's own rules;
        /// a password that fails them is a 400 with the reason, not a 422.
        #[schema(value_type = Option<String>)]
        password: Option<SecretString>,
        /// A new address resets `is_verified` unless the same body sets it.
        #[schema(schema_with = optional_email)]
        email: Option<EmailAddress>,
        #[schema(schema_with = lax_bool)]
        is_active: Option<bool>,
        #[schema(schema_with = lax_bool)]
        is_superuser: Option<bool>,
        #[schema(schema_with = lax_bool)]
        is_verified: Option<bool>,
        #[schema(value_type = Option<crate::openapi::schemas::Role>)]
        role: Option<Role>,
    }
}

impl From<UserUpdate> for UserChanges {
    fn from(body: UserUpdate) -> Self {
        UserChanges {
            password: body.password,
            email: body.email,
            is_active: body.is_active,
            is_superuser: body.is_superuser,
            is_verified: body.is_verified,
            role: body.role,
            fields: Default::default(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden => ApiError::FORBIDDEN,
            AdminError::NotFound => ApiError::NotFound,
            AdminError::Infra(i) => i.into(),
        }
    }
}

impl From<AdminUpdateError> for ApiError {
    fn from(e: AdminUpdateError) -> Self {
        match e {
            AdminUpdateError::Forbidden => ApiError::FORBIDDEN,
            AdminUpdateError::NotFound => ApiError::NotFound,
            AdminUpdateError::EmailAlreadyExists => {
                ApiError::Code(ErrorCode::UpdateUserEmailAlreadyExists)
            }
            AdminUpdateError::InvalidPassword(v) => {
                ApiError::CodeReason(ErrorCode::UpdateUserInvalidPassword, v.reason().to_owned())
            }
            AdminUpdateError::Infra(e) => e.into(),
        }
    }
}

impl From<AdminDeleteError> for ApiError {
    fn from(e: AdminDeleteError) -> Self {
        match e {
            AdminDeleteError::Forbidden => ApiError::FORBIDDEN,
            AdminDeleteError::CannotDeleteSelf => {
                ApiError::Forbidden("Admins cannot delete their own account")
            }
            AdminDeleteError::NotFound => ApiError::NotFound,
            AdminDeleteError::Infra(e) => e.into(),
        }
    }
}

/// Unknown and malformed ids are both "Not Found" (after the superuser
/// check, which the extractor did).
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|_| ApiError::NotFound)
}

/// A user, for superusers
#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "users_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID; any case, hyphens optional).")),
    responses(
        (status = 200, description = "The user.", body = UserBody),
        SuperuserOnly,
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
    )
)]
pub async fn get_user(
    service: Data<UserService>,
    Superuser(admin): Superuser,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = service.admin_get_user(&admin, user_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}

/// Update a user, for superusers
///
/// Judged in this order: the token (401), the superuser (403), the id
/// (404), then the body. A new e-mail address resets `is_verified` unless
/// the same body sets it.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    operation_id = "users_patch_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID; any case, hyphens optional).")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user, updated.", body = UserBody),
        (status = 400, description = "The address is taken, or the password fails the policy.", body = ErrorModel, examples(
            ("UPDATE_USER_EMAIL_ALREADY_EXISTS" = (summary = "Another user has this e-mail address.",
                value = json!({"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"}))),
            ("UPDATE_USER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        SuperuserOnly,
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
        Malformed,
        Busy,
    )
)]
pub async fn patch_user(
    service: Data<UserService>,
    req: HttpRequest,
    Superuser(admin): Superuser,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&id)?;
    let mut payload = payload.into_inner();
    let read = Body::<UserUpdate>::read_with_fields(
        &req,
        &mut payload,
        service.user_fields(),
        FieldWriter::Admin,
    );
    let (body, fields) = match read.await {
        Ok(read) => read,
        Err(bad_body) => {
            // 404 for an unknown id comes before any judgement of the body;
            // only a bad body needs this extra look-up (a good one learns
            // "not found" from the update itself).
            service.admin_get_user(&admin, id).await?;
            return Err(bad_body);
        }
    };
    let mut changes = UserChanges::from(body);
    changes.fields = fields;
    let update = service.admin_update_user(&admin, id, changes);
    let user = while_connected(&req, update).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}

/// `DELETE /users/{id}` with the id `me`
///
/// FastAPI Users has no route to delete oneself: this is the superusers'
/// delete of the id `me`, which is no user's. It is listed because an
/// OpenAPI path without a parameter takes precedence over a templated one.
#[utoipa::path(
    delete,
    path = "/users/me",
    operation_id = "users_delete_user_me",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        SuperuserOnly,
        (status = 404, description = "No user has the id `me`.", body = NotFound),
    )
)]
pub async fn delete_me_path(_admin: Superuser) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Delete a user, for superusers
///
/// A superuser cannot delete their own account.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    operation_id = "users_delete_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID; any case, hyphens optional).")),
    responses(
        (status = 204, description = "Deleted (empty body)."),
        Authenticated,
        (status = 403, description = "Not a superuser, or the superuser's own account.", body = DeleteForbidden),
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
    )
)]
pub async fn delete_user(
    service: Data<UserService>,
    Superuser(admin): Superuser,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    service.admin_delete_user(&admin, user_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
