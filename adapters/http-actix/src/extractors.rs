//! Guards as extractors, usable in any handler of an app that mounted
//! Portcullis: the current active user, a verified one, a superuser, and a
//! user holding at least a given role.
//!
//! Each answers as FastAPI Users' `current_user(...)` dependencies do: no,
//! bad or expired token, or an inactive or deleted user: `401
//! {"detail": "Unauthorized"}`; authenticated but not allowed: `403
//! {"detail": "Forbidden"}`.
//!
//! The access token comes as `Authorization: Bearer <token>` or in the
//! session cookie (FastAPI Users' cookie transport); when both are there the
//! header wins. A cookie-authenticated `POST`, `PATCH` or `DELETE` from a
//! foreign page (an `Origin` that is neither the API's own nor allowed) is
//! `403 {"detail": "Forbidden"}`: see [`authenticate`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use portcullis_application::{AuthError, UserService};
use portcullis_domain::{Role, User};
use secrecy::SecretString;

use crate::error::ApiError;

/// The bearer token of `Authorization: Bearer <token>` (scheme
/// case-insensitive). A token in the query string is never read; the
/// cookie is read by [`credentials`].
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of the cookie `name`, from every `Cookie` header (HTTP/2 may
/// split them), surrounding double quotes removed; `None` when absent or
/// empty.
///
/// Read by hand rather than with actix-web's `cookies` feature: its parser
/// gives up on every cookie of a header when one of them (anyone's, on a
/// shared domain) is malformed, which would log the user out for a
/// neighbour's cookie.
pub fn cookie_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .filter(|value| !value.is_empty())
}

/// How a request's access token arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The session cookie ([`SessionCookie`](portcullis_application::SessionCookie)).
    Cookie,
}

/// The access token of a request and how it came: the bearer header when
/// there is one, else the session cookie named `cookie_name`. **The header
/// wins**: with both, the cookie is not read, even when the header's token
/// is refused.
pub fn credentials<'a>(req: &'a HttpRequest, cookie_name: &str) -> Option<(&'a str, Transport)> {
    bearer_token(req)
        .map(|t| (t, Transport::Bearer))
        .or_else(|| cookie_value(req, cookie_name).map(|t| (t, Transport::Cookie)))
}

fn service(req: &HttpRequest) -> Result<web::Data<UserService>, ApiError> {
    req.app_data::<web::Data<UserService>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("Portcullis is not configured on this app"))
}

/// An authenticated request: the active user, the access token that
/// proved it, and how the token came. What the logout routes need; the
/// guards ([`CurrentUser`], …) keep only the user.
///
/// ```
/// use actix_web::HttpResponse;
/// use portcullis_http_actix::{AuthenticatedSession, Transport};
///
/// async fn whoami(session: AuthenticatedSession) -> HttpResponse {
///     let via = if session.transport == Transport::Cookie { "cookie" } else { "bearer" };
///     HttpResponse::Ok().body(format!("{} via {via}", session.user.email))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AuthenticatedSession {
    /// The active user.
    pub user: User,
    /// The access token (never logged: `Debug` hides it).
    pub token: SecretString,
    /// Whether it came in the header or the cookie.
    pub transport: Transport,
}

impl FromRequest for AuthenticatedSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate_session(&req).await })
    }
}

/// The active user the request's access token belongs to: the bearer
/// header's, else the session cookie's (the header wins when both are
/// there). A cookie-authenticated unsafe request (any method but `GET`,
/// `HEAD`, `OPTIONS`, `TRACE`) whose `Origin` is present and is neither the
/// API's own, nor `FRONTEND_URL`'s, nor in `CORS_ORIGINS` is `403
/// {"detail": "Forbidden"}` before the token is even looked at; a bearer
/// token is never Origin-checked (a browser never sends one by itself).
pub async fn authenticate(req: &HttpRequest) -> Result<User, ApiError> {
    authenticate_session(req).await.map(|s| s.user)
}

async fn authenticate_session(req: &HttpRequest) -> Result<AuthenticatedSession, ApiError> {
    let service = service(req)?;
    let (token, transport) =
        credentials(req, service.session_cookie().name()).ok_or(ApiError::Unauthorized)?;
    if transport == Transport::Cookie && !origin_allowed(req, &service) {
        return Err(ApiError::FORBIDDEN);
    }
    let user = service.authenticate(token).await.map_err(|e| match e {
        AuthError::Unauthorized => ApiError::Unauthorized,
        AuthError::Infra(i) => i.into(),
    })?;
    Ok(AuthenticatedSession {
        user,
        token: SecretString::from(token),
        transport,
    })
}

