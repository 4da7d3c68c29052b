//! `/users/...`: the current user, and administration by superusers.

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{
    AdminDeleteError, AdminError, AdminUpdateError, UpdateMeError, UserService,
};
use portcullis_domain::{UserChanges, UserId};

use crate::error::ApiError;
use crate::extractors::{CurrentUser, Superuser, authenticate};
use crate::user_body::UserBody;
use crate::validation::{Fields, json_object, read_body};

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

fn user_ok(user: &portcullis_domain::User) -> HttpResponse {
    HttpResponse::Ok().json(UserBody::from(user))
}

/// `GET /users/me`.
pub async fn get_me(user: CurrentUser) -> HttpResponse {
    user_ok(&user.0)
}

/// `PATCH /users/me`: only `password` is honoured; the token is judged
/// before the body.
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

fn admin_error(e: AdminError) -> ApiError {
    match e {
        AdminError::Forbidden => ApiError::FORBIDDEN,
        AdminError::NotFound => ApiError::NotFound,
        AdminError::Infra(i) => i.into(),
    }
}

/// `GET /users/{id}`.
pub async fn get_user(service: Data<UserService>, admin: Superuser, id: Path<String>) -> Result {
    let id = user_id(&id)?;
    let user = service
        .admin_get_user(&admin.0, id)
        .await
        .map_err(admin_error)?;
    Ok(user_ok(&user))
}

/// `PATCH /users/{id}`: 401, 403, 404, then the body.
pub async fn patch_user(
    service: Data<UserService>,
    req: HttpRequest,
    admin: Superuser,
    id: Path<String>,
    payload: Payload,
) -> Result {
    let id = user_id(&id)?;
    // 404 for an unknown id comes before any judgement of the body.
    service
        .admin_get_user(&admin.0, id)
        .await
        .map_err(admin_error)?;
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let changes = UserChanges {
        password: fields.optional_str("password").map(str::to_owned),
        email: fields.optional_email("email"),
        is_active: fields.optional_bool("is_active"),
        is_superuser: fields.optional_bool("is_superuser"),
        is_verified: fields.optional_bool("is_verified"),
        role: fields.optional_role("role"),
    };
    fields.finish()?;
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

/// `DELETE /users/me`: FastAPI Users has no such route, so the path is
/// `DELETE /users/{id}` with the id `me`, which is no UUID: 401 without a
/// usable token, 403 for a non-superuser, then 404.
pub async fn delete_me_path(_admin: Superuser) -> Result {
    Err(ApiError::NotFound)
}

/// `DELETE /users/{id}`: 204, or 403 for oneself.
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
