//! Social login, as FastAPI Users' OAuth routers: per configured provider
//! `NAME`,
//! - `GET /auth/{NAME}/authorize` and `/callback` (bearer transport: the
//!   callback answers as `POST /auth/jwt/login`),
//! - `GET /auth/cookie/{NAME}/authorize` and `/callback` (cookie transport:
//!   the callback answers as `POST /auth/cookie/login`),
//! - `GET /auth/associate/{NAME}/authorize` and `/callback` (an
//!   authenticated user links a provider account; the callback answers the
//!   user).
//!
//! The authorize routes set the CSRF cookie `fastapiusersoauthcsrf`
//! (`HttpOnly; Max-Age=3600; Path=/; SameSite=lax`, `Secure` unless
//! `COOKIE_SECURE=false`) that the callback compares with the state. An
//! unknown `NAME` is a 404.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_application::{
    OAuthAuthorization, OAuthAuthorizeError, OAuthCallback, OAuthCallbackError, OAuthLogin,
    UserService,
};
use portcullis_domain::OAuthProviderError;
use serde::Serialize;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::client_address::NO_PEER_ADDRESS;
use crate::client_watch::while_connected;
use crate::error::ApiError;
use crate::error_code::ErrorCode;
use crate::extractors::{CurrentUser, cookie_value};
use crate::handlers::login::BearerResponse;
use crate::openapi::responses::{Authenticated, Busy};
use crate::session_cookie::set_cookie;
use crate::user_body::UserBody;

/// The CSRF cookie of the OAuth flows (FastAPI Users' `CSRF_TOKEN_COOKIE_NAME`).
pub const CSRF_COOKIE_NAME: &str = "fastapiusersoauthcsrf";

/// The answer of the authorize routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuth2AuthorizeResponse {
    /// Where to send the browser: the provider's authorization page.
    pub authorization_url: String,
}

/// The provider name in the path.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderPath {
    /// A provider listed in `OAUTH_PROVIDERS` (e.g. `github`).
    pub name: String,
}

/// The query of the authorize routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read by `query_values`
pub struct AuthorizeQuery {
    /// Scopes to ask for instead of the configured ones (repeatable).
    scopes: Option<Vec<String>>,
}

/// The query of the callback routes (what the provider sends back).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read by `query_values`
pub struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The state token the authorize route made.
    state: Option<String>,
    /// The provider's error, when the user refused.
    error: Option<String>,
}

/// Every value of `name` in the query string, in order.
fn query_values(req: &HttpRequest, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    query_values(req, name).into_iter().next()
}

/// The URL of the callback route next to this request's route: the
/// request's scheme and host, its path with the last segment `callback`.
///
/// `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` count only when
/// the TCP peer is a trusted proxy (`TRUSTED_PROXIES`, as for the client's
/// address); from any other peer they are ignored, so that a client cannot
/// make the provider send the code to a host of its choosing. The request's
/// own `Host` (or its URI's authority) and the connection's scheme are used
/// then.
fn own_callback_url(req: &HttpRequest) -> String {
    let path = req.path();
    let base = path.rsplit_once('/').map_or("", |(base, _)| base);
    let (scheme, host) = scheme_and_host(req);
    format!("{scheme}://{host}{base}/callback")
}

/// The scheme and host of [`own_callback_url`].
fn scheme_and_host(req: &HttpRequest) -> (String, String) {
    let peer = req.peer_addr().map_or(NO_PEER_ADDRESS, |a| a.ip());
    let behind_trusted_proxy = req
        .app_data::<Data<UserService>>()
        .is_some_and(|service| service.trusted_proxies().contains(peer));
    if behind_trusted_proxy {
        let info = req.connection_info();
        return (info.scheme().to_owned(), info.host().to_owned());
    }
    let config = req.app_config();
    let uri = req.uri();
    let scheme = uri
        .scheme_str()
        .unwrap_or(if config.secure() { "https" } else { "http" });
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or_else(|| config.host());
    (scheme.to_owned(), host.to_owned())
}

