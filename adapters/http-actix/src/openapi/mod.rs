//! The OpenAPI 3.1 document of the contract and the Swagger UI that shows
//! it.
//!
//! The operations come from the `#[utoipa::path]` annotations on the
//! handlers; the request bodies are the handlers' own request types, so the
//! document shows exactly what they parse. The paths of the annotations are
//! relative to the API prefix; [`openapi_document`] puts them under the
//! prefix a server is configured with, at run time.
//!
//! - [`schemas`]: schemas several operations share;
//! - [`responses`]: answers generated for many operations (401/403/422,
//!   413/503, 429);
//! - [`swagger`]: Swagger UI.

mod fields;
pub(crate) mod responses;
pub(crate) mod schemas;
mod swagger;

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpResponse, Resource};
use portcullis_application::UserService;
use portcullis_domain::UserFields;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, OAuth2, Password, Scopes, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::handlers::fallback::method_not_allowed;
use crate::handlers::{ContractPaths, health};
use crate::pydantic::ValidationError;
use responses::{CookieSessionAnswers, InfrastructureAnswers, TooManyRequestsAnswers};
pub use swagger::swagger_ui;

/// The name of the security scheme of the protected operations.
pub(crate) const SECURITY_SCHEME: &str = "OAuth2PasswordBearer";

/// The name of the session cookie's security scheme, offered beside
/// [`SECURITY_SCHEME`] on every protected operation (FastAPI Users'
/// `CookieTransport` declares an `APIKeyCookie`).
pub(crate) const COOKIE_SECURITY_SCHEME: &str = "APIKeyCookie";

/// Where the standalone server serves the document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Where the standalone server serves Swagger UI.
pub const DOCS_PATH: &str = "/docs";

/// The contract's operations, relative to the API prefix.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "User registration, login, password reset and e-mail verification, \
                       speaking the HTTP API of FastAPI Users."
    ),
    components(schemas(
        crate::UserBody,
        schemas::Role,
        crate::error::ErrorModel,
        crate::error::ErrorCodeReasonModel,
        crate::error::HTTPValidationError,
        ValidationError,
        schemas::Unauthorized,
        schemas::Forbidden,
    )),
    tags(
        (name = "Auth", description = "Registration, login, password reset, e-mail verification."),
        (name = "Users", description = "The current user, and administration by superusers."),
    )
)]
struct ContractDoc;

/// What the standalone server adds: `GET /health`, outside the prefix.
#[derive(OpenApi)]
#[openapi(paths(health::health))]
struct HealthDoc;

/// The OpenAPI document of the contract's routes mounted at `prefix` (as
/// given to [`mount`](crate::mount)): every operation with its request body
/// and every answer it can give, and the `OAuth2PasswordBearer` password
/// flow whose token URL is the login route, so Swagger UI's Authorize
/// button logs in. A host that mounts Portcullis next to its own routes
/// serves this (merged with its own document if it has one) with
/// [`openapi_resource`].
///
/// ```
/// let doc = portcullis_http_actix::openapi_document("/auth/v1");
/// assert!(doc.paths.paths.contains_key("/auth/v1/auth/jwt/login"));
/// ```
pub fn openapi_document(prefix: &str) -> Document {
    document_for_providers(prefix, &[])
}

/// The social-login operations' paths, with `{name}` for the provider.
const OAUTH_TEMPLATE_PARAM: &str = "{name}";

/// Replaces the social-login operations (`/auth/{name}/…`,
/// `/auth/cookie/{name}/…`, `/auth/associate/{name}/…`) by one copy per
/// provider of `providers`, with its name in the path (as FastAPI Users
/// documents each provider's router) and in the operation id; none when no
/// provider is configured (their routes then answer 404 to any name).
fn expand_oauth_paths(doc: &mut Document, providers: &[String]) {
    let templates: Vec<(String, utoipa::openapi::PathItem)> = doc
        .paths
        .paths
        .keys()
        .filter(|path| path.contains(OAUTH_TEMPLATE_PARAM))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|path| doc.paths.paths.remove(&path).map(|item| (path, item)))
        .collect();
    for provider in providers {
        for (path, item) in &templates {
            let mut item = item.clone();
            for operation in responses::operations(&mut item) {
                if let Some(parameters) = operation.parameters.as_mut() {
                    parameters.retain(|p| {
                        !matches!(p, utoipa::openapi::RefOr::T(p)
                            if p.name == "name"
                                && p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
                    });
                }
                if let Some(id) = operation.operation_id.as_mut() {
                    *id = id.replacen("oauth_", &format!("oauth_{provider}_"), 1);
                }
            }
            doc.paths
                .paths
                .insert(path.replace(OAUTH_TEMPLATE_PARAM, provider), item);
        }
    }
}

