//! `/auth/...`: register, login, logout, forgot/reset password, verify.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{
    LoginError, RegisterError, ResetPasswordError, UserService, VerifyError,
};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extractors::CurrentUser;
use crate::user_body::UserBody;
use crate::validation::{Fields, Form, json_object, read_body};

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

fn accepted_null() -> HttpResponse {
    HttpResponse::Accepted().json(Value::Null)
}

/// `POST /auth/register`.
pub async fn register(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let email = fields.required_email("email");
    let password = fields.required_str("password");
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Internal("validated fields missing".into()));
    };
    match service.register(email, password).await {
        Ok(user) => Ok(HttpResponse::Created().json(UserBody::from(&user))),
        Err(RegisterError::AlreadyExists) => Err(ApiError::Code("REGISTER_USER_ALREADY_EXISTS")),
        Err(RegisterError::InvalidPassword(v)) => Err(ApiError::CodeReason(
            "REGISTER_INVALID_PASSWORD",
            v.reason(),
        )),
        Err(RegisterError::Infra(e)) => Err(e.into()),
    }
}

/// `POST /auth/jwt/login` (form `username`, `password`).
pub async fn login(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let mut form = Form::parse(&req, &body);
    form.optional_exactly("grant_type", "password");
    let username = form.required("username");
    let password = form.required("password");
    form.finish()?;
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::Internal("validated fields missing".into()));
    };
    match service.login(&username, &password).await {
        Ok(token) => Ok(HttpResponse::Ok().json(json!({
            "access_token": token,
            "token_type": "bearer",
        }))),
        Err(LoginError::BadCredentials) => Err(ApiError::Code("LOGIN_BAD_CREDENTIALS")),
        Err(LoginError::NotVerified) => Err(ApiError::Code("LOGIN_USER_NOT_VERIFIED")),
        Err(LoginError::Infra(e)) => Err(e.into()),
    }
}

/// `POST /auth/jwt/logout`: 204; the stateless token stays valid until it
/// expires.
pub async fn logout(service: Data<UserService>, user: CurrentUser) -> HttpResponse {
    service.logout(&user.0).await;
    HttpResponse::NoContent().finish()
}

async fn email_only(
    req: &HttpRequest,
    payload: Payload,
) -> Result<portcullis_domain::EmailAddress> {
    let body = read_body(payload).await?;
    let object = json_object(req, &body)?;
    let mut fields = Fields::new(&object);
    let email = fields.required_email("email");
    fields.finish()?;
    email.ok_or_else(|| ApiError::Internal("validated field missing".into()))
}

/// `POST /auth/forgot-password`: 202 `null` whatever the address.
pub async fn forgot_password(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result {
    let email = email_only(&req, payload).await?;
    service.forgot_password(&email).await?;
    Ok(accepted_null())
}

/// `POST /auth/reset-password`.
pub async fn reset_password(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result {
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let token = fields.required_str("token");
    let password = fields.required_str("password");
    fields.finish()?;
    let (Some(token), Some(password)) = (token, password) else {
        return Err(ApiError::Internal("validated fields missing".into()));
    };
    match service.reset_password(token, password).await {
        Ok(()) => Ok(HttpResponse::build(StatusCode::OK).json(Value::Null)),
        Err(ResetPasswordError::BadToken) => Err(ApiError::Code("RESET_PASSWORD_BAD_TOKEN")),
        Err(ResetPasswordError::InvalidPassword(v)) => Err(ApiError::CodeReason(
            "RESET_PASSWORD_INVALID_PASSWORD",
            v.reason(),
        )),
        Err(ResetPasswordError::Infra(e)) => Err(e.into()),
    }
}

/// `POST /auth/request-verify-token`: 202 `null` whatever the address.
pub async fn request_verify_token(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result {
    let email = email_only(&req, payload).await?;
    service.request_verify(&email).await?;
    Ok(accepted_null())
}

/// `POST /auth/verify`.
pub async fn verify(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let token = fields.required_str("token");
    fields.finish()?;
    let token = token.ok_or_else(|| ApiError::Internal("validated field missing".into()))?;
    match service.verify(token).await {
        Ok(user) => Ok(HttpResponse::Ok().json(UserBody::from(&user))),
        Err(VerifyError::BadToken) => Err(ApiError::Code("VERIFY_USER_BAD_TOKEN")),
        Err(VerifyError::AlreadyVerified) => Err(ApiError::Code("VERIFY_USER_ALREADY_VERIFIED")),
        Err(VerifyError::Infra(e)) => Err(e.into()),
    }
}