/// `Set-Cookie` of the CSRF token, as FastAPI Users writes it.
fn csrf_cookie(service: &UserService, token: &str) -> String {
    let mut out =
        format!("{CSRF_COOKIE_NAME}={token}; HttpOnly; Max-Age=3600; Path=/; SameSite=lax");
    if service.session_cookie().secure() {
        out.push_str("; Secure");
    }
    out
}

fn provider_error(e: OAuthProviderError) -> ApiError {
    match e {
        OAuthProviderError::Refused(reason) => {
            tracing::info!(reason = %reason, "OAuth provider refused");
            ApiError::Code(ErrorCode::OauthProviderError)
        }
        OAuthProviderError::Unavailable(cause) => ApiError::ProviderUnavailable(cause),
    }
}

impl From<OAuthAuthorizeError> for ApiError {
    fn from(e: OAuthAuthorizeError) -> Self {
        match e {
            OAuthAuthorizeError::UnknownProvider => ApiError::NotFound,
            OAuthAuthorizeError::Provider(e) => provider_error(e),
            OAuthAuthorizeError::Infra(e) => e.into(),
        }
    }
}

impl From<OAuthCallbackError> for ApiError {
    fn from(e: OAuthCallbackError) -> Self {
        match e {
            OAuthCallbackError::UnknownProvider => ApiError::NotFound,
            OAuthCallbackError::StateInvalid => ApiError::Code(ErrorCode::AccessTokenDecodeError),
            OAuthCallbackError::StateExpired => {
                ApiError::Code(ErrorCode::AccessTokenAlreadyExpired)
            }
            OAuthCallbackError::CsrfMismatch => ApiError::Code(ErrorCode::OauthInvalidState),
            OAuthCallbackError::WrongUser => ApiError::BadRequest(Some("Bad Request".into())),
            OAuthCallbackError::NoEmail => ApiError::Code(ErrorCode::OauthNotAvailableEmail),
            OAuthCallbackError::UserAlreadyExists => {
                ApiError::Code(ErrorCode::OauthUserAlreadyExists)
            }
            OAuthCallbackError::BadCredentials => ApiError::Code(ErrorCode::LoginBadCredentials),
            OAuthCallbackError::NotVerified => ApiError::Code(ErrorCode::LoginUserNotVerified),
            OAuthCallbackError::Provider(e) => provider_error(e),
            OAuthCallbackError::Infra(e) => e.into(),
        }
    }
}

/// The authorize answer: the URL in the body, the CSRF cookie set.
fn authorized(service: &UserService, authorization: OAuthAuthorization) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            csrf_cookie(service, &authorization.csrf_token),
        ))
        .json(OAuth2AuthorizeResponse {
            authorization_url: authorization.authorization_url,
        })
}

/// What a callback request brings, or the answer to a callback without a
/// code (FastAPI Users: `400 {"detail": <the provider's error>}`, or
/// `"Bad Request"`, the status phrase FastAPI fills in for a `None` detail).
struct CallbackParams {
    code: String,
    state: String,
    csrf: Option<String>,
    callback_url: String,
}

impl CallbackParams {
    fn read(req: &HttpRequest) -> Result<Self, ApiError> {
        let error = query_value(req, "error");
        let code = match (query_value(req, "code"), error) {
            (Some(code), None) if !code.is_empty() => code,
            (_, error) => {
                return Err(ApiError::BadRequest(Some(
                    error.unwrap_or_else(|| "Bad Request".to_owned()),
                )));
            }
        };
        Ok(Self {
            code,
            state: query_value(req, "state").unwrap_or_default(),
            csrf: cookie_value(req, CSRF_COOKIE_NAME).map(str::to_owned),
            callback_url: own_callback_url(req),
        })
    }

    fn callback(&self) -> OAuthCallback<'_> {
        OAuthCallback {
            code: &self.code,
            state: &self.state,
            csrf_cookie: self.csrf.as_deref(),
            callback_url: &self.callback_url,
        }
    }
}

