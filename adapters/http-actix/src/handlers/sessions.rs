//! `DELETE /users/me/sessions`: log out everywhere.

use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;

use crate::error::ApiError;
use crate::extractors::{AuthenticatedSession, Transport};
use crate::handlers::cookie::cleared;
use crate::openapi::responses::Authenticated;

/// End all my sessions
///
/// Logs the current user out everywhere: every access token and session
/// cookie issued so far stops working, this request's included. When the
/// request came with the session cookie, the answer clears it too.
#[utoipa::path(
    delete,
    path = "/users/me/sessions",
    operation_id = "users_end_all_sessions",
    tag = "Users",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 204, description = "Every session ended (empty body; the cookie cleared when it came with one)."),
        Authenticated,
    )
)]
pub async fn end_all_sessions(
    service: Data<UserService>,
    session: AuthenticatedSession,
) -> Result<HttpResponse, ApiError> {
    service.end_all_sessions(&session.user).await?;
    Ok(match session.transport {
        Transport::Cookie => cleared(HttpResponse::NoContent(), service.session_cookie()),
        Transport::Bearer => HttpResponse::NoContent().finish(),
    })
}
