//! `POST /auth/jwt/logout`.

use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;

use crate::error::ApiError;
use secrecy::ExposeSecret;

use crate::extractors::AuthenticatedSession;
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
    service: Data<UserService>,
    session: AuthenticatedSession,
) -> Result<HttpResponse, ApiError> {
    // The token the request was authenticated with (bearer or cookie).
    service
        .logout(&session.user, session.token.expose_secret())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