fn scopes_of(req: &HttpRequest) -> Option<Vec<String>> {
    let scopes = query_values(req, "scopes");
    (!scopes.is_empty()).then_some(scopes)
}

/// The `400` of the callbacks: every refusal of FastAPI Users' OAuth
/// routers, and the provider's own.
pub(crate) struct CallbackRefused;

impl IntoResponses for CallbackRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let detail = ObjectBuilder::new()
            .property(
                "detail",
                ObjectBuilder::new().schema_type(SchemaType::AnyValue),
            )
            .required("detail");
        let refused = ResponseBuilder::new()
            .description(
                "`ACCESS_TOKEN_DECODE_ERROR` / `ACCESS_TOKEN_ALREADY_EXPIRED` (bad state), \
                 `OAUTH_INVALID_STATE` (CSRF cookie missing or not matching), \
                 `OAUTH_NOT_AVAILABLE_EMAIL`, `OAUTH_USER_ALREADY_EXISTS`, \
                 `LOGIN_BAD_CREDENTIALS` (inactive user), `LOGIN_USER_NOT_VERIFIED`, \
                 `OAUTH_PROVIDER_ERROR` (the provider refused the code, or its ID token did not check out), \
                 or the provider's `error` (else `Bad Request`) when there is no `code`.",
            )
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(detail)).build(),
            )
            .build();
        let unavailable = ResponseBuilder::new()
            .description("The provider could not be reached or did not answer in time.")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(crate::openapi::schemas::fixed_detail(&[
                        "OAUTH_PROVIDER_UNAVAILABLE",
                    ])))
                    .build(),
            )
            .build();
        let not_found = ResponseBuilder::new()
            .description("No such provider.")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(crate::openapi::schemas::fixed_detail(&["Not Found"])))
                    .build(),
            )
            .build();
        [
            ("400".to_owned(), refused.into()),
            ("404".to_owned(), not_found.into()),
            ("502".to_owned(), unavailable.into()),
        ]
        .into_iter()
        .collect()
    }
}

/// The `404` and `502` of the authorize routes.
pub(crate) struct AuthorizeRefused;

impl IntoResponses for AuthorizeRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = CallbackRefused::responses();
        all.remove("400");
        all
    }
}

/// OAuth authorize (bearer)
///
/// The provider's authorization URL (with state and PKCE S256) and the CSRF
/// cookie `fastapiusersoauthcsrf`.
#[utoipa::path(
    get,
    path = "/auth/{name}/authorize",
    operation_id = "oauth_authorize",
    tag = "Auth",
    params(ProviderPath, AuthorizeQuery),
    responses(
        (status = 200, description = "The provider's authorization URL; the CSRF cookie is set.",
            body = OAuth2AuthorizeResponse,
            headers(("Set-Cookie" = String,
                description = "`fastapiusersoauthcsrf=<token>; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure`"))),
        AuthorizeRefused,
    )
)]
pub async fn authorize(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
) -> Result<HttpResponse, ApiError> {
    let callback_url = own_callback_url(&req);
    let authorization = service
        .oauth_authorize(&path.name, &callback_url, scopes_of(&req))
        .await?;
    Ok(authorized(&service, authorization))
}

/// The login a callback to provider `name` gives (both transports'
/// callbacks): `404` for a provider not configured, the query read, then
/// [`UserService::oauth_callback`] while the client is still there.
async fn log_in(
    service: &UserService,
    req: &HttpRequest,
    name: &str,
) -> Result<OAuthLogin, ApiError> {
    if !service.has_oauth_provider(name) {
        return Err(ApiError::NotFound);
    }
    let params = CallbackParams::read(req)?;
    while_connected(req, service.oauth_callback(name, params.callback())).await
}

