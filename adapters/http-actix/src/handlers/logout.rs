//! `POST /auth/jwt/logout`.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::UserService;

use crate::error::ApiError;
use crate::extractors::{CurrentUser, bearer_token};
use crate::openapi::responses::Authenticated;

/// Log out
///
/// With `AUTH_STRATEGY=database` the token is deleted: it is refused from
/// now on. A JWT (`AUTH_STRATEGY=jwt`) cannot be revoked alone: it keeps
/// working until it expires (`DELETE /users/me/sessions` ends them all).
#[utoipa::path(
    post,
    path = "/auth/jwt/logout",
    operation_id = "auth_jwt_logout",
    tag = "Auth",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 204, description = "Logged out (empty body)."),
        Authenticated,
    )
)]
pub async fn logout(
    req: HttpRequest,
    service: Data<UserService>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    // The extractor authenticated with this very token.
    service
        .logout(&user, bearer_token(&req).unwrap_or_default())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
