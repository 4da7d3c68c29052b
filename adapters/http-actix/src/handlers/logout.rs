//! `POST /auth/jwt/logout`.

use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;

use crate::extractors::CurrentUser;
use crate::openapi::responses::Authenticated;

/// Log out
///
/// A stateless JWT cannot be revoked: the token keeps working until it
/// expires.
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
pub async fn logout(service: Data<UserService>, CurrentUser(user): CurrentUser) -> HttpResponse {
    service.logout(&user).await;
    HttpResponse::NoContent().finish()
}
