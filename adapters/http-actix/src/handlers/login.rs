//! `POST /auth/jwt/login`: OAuth2's password flow.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{LoginError, UserService};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client_watch::while_connected;
use crate::error::{ApiError, Limit};
use crate::error_code::ErrorCode;
use crate::openapi::responses::{Busy, LoginRefused, Malformed};
use crate::request::{Form, GrantType, form_body};

form_body! {
    /// The form of `POST /auth/jwt/login` (OAuth2's password flow). An
    /// empty value counts as absent.
    #[derive(ToSchema)]
    #[schema(as = BodyAuthJwtLoginAuthJwtLoginPost)]
    pub struct LoginForm {
        /// `password` when given.
        #[schema(value_type = String, pattern = "^password$", required = false)]
        #[allow(dead_code)] // checked, then not needed: there is one flow
        grant_type: Option<GrantType>,
        /// The e-mail address.
        #[schema(min_length = 1)]
        pub(crate) username: String,
        #[schema(value_type = String, format = Password, min_length = 1)]
        pub(crate) password: SecretString,
        /// Ignored.
        #[schema(value_type = String, required = false)]
        #[allow(dead_code)] // OAuth2's form has it; FastAPI Users ignores it
        scope: Option<String>,
        /// Ignored.
        #[schema(value_type = String, required = false)]
        #[allow(dead_code)] // OAuth2's form has it; FastAPI Users ignores it
        client_id: Option<String>,
        /// Ignored.
        #[schema(value_type = String, format = Password, required = false)]
        #[allow(dead_code)] // OAuth2's form has it; FastAPI Users ignores it
        client_secret: Option<String>,
    }
}

/// The answer of a successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct BearerResponse {
    /// A JWT; send it as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(examples("bearer"))]
    pub token_type: &'static str,
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::BadCredentials => ApiError::Code(ErrorCode::LoginBadCredentials),
            LoginError::NotVerified => ApiError::Code(ErrorCode::LoginUserNotVerified),
            LoginError::TooManyAttempts { retry_after } => {
                ApiError::TooMany(Limit::LoginTooManyAttempts, retry_after)
            }
            LoginError::Infra(e) => e.into(),
        }
    }
}

/// Log in
///
/// OAuth2's password flow: the e-mail address as `username`. Unknown
/// addresses, wrong passwords and inactive users are all bad credentials.
/// After `LOGIN_LOCKOUT_FAILURES` failed logins for one address within
/// `LOGIN_LOCKOUT_MINUTES`, every login for it is refused (429) for the
/// rest of that window, whether the address has an account or not.
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
        LoginRefused,
        Malformed,
        Busy,
    )
)]
pub async fn login(
    service: Data<UserService>,
    req: HttpRequest,
    Form(form): Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let login = service.login(&form.username, form.password.expose_secret());
    let access_token = while_connected(&req, login).await?;
    Ok(HttpResponse::Ok().json(BearerResponse {
        access_token,
        token_type: "bearer",
    }))
}
