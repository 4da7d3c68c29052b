//! Guards as extractors, usable in any handler of an app that mounted
//! Portcullis: the current active user, the current superuser.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use portcullis_application::{AuthError, UserService};
use portcullis_domain::User;

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
        .ok_or_else(|| ApiError::Internal("Portcullis is not configured on this app".into()))
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

/// The current active superuser; 401 without a usable token, then
/// `403 {"detail": "Forbidden"}` for anyone else.
#[derive(Debug, Clone)]
pub struct Superuser(pub User);

impl FromRequest for Superuser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = authenticate(&req).await?;
            if user.is_superuser {
                Ok(Superuser(user))
            } else {
                Err(ApiError::FORBIDDEN)
            }
        })
    }
}
