//! `POST /auth/cookie/login` and `POST /auth/cookie/logout`: FastAPI Users'
//! cookie transport, with the same strategy as the bearer one. The token
//! goes into an `HttpOnly` cookie (see [`SessionCookie`]) instead of the
//! body, so a browser front end never holds it in JavaScript.

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{SessionCookie, UserService};
use secrecy::ExposeSecret;

use crate::client_watch::while_connected;
use crate::error::ApiError;
use crate::extractors::AuthenticatedSession;
use crate::handlers::login::LoginForm;
use crate::openapi::responses::{Authenticated, Busy, LoginRefused, Malformed};
use crate::request::Form;
use crate::session_cookie::{clear_cookie, set_cookie};

/// Log in with a cookie
///
/// The form of `POST /auth/jwt/login`, the same answers when it fails; on
/// success `204` with the access token in the session cookie
/// (`HttpOnly; Max-Age=<token lifetime>; Path=/; SameSite=lax`, `Secure`
/// unless `COOKIE_SECURE=false`).
#[utoipa::path(
    post,
    path = "/auth/cookie/login",
    operation_id = "auth_cookie_login",
    tag = "Auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 204, description = "Logged in: the access token is in the session cookie (empty body).",
            headers(("Set-Cookie" = String,
                description = "`fastapiusersauth=<token>; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure`"))),
        LoginRefused,
        Malformed,
        Busy,
    )
)]
pub async fn cookie_login(
    service: Data<UserService>,
    req: HttpRequest,
    Form(form): Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let login = service.login(&form.username, form.password.expose_secret());
    let access_token = while_connected(&req, login).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            set_cookie(service.session_cookie(), &access_token),
        ))
        .finish())
}

/// Log out of a cookie session
///
/// Ends the session of the cookie (or bearer token) that authenticates the
/// request, as `POST /auth/jwt/logout` does, and clears the cookie.
#[utoipa::path(
    post,
    path = "/auth/cookie/logout",
    operation_id = "auth_cookie_logout",
    tag = "Auth",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 204, description = "Logged out, the cookie cleared (empty body).",
            headers(("Set-Cookie" = String,
                description = "`fastapiusersauth=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure`"))),
        Authenticated,
    )
)]
pub async fn cookie_logout(
    service: Data<UserService>,
    session: AuthenticatedSession,
) -> Result<HttpResponse, ApiError> {
    // With the database strategy this deletes the session's token.
    service
        .logout(&session.user, session.token.expose_secret())
        .await?;
    Ok(cleared(HttpResponse::NoContent(), service.session_cookie()))
}

/// `response` with the session cookie cleared.
pub(crate) fn cleared(
    mut response: actix_web::HttpResponseBuilder,
    cookie: &SessionCookie,
) -> HttpResponse {
    response
        .insert_header((header::SET_COOKIE, clear_cookie(cookie)))
        .finish()
}
