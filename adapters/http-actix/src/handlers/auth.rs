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
#[allow(unused_imports)] // the schemas named by the `utoipa::path` annotations
use crate::openapi::{
    BearerResponse, ErrorModel, ForgotPasswordBody, HTTPValidationError, JsonNull, LoginForm,
    RequestVerifyBody, ResetPasswordBody, Unauthorized, UserCreate, UserRead, VerifyBody,
};
use crate::user_body::UserBody;
use crate::validation::{Fields, Form, json_object, read_body};

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

fn accepted_null() -> HttpResponse {
    HttpResponse::Accepted().json(Value::Null)
}

/// Register a new user
///
/// Creates an active, unverified `student`. The password is checked
/// against the policy before the e-mail address is looked up.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register_register",
    tag = "Auth",
    request_body = UserCreate,
    responses(
        (status = 201, description = "The new user.", body = UserRead, links(
            ("GetUser" = (operation_id = "users_user", parameters(("id" = "$response.body#/id")))),
            ("PatchUser" = (operation_id = "users_patch_user", parameters(("id" = "$response.body#/id")))),
            ("DeleteUser" = (operation_id = "users_delete_user", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "The address is taken, or the password fails the policy.", body = ErrorModel, examples(
            ("REGISTER_USER_ALREADY_EXISTS" = (summary = "A user with this e-mail address already exists.",
                value = json!({"detail": "REGISTER_USER_ALREADY_EXISTS"}))),
            ("REGISTER_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "REGISTER_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        (status = 422, description = "Malformed body.", body = HTTPValidationError),
    )
)]
pub async fn register(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let email = fields.required_email("email");
    let password = fields.required_str("password");
    let (email, password) = fields.finish_with(email.zip(password))?;
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

/// Log in
///
/// OAuth2's password flow: the e-mail address as `username`. Unknown
/// addresses, wrong passwords and inactive users are all bad credentials.
#[utoipa::path(
    post,
    path = "/auth/jwt/login",
    operation_id = "auth_jwt_login",
    tag = "Auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token.", body = BearerResponse, example = json!({
            "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI5MjIxZmZjOS02NDBmLTQzNzItODZkMy1jZTY0MmNiYTU2MDMiLCJhdWQiOlsiZmFzdGFwaS11c2VyczphdXRoIl0sImV4cCI6MTU3MTUwNDE5M30.M10bjOe45I5Ncu_uXvOmVV8QxnL-nZfcH96U90JaocI",
            "token_type": "bearer"
        })),
        (status = 400, description = "Bad credentials, or an unverified user where verification is required.", body = ErrorModel, examples(
            ("LOGIN_BAD_CREDENTIALS" = (summary = "Unknown e-mail address, wrong password, or inactive user.",
                value = json!({"detail": "LOGIN_BAD_CREDENTIALS"}))),
            ("LOGIN_USER_NOT_VERIFIED" = (summary = "The user is not verified (when the server requires it).",
                value = json!({"detail": "LOGIN_USER_NOT_VERIFIED"}))),
        )),
        (status = 422, description = "A missing or empty field, another `grant_type`, or no form at all.", body = HTTPValidationError),
    )
)]
pub async fn login(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let mut form = Form::parse(&req, &body);
    form.optional_exactly("grant_type", "password");
    let username = form.required("username");
    let password = form.required("password");
    let (username, password) = form.finish_with(username.zip(password))?;
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
        (status = 401, description = "No usable token, or an inactive or deleted user.", body = Unauthorized,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
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
    fields.finish_with(email)
}

/// Forgot password
///
/// Mails a reset link to the address if it belongs to an active user. The
/// answer is the same whatever the address, so it reveals nothing.
#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    operation_id = "reset_forgot_password",
    tag = "Auth",
    request_body = ForgotPasswordBody,
    responses(
        (status = 202, description = "`null`, always.", body = inline(JsonNull)),
        (status = 422, description = "Malformed body or e-mail address.", body = HTTPValidationError),
    )
)]
pub async fn forgot_password(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result {
    let email = email_only(&req, payload).await?;
    service.forgot_password(&email).await?;
    Ok(accepted_null())
}

/// Reset password
///
/// A token works once: it dies when the password changes, and when the
/// user is deactivated or deleted.
#[utoipa::path(
    post,
    path = "/auth/reset-password",
    operation_id = "reset_reset_password",
    tag = "Auth",
    request_body = ResetPasswordBody,
    responses(
        (status = 200, description = "`null`: the password is changed.", body = inline(JsonNull)),
        (status = 400, description = "A bad or expired token, or a password failing the policy.", body = ErrorModel, examples(
            ("RESET_PASSWORD_BAD_TOKEN" = (summary = "Bad, expired or used token.",
                value = json!({"detail": "RESET_PASSWORD_BAD_TOKEN"}))),
            ("RESET_PASSWORD_INVALID_PASSWORD" = (summary = "The password fails the policy.",
                value = json!({"detail": {"code": "RESET_PASSWORD_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}}))),
        )),
        (status = 422, description = "Malformed body.", body = HTTPValidationError),
    )
)]
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
    let (token, password) = fields.finish_with(token.zip(password))?;
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

/// Request a verification token
///
/// Mails a verification link to the address if it belongs to an active,
/// unverified user. The answer is the same whatever the address.
#[utoipa::path(
    post,
    path = "/auth/request-verify-token",
    operation_id = "verify_request_token",
    tag = "Auth",
    request_body = RequestVerifyBody,
    responses(
        (status = 202, description = "`null`, always.", body = inline(JsonNull)),
        (status = 422, description = "Malformed body or e-mail address.", body = HTTPValidationError),
    )
)]
pub async fn request_verify_token(
    service: Data<UserService>,
    req: HttpRequest,
    payload: Payload,
) -> Result {
    let email = email_only(&req, payload).await?;
    service.request_verify(&email).await?;
    Ok(accepted_null())
}

/// Verify an e-mail address
///
/// The token is judged first, then whether the user is already verified.
#[utoipa::path(
    post,
    path = "/auth/verify",
    operation_id = "verify_verify",
    tag = "Auth",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The user, now verified.", body = UserRead),
        (status = 400, description = "A bad token, or an already verified user.", body = ErrorModel, examples(
            ("VERIFY_USER_BAD_TOKEN" = (summary = "Bad or expired token, unknown user, or not the user's current e-mail address.",
                value = json!({"detail": "VERIFY_USER_BAD_TOKEN"}))),
            ("VERIFY_USER_ALREADY_VERIFIED" = (summary = "The user is already verified.",
                value = json!({"detail": "VERIFY_USER_ALREADY_VERIFIED"}))),
        )),
        (status = 422, description = "Malformed body.", body = HTTPValidationError),
    )
)]
pub async fn verify(service: Data<UserService>, req: HttpRequest, payload: Payload) -> Result {
    let body = read_body(payload).await?;
    let object = json_object(&req, &body)?;
    let mut fields = Fields::new(&object);
    let token = fields.required_str("token");
    let token = fields.finish_with(token)?;
    match service.verify(token).await {
        Ok(user) => Ok(HttpResponse::Ok().json(UserBody::from(&user))),
        Err(VerifyError::BadToken) => Err(ApiError::Code("VERIFY_USER_BAD_TOKEN")),
        Err(VerifyError::AlreadyVerified) => Err(ApiError::Code("VERIFY_USER_ALREADY_VERIFIED")),
        Err(VerifyError::Infra(e)) => Err(e.into()),
    }
}