/// The Origin rule of the cookie transport: safe methods, requests without
/// `Origin`, the API's own origin (same host and port, e.g. Swagger UI at
/// `/docs`), and the service's [`AllowedOrigins`] pass.
///
/// [`AllowedOrigins`]: portcullis_application::AllowedOrigins
fn origin_allowed(req: &HttpRequest, service: &UserService) -> bool {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    is_same_origin(req, origin) || service.allowed_origins().allows(origin)
}

/// Whether `origin` names the host (and port) the request was sent to.
/// The scheme is not compared: behind a TLS-terminating proxy the server
/// sees `http` where the browser wrote `https`. A page cannot forge the
/// `Host` header of a request it makes, so this is no way around the rule.
fn is_same_origin(req: &HttpRequest, origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    authority.eq_ignore_ascii_case(req.connection_info().host())
}

/// The current active user; `401 {"detail": "Unauthorized"}` otherwise.
///
/// ```
/// use actix_web::HttpResponse;
/// use portcullis_http_actix::CurrentUser;
///
/// async fn hello(CurrentUser(user): CurrentUser) -> HttpResponse {
///     HttpResponse::Ok().body(format!("hello, {}", user.email))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(CurrentUser) })
    }
}

/// The current active user if `allowed` admits them: 401 without a usable
/// token, then 403.
fn guarded(
    req: &HttpRequest,
    allowed: fn(&User) -> bool,
) -> Pin<Box<dyn Future<Output = Result<User, ApiError>>>> {
    let req = req.clone();
    Box::pin(async move {
        let user = authenticate(&req).await?;
        if allowed(&user) {
            Ok(user)
        } else {
            Err(ApiError::FORBIDDEN)
        }
    })
}

macro_rules! guard_extractor {
    ($(#[$doc:meta])* $name:ident, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub User);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let user = guarded(req, $allowed);
                Box::pin(async move { user.await.map($name) })
            }
        }
    };
}

guard_extractor!(
    /// The current active superuser; 401 without a usable token, then
    /// `403 {"detail": "Forbidden"}` for anyone else.
    Superuser,
    |u| u.is_superuser
);

guard_extractor!(
    /// The current active user with a verified e-mail address; 401 without a
    /// usable token, then `403 {"detail": "Forbidden"}` when unverified.
    VerifiedUser,
    |u| u.is_verified
);

/// A role a [`RequireRole`] guard asks for.
pub trait RoleRequirement {
    /// The lowest role admitted.
    const ROLE: Role;
}

/// The `student` requirement: every active user's role satisfies it.
#[derive(Debug, Clone, Copy)]
pub struct Student;
/// The `instructor` requirement: instructors and admins.
#[derive(Debug, Clone, Copy)]
pub struct Instructor;
/// The `admin` requirement: admins only.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl RoleRequirement for Student {
    const ROLE: Role = Role::Student;
}
impl RoleRequirement for Instructor {
    const ROLE: Role = Role::Instructor;
}
impl RoleRequirement for Admin {
    const ROLE: Role = Role::Admin;
}

/// The current active user if their role is `R::ROLE` or higher, or they
/// are a superuser; 401 without a usable token, then
/// `403 {"detail": "Forbidden"}`.
///
/// ```
/// use actix_web::HttpResponse;
/// use portcullis_http_actix::{InstructorUser, RequireRole, Admin};
///
/// async fn create_course(InstructorUser { user, .. }: InstructorUser) -> HttpResponse {
///     HttpResponse::Created().body(format!("created by {}", user.email))
/// }
///
/// async fn delete_course(admin: RequireRole<Admin>) -> HttpResponse {
///     HttpResponse::NoContent().finish()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RequireRole<R: RoleRequirement> {
    /// The admitted user.
    pub user: User,
    _role: PhantomData<R>,
}

impl<R: RoleRequirement> RequireRole<R> {
    /// The admitted user.
    pub fn into_user(self) -> User {
        self.user
    }
}

/// Any active user (every role is at least `student`).
pub type StudentUser = RequireRole<Student>;
/// An instructor, an admin, or a superuser.
pub type InstructorUser = RequireRole<Instructor>;
/// An admin or a superuser.
pub type AdminUser = RequireRole<Admin>;

impl<R: RoleRequirement> FromRequest for RequireRole<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = guarded(req, |u| u.has_role(R::ROLE));
        Box::pin(async move {
            user.await.map(|user| RequireRole {
                user,
                _role: PhantomData,
            })
        })
    }
}