/// OAuth callback (bearer)
///
/// Where the provider sends the browser back: checks the state and the CSRF
/// cookie, exchanges the code, then logs in (creating or, with
/// `OAUTH_ASSOCIATE_BY_EMAIL`, associating the user) and answers as
/// `POST /auth/jwt/login`.
#[utoipa::path(
    get,
    path = "/auth/{name}/callback",
    operation_id = "oauth_callback",
    tag = "Auth",
    params(ProviderPath, CallbackQuery),
    responses(
        (status = 200, description = "An access token.", body = BearerResponse),
        CallbackRefused,
        Busy,
    )
)]
pub async fn callback(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
) -> Result<HttpResponse, ApiError> {
    let login = log_in(&service, &req, &path.name).await?;
    Ok(HttpResponse::Ok().json(BearerResponse {
        access_token: login.access_token,
        token_type: "bearer",
    }))
}

/// OAuth authorize (cookie)
///
/// As `GET /auth/{name}/authorize`, for the cookie transport's callback.
#[utoipa::path(
    get,
    path = "/auth/cookie/{name}/authorize",
    operation_id = "oauth_cookie_authorize",
    tag = "Auth",
    params(ProviderPath, AuthorizeQuery),
    responses(
        (status = 200, description = "The provider's authorization URL; the CSRF cookie is set.",
            body = OAuth2AuthorizeResponse),
        AuthorizeRefused,
    )
)]
pub async fn cookie_authorize(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
) -> Result<HttpResponse, ApiError> {
    authorize(service, req, path).await
}

/// OAuth callback (cookie)
///
/// As `GET /auth/{name}/callback`, answering as `POST /auth/cookie/login`:
/// `204` with the session cookie.
#[utoipa::path(
    get,
    path = "/auth/cookie/{name}/callback",
    operation_id = "oauth_cookie_callback",
    tag = "Auth",
    params(ProviderPath, CallbackQuery),
    responses(
        (status = 204, description = "Logged in: the access token is in the session cookie (empty body).",
            headers(("Set-Cookie" = String,
                description = "`fastapiusersauth=<token>; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure`"))),
        CallbackRefused,
        Busy,
    )
)]
pub async fn cookie_callback(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
) -> Result<HttpResponse, ApiError> {
    let login = log_in(&service, &req, &path.name).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            set_cookie(service.session_cookie(), &login.access_token),
        ))
        .finish())
}

/// OAuth associate authorize
///
/// For the authenticated user: the provider's authorization URL whose
/// callback links the provider account to them.
#[utoipa::path(
    get,
    path = "/auth/associate/{name}/authorize",
    operation_id = "oauth_associate_authorize",
    tag = "Auth",
    security(("OAuth2PasswordBearer" = [])),
    params(ProviderPath, AuthorizeQuery),
    responses(
        (status = 200, description = "The provider's authorization URL; the CSRF cookie is set.",
            body = OAuth2AuthorizeResponse),
        Authenticated,
        AuthorizeRefused,
    )
)]
pub async fn associate_authorize(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let callback_url = own_callback_url(&req);
    let authorization = service
        .oauth_associate_authorize(&path.name, &user, &callback_url, scopes_of(&req))
        .await?;
    Ok(authorized(&service, authorization))
}

/// OAuth associate callback
///
/// Links the provider account to the authenticated user (refused if it is
/// another user's) and answers the user.
#[utoipa::path(
    get,
    path = "/auth/associate/{name}/callback",
    operation_id = "oauth_associate_callback",
    tag = "Auth",
    security(("OAuth2PasswordBearer" = [])),
    params(ProviderPath, CallbackQuery),
    responses(
        (status = 200, description = "The user, the provider account linked.", body = UserBody),
        Authenticated,
        CallbackRefused,
    )
)]
pub async fn associate_callback(
    service: Data<UserService>,
    req: HttpRequest,
    path: Path<ProviderPath>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    if !service.has_oauth_provider(&path.name) {
        return Err(ApiError::NotFound);
    }
    let params = CallbackParams::read(&req)?;
    let user = while_connected(
        &req,
        service.oauth_associate_callback(&path.name, &user, params.callback()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}