/// [`openapi_document`] with the social-login operations of `providers`.
fn document_for_providers(prefix: &str, providers: &[String]) -> Document {
    let prefix = crate::normalise_prefix(prefix);
    let mut doc = ContractDoc::openapi();
    doc.merge(ContractPaths::openapi());
    InfrastructureAnswers.modify(&mut doc);
    TooManyRequestsAnswers.modify(&mut doc);
    CookieSessionAnswers.modify(&mut doc);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    expand_oauth_paths(&mut doc, providers);
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (format!("{prefix}{path}"), item))
        .collect();
    let login = format!("{prefix}/auth/jwt/login");
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [utoipa::openapi::security::Flow::Password(Password::new(
                    login,
                    Scopes::new(),
                ))],
                "An access token from the login route (the e-mail address is the username).",
            )),
        );
    name_session_cookie(&mut doc, portcullis_application::DEFAULT_COOKIE_NAME);
    doc
}

/// Declares the session cookie's security scheme ([`COOKIE_SECURITY_SCHEME`])
/// with the cookie's name.
fn name_session_cookie(doc: &mut Document, name: &str) {
    let mut key = ApiKeyValue::new(name);
    key.description = Some(
        "The session cookie of `POST /auth/cookie/login` (the browser sends it by itself; \
         a bearer header wins over it)."
            .to_owned(),
    );
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            COOKIE_SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(key)),
        );
}

/// [`openapi_document_with`] for a service: its extra user fields and its
/// session cookie's name (`COOKIE_NAME`) in the cookie security scheme.
/// What [`configure`](crate::configure) serves under the prefix.
pub fn openapi_document_for(prefix: &str, service: &UserService) -> Document {
    let mut doc = document_for_providers(prefix, &service.oauth_provider_names());
    fields::add_user_fields(&mut doc, service.user_fields());
    name_session_cookie(&mut doc, service.session_cookie().name());
    doc
}

/// Every operation with the bearer scheme accepts the cookie too.
pub(crate) fn with_cookie_alternative(security: &mut Vec<SecurityRequirement>) {
    let bearer = SecurityRequirement::new(SECURITY_SCHEME, Vec::<String>::new());
    if security.contains(&bearer) {
        security.push(SecurityRequirement::new(
            COOKIE_SECURITY_SCHEME,
            Vec::<String>::new(),
        ));
    }
}

/// The document of everything the standalone server
/// ([`configure`](crate::configure)) serves under the API: the contract at
/// `prefix` and `GET /health`.
pub fn standalone_document(prefix: &str) -> Document {
    standalone_document_with(prefix, &UserFields::none())
}

/// [`openapi_document`] with a deployment's extra user fields in the user
/// schemas (`UserRead`, `UserCreate`, `UserMeUpdate`, `UserUpdate`): pass
/// [`UserService::user_fields`](portcullis_application::UserService::user_fields).
pub fn openapi_document_with(prefix: &str, fields: &UserFields) -> Document {
    let mut doc = openapi_document(prefix);
    fields::add_user_fields(&mut doc, fields);
    doc
}

/// [`standalone_document`] with a deployment's extra user fields.
pub fn standalone_document_with(prefix: &str, fields: &UserFields) -> Document {
    let mut doc = openapi_document_with(prefix, fields);
    doc.merge(HealthDoc::openapi());
    doc
}

/// [`standalone_document`] for a service: [`openapi_document_for`] and
/// `GET /health`.
pub fn standalone_document_for(prefix: &str, service: &UserService) -> Document {
    let mut doc = openapi_document_for(prefix, service);
    doc.merge(HealthDoc::openapi());
    doc
}

/// `GET path`: the document as JSON; another method: 405.
pub fn openapi_resource(path: &str, document: Document) -> Resource {
    let body = web::Bytes::from(serde_json::to_vec(&document).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not serialise");
        b"{}".to_vec()
    }));
    web::resource(path.to_owned())
        .route(web::get().to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type(header::ContentType::json())
                    .body(body)
            }
        }))
        .default_service(method_not_allowed("GET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    fn json_doc(prefix: &str) -> Value {
        serde_json::to_value(standalone_document(prefix)).unwrap_or_default()
    }

    #[test]
    fn paths_sit_under_the_prefix_and_health_at_the_root() {
        let doc = json_doc("/v1/");
        let paths: Vec<&String> = doc["paths"]
            .as_object()
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        assert!(paths.iter().any(|p| *p == "/v1/auth/register"), "{paths:?}");
        assert!(paths.iter().any(|p| *p == "/health"), "{paths:?}");
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with("/v1/") || *p == "/health"),
            "{paths:?}"
        );
        assert_eq!(
            doc["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]["tokenUrl"],
            "/v1/auth/jwt/login"
        );
    }

    #[test]
    fn the_root_prefix_leaves_paths_as_they_are() {
        let doc = json_doc("");
        assert!(doc["paths"]["/users/me"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]["tokenUrl"],
            "/auth/jwt/login"
        );
    }
}
