//! `/users/...`: the current user, and administration by superusers.

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{
    AdminDeleteError, AdminError, AdminUpdateError, UpdateMeError, UserService,
};
use portcullis_domain::{UserChanges, UserId};

use crate::error::ApiError;
use crate::extractors::{CurrentUser, Superuser, authenticate};
#[allow(unused_imports)] // the schemas named by the `utoipa::path` annotations
use crate::openapi::{
    DeleteForbidden, ErrorModel, Forbidden, HTTPValidationError, NotFound, Unauthorized,
    UserMeUpdate, UserRead, UserUpdate,
};
use crate::user_body::UserBody;
use crate::validation::{Fields, json_object, read_body};

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

fn user_ok(user: &portcullis_domain::User) -> HttpResponse {
    HttpResponse::Ok().json(UserBody::from(user))
}

/// The current user
#[utoipa::path(
    get,
    path = "/users/me",
    operation_id = "users_current_user",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The user the token belongs to.", body = UserRead),
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
pub async fn get_me(user: CurrentUser) -> HttpResponse {
    user_ok(&user.0)
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
        (status = 200, description = "The user, updated.", body = UserRead),
        (status = 400, description = "The password fails the policy.", body = ErrorModel, examples(
            ("UPDATE_USER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 422, description = "Malformed body.", body = HTTPValidationError),
    )
)]
pub async fn patch_me(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let user = authenticate(&req).await?;
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let password = fields.optional_str("password");
    fields.finish()?;
    match service.update_me(user, password).await {
        Ok(user) => Ok(user_ok(&user)),
        Err(UpdateMeError::InvalidPassword(v)) => Err(ApiError::CodeReason(
            "UPDATE_USER_INVALID_PASSWORD",
            v.reason(),
        )),
        Err(UpdateMeError::Gone) => Err(ApiError::Unauthorized),
        Err(UpdateMeError::Infra(e)) => Err(e.into()),
    }
}

/// Unknown and malformed ids are both "Not Found" (after the superuser
/// check, which the extractor did).
fn user_id(raw: &str) -> Result<UserId> {
    UserId::parse(raw).map_err(|_| ApiError::NotFound)
}

/// The changes of a `PATCH /users/{id}` body, or the 413/422 it deserves.
async fn user_changes(req: &HttpRequest, payload: Payload) -> Result<UserChanges> {
    let body = read_body(payload).await?;
    let object = json_object(req, &body)?;
    let mut fields = Fields::new(&object);
    let changes = UserChanges {
        password: fields.optional_str("password").map(Into::into),
        email: fields.optional_email("email"),
        is_active: fields.optional_bool("is_active"),
        is_superuser: fields.optional_bool("is_superuser"),
        is_verified: fields.optional_bool("is_verified"),
        role: fields.optional_role("role"),
    };
    fields.finish()?;
    Ok(changes)
}

fn admin_error(e: AdminError) -> ApiError {
    match e {
        AdminError::Forbidden => ApiError::FORBIDDEN,
        AdminError::NotFound => ApiError::NotFound,
        AdminError::Infra(i) => i.into(),
    }
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
        (status = 200, description = "The user.", body = UserRead),
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not a superuser.", body = Forbidden),
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
    )
)]
pub async fn get_user(service: Data<UserService>, admin: Superuser, id: Path<String>) -> Result {
    let id = user_id(&id)?;
    let user = service
        .admin_get_user(&admin.0, id)
        .await
        .map_err(admin_error)?;
    Ok(user_ok(&user))
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
        (status = 200, description = "The user, updated.", body = UserRead),
        (status = 400, description = "The address is taken, or the password fails the policy.", body = ErrorModel, examples(
            ("UPDATE_USER_EMAIL_ALREADY_EXISTS" = (summary = "Another user has this e-mail address.",
                value = json!({"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"}))),
            ("UPDATE_USER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not a superuser.", body = Forbidden),
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
        (status = 422, description = "Malformed body.", body = HTTPValidationError),
    )
)]
pub async fn patch_user(
    service: Data<UserService>,
    req: HttpRequest,
    admin: Superuser,
    id: Path<String>,
    payload: Payload,
) -> Result {
    let id = user_id(&id)?;
    let changes = match user_changes(&req, payload).await {
        Ok(changes) => changes,
        Err(bad_body) => {
            // 404 for an unknown id comes before any judgement of the body;
            // only a bad body needs this extra look-up (a good one learns
            // "not found" from the update itself).
            service
                .admin_get_user(&admin.0, id)
                .await
                .map_err(admin_error)?;
            return Err(bad_body);
        }
    };
    match service.admin_update_user(&admin.0, id, changes).await {
        Ok(user) => Ok(user_ok(&user)),
        Err(AdminUpdateError::Forbidden) => Err(ApiError::FORBIDDEN),
        Err(AdminUpdateError::NotFound) => Err(ApiError::NotFound),
        Err(AdminUpdateError::EmailAlreadyExists) => {
            Err(ApiError::Code("UPDATE_USER_EMAIL_ALREADY_EXISTS"))
        }
        Err(AdminUpdateError::InvalidPassword(v)) => Err(ApiError::CodeReason(
            "UPDATE_USER_INVALID_PASSWORD",
            v.reason(),
        )),
        Err(AdminUpdateError::Infra(e)) => Err(e.into()),
    }
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
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not a superuser.", body = Forbidden),
        (status = 404, description = "No user has the id `me`.", body = NotFound),
    )
)]
pub async fn delete_me_path(_admin: Superuser) -> Result {
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
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not a superuser, or the superuser's own account.", body = DeleteForbidden),
        (status = 404, description = "No such user (or no UUID).", body = NotFound),
    )
)]
pub async fn delete_user(service: Data<UserService>, admin: Superuser, id: Path<String>) -> Result {
    let id = user_id(&id)?;
    match service.admin_delete_user(&admin.0, id).await {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(AdminDeleteError::Forbidden) => Err(ApiError::FORBIDDEN),
        Err(AdminDeleteError::CannotDeleteSelf) => Err(ApiError::Forbidden(
            "Admins cannot delete their own account",
        )),
        Err(AdminDeleteError::NotFound) => Err(ApiError::NotFound),
        Err(AdminDeleteError::Infra(e)) => Err(e.into()),
    }
}
