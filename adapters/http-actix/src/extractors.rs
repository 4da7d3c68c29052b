//! Guards as extractors, usable in any handler of an app that mounted
//! Portcullis: the current active user, a verified one, a superuser, and a
//! user holding at least a given role.
//!
//! Each answers as FastAPI Users' `current_user(...)` dependencies do: no,
//! bad or expired token, or an inactive or deleted user: `401
//! {"detail": "Unauthorized"}`; authenticated but not allowed: `403
//! {"detail": "Forbidden"}`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use portcullis_application::{AuthError, UserService};
use portcullis_domain::{Role, User};

use crate::error::ApiError;

/// The bearer token of `Authorization: Bearer <token>` (scheme
/// case-insensitive). A token elsewhere (query string, cookie) is not read.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn service(req: &HttpRequest) -> Result<web::Data<UserService>, ApiError> {
    req.app_data::<web::Data<UserService>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("Portcullis is not configured on this app"))
}

/// The active user the request's access token belongs to.
pub async fn authenticate(req: &HttpRequest) -> Result<User, ApiError> {
    let service = service(req)?;
    let token = bearer_token(req).ok_or(ApiError::Unauthorized)?;
    service.authenticate(token).await.map_err(|e| match e {
        AuthError::Unauthorized => ApiError::Unauthorized,
        AuthError::Infra(i) => i.into(),
    })
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
