//! The OpenAPI 3.1 document of the contract and the Swagger UI that shows
//! it.
//!
//! The operations come from the `#[utoipa::path]` annotations on the
//! handlers; the request and response schemas from the types below. The
//! handlers read bodies by hand (to answer 422s as pydantic does), so the
//! request types here only describe the bodies: nothing deserialises into
//! them. The paths of the annotations are relative to the API prefix;
//! [`openapi_document`] puts them under the prefix a server is configured
//! with, at run time.

use actix_web::http::header;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse, Resource, ResponseError};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{OAuth2, Password, Scopes, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::handlers::fallback::method_not_allowed;
use crate::handlers::{auth, health, users};
use crate::user_body::UserBody;
use crate::validation::ValidationError;

/// The name of the security scheme of the protected operations.
pub(crate) const SECURITY_SCHEME: &str = "OAuth2PasswordBearer";

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
    paths(
        auth::register,
        auth::login,
        auth::logout,
        auth::forgot_password,
        auth::reset_password,
        auth::request_verify_token,
        auth::verify,
        users::get_me,
        users::patch_me,
        users::get_user,
        users::patch_user,
        users::delete_user,
        users::delete_me_path,
    ),
    components(schemas(
        UserRead,
        Role,
        ErrorModel,
        ErrorCodeReasonModel,
        HTTPValidationError,
        ValidationError,
    )),
    tags(
        (name = "Auth", description = "Registration, login, password reset, e-mail verification."),
        (name = "Users", description = "The current user, and administration by superusers."),
    ),
    modifiers(&InfrastructureAnswers)
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
    let prefix = crate::normalise_prefix(prefix);
    let mut doc = ContractDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
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
    doc
}

/// The document of everything the standalone server
/// ([`configure`](crate::configure)) serves under the API: the contract at
/// `prefix` and `GET /health`.
pub fn standalone_document(prefix: &str) -> Document {
    let mut doc = openapi_document(prefix);
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

/// Swagger UI at `path` (its assets are built into the binary), showing the
/// document served at `openapi_url`: `GET path` redirects to `path/`, which
/// serves the page; unknown files are `404 {"detail": "Not Found"}`.
pub fn swagger_ui(path: &str, openapi_url: &str) -> actix_web::Scope {
    let path = crate::normalise_prefix(path);
    let config = Data::new(utoipa_swagger_ui::Config::new([openapi_url.to_owned()]));
    let index = format!("{path}/");
    web::scope(&path)
        .app_data(config)
        .service(
            web::resource("")
                .route(web::get().to(move || {
                    let index = index.clone();
                    async move {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, index))
                            .finish()
                    }
                }))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/{file:.*}")
                .route(web::get().to(swagger_file))
                .default_service(method_not_allowed("GET")),
        )
        .default_service(web::to(crate::handlers::fallback::not_found))
}

async fn swagger_file(
    req: HttpRequest,
    config: Data<utoipa_swagger_ui::Config<'static>>,
) -> HttpResponse {
    let file = req.match_info().get("file").unwrap_or_default();
    match utoipa_swagger_ui::serve(file, config.into_inner()) {
        Ok(Some(file)) => {
            let mut response = HttpResponse::Ok();
            if file.gzpipped {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            response
                .content_type(file.content_type)
                .body(file.bytes.into_owned())
        }
        Ok(None) => ApiError::NotFound.error_response(),
        Err(e) => ApiError::Internal(format!("Swagger UI: {e}")).error_response(),
    }
}

// ----- schemas of bodies -----

/// Body of `POST /auth/register`. Other fields (`is_active`,
/// `is_superuser`, `is_verified`, `role`) are ignored: nobody promotes
/// themselves.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct UserCreate {
    #[schema(schema_with = email)]
    email: String,
    /// At least 8 characters, not containing the e-mail address.
    #[schema(min_length = 8, examples("correct horse battery"))]
    password: String,
}

/// Body of `PATCH /users/me`: only the password can be changed here
/// (`null` or absent: unchanged). Other fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct UserMeUpdate {
    /// At least 8 characters, not containing the e-mail address.
    #[schema(min_length = 8)]
    password: Option<String>,
}

/// Body of `PATCH /users/{id}`: each field given (and not `null`) is
/// changed, the others left as they are.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct UserUpdate {
    /// At least 8 characters, not containing the e-mail address.
    #[schema(min_length = 8)]
    password: Option<String>,
    /// A new address resets `is_verified` unless the same body sets it.
    #[schema(schema_with = optional_email)]
    email: Option<String>,
    #[schema(schema_with = lax_bool)]
    is_active: Option<bool>,
    #[schema(schema_with = lax_bool)]
    is_superuser: Option<bool>,
    #[schema(schema_with = lax_bool)]
    is_verified: Option<bool>,
    role: Option<Role>,
}

/// A role, lowest first; a guard for a role admits that role and those
/// above it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum Role {
    Student,
    Instructor,
    Admin,
}

/// The special-use and reserved domains no public address lives under
/// (the domain's `EmailAddress` refuses them; RFC 6761, 6762, 7686).
const SPECIAL_USE_DOMAINS: [&str; 6] = ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// `word` as a regular expression matching it in any (ASCII) case: JSON
/// Schema's regular expressions have no case-insensitive flag.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn email_object() -> ObjectBuilder {
    let special = SPECIAL_USE_DOMAINS
        .iter()
        .map(|d| any_case(d))
        .collect::<Vec<_>>()
        .join("|");
    ObjectBuilder::new()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(254))
        // Deliverable on the public internet: no special-use domain.
        .pattern(Some(format!(r"^(?![\s\S]*\.(?:{special})\s*$)")))
        .description(Some(
            "An address deliverable on the public internet: not under a \
             special-use domain (`.test`, `.localhost`, `.local`, `.invalid`, \
             `.onion`, `.arpa`) nor a single-label one. Matched \
             case-insensitively; stored with the domain lowercased.",
        ))
        .examples(["ann@example.com"])
}

/// A required e-mail address.
fn email() -> Schema {
    email_object().schema_type(Type::String).into()
}

/// An e-mail address or `null`.
fn optional_email() -> Schema {
    email_object()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .into()
}

/// A flag as pydantic's lax mode reads one: a boolean, `0`/`1`, or one of
/// the words below in any case; `null` leaves the flag as it is.
fn lax_bool() -> Schema {
    let words = [
        "0", "1", "t", "f", "y", "n", "true", "false", "yes", "no", "on", "off",
    ];
    let pattern = words
        .iter()
        .map(|word| any_case(word))
        .collect::<Vec<_>>()
        .join("|");
    Schema::AnyOf(
        AnyOfBuilder::new()
            .description(Some(
                "A boolean; as in pydantic's lax mode also `0`/`1` and `t`/`f`, \
                 `y`/`n`, `true`/`false`, `yes`/`no`, `on`/`off` in any case. \
                 `null` leaves the flag as it is.",
            ))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .enum_values(Some([0, 1])),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!("^(?:{pattern})$"))),
            )
            .build(),
    )
}

/// Body of `POST /auth/forgot-password`.
#[derive(ToSchema)]
#[schema(as = BodyResetForgotPasswordAuthForgotPasswordPost)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct ForgotPasswordBody {
    #[schema(schema_with = email)]
    email: String,
}

/// Body of `POST /auth/reset-password`.
#[derive(ToSchema)]
#[schema(as = BodyResetResetPasswordAuthResetPasswordPost)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct ResetPasswordBody {
    /// The token of the reset link mailed by `forgot-password`.
    token: String,
    /// At least 8 characters, not containing the e-mail address.
    #[schema(min_length = 8)]
    password: String,
}

/// Body of `POST /auth/request-verify-token`.
#[derive(ToSchema)]
#[schema(as = BodyVerifyRequestTokenAuthRequestVerifyTokenPost)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct RequestVerifyBody {
    #[schema(schema_with = email)]
    email: String,
}

/// Body of `POST /auth/verify`.
#[derive(ToSchema)]
#[schema(as = BodyVerifyVerifyAuthVerifyPost)]
#[allow(dead_code)] // documentation only: the handler reads the body by hand
pub(crate) struct VerifyBody {
    /// The token of the verification link mailed by `request-verify-token`.
    token: String,
}

/// The form of `POST /auth/jwt/login` (OAuth2's password flow). An empty
/// value counts as absent.
#[derive(ToSchema)]
#[schema(as = BodyAuthJwtLoginAuthJwtLoginPost)]
#[allow(dead_code)] // documentation only: the handler reads the form by hand
pub(crate) struct LoginForm {
    /// `password` when given.
    #[schema(pattern = "^password$", required = false)]
    grant_type: String,
    /// The e-mail address.
    #[schema(min_length = 1)]
    username: String,
    #[schema(format = Password, min_length = 1)]
    password: String,
    /// Ignored.
    #[schema(required = false)]
    scope: String,
    /// Ignored.
    #[schema(required = false)]
    client_id: String,
    /// Ignored.
    #[schema(format = Password, required = false)]
    client_secret: String,
}

/// The answer of a successful login.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler builds the JSON
pub(crate) struct BearerResponse {
    /// A JWT; send it as `Authorization: Bearer <token>`.
    access_token: String,
    #[schema(examples("bearer"))]
    token_type: String,
}

/// A user as every route renders it.
pub(crate) type UserRead = UserBody;

/// A business error: `{"detail": "CODE"}`, or `{"detail": {"code": "CODE",
/// "reason": "..."}}` for password-policy failures.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: `ApiError` renders it
pub(crate) struct ErrorModel {
    #[schema(schema_with = error_detail)]
    detail: String,
}

fn error_detail() -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(Ref::from_schema_name("ErrorCodeReasonModel"))
            .build(),
    )
}

/// The detail of a password-policy failure.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: `ApiError` renders it
pub(crate) struct ErrorCodeReasonModel {
    code: String,
    #[schema(examples("Password should be at least 8 characters"))]
    reason: String,
}

/// Malformed input: one entry per problem.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)] // documentation only: `ApiError` renders it
pub(crate) struct HTTPValidationError {
    detail: Vec<ValidationError>,
}

/// Where a problem is: `"body"`, then a field name or a character offset.
pub(crate) fn validation_loc() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .items(RefOr::T(Schema::AnyOf(
                AnyOfBuilder::new()
                    .item(ObjectBuilder::new().schema_type(Type::String))
                    .item(ObjectBuilder::new().schema_type(Type::Integer))
                    .build(),
            )))
            .build(),
    )
}

/// The JSON `null`.
pub(crate) struct JsonNull;

impl PartialSchema for JsonNull {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for JsonNull {}

/// The bodies of the answers with a fixed `detail`.
fn fixed_detail(details: &[&str]) -> Schema {
    ObjectBuilder::new()
        .property(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(details.iter().copied())),
        )
        .required("detail")
        .into()
}

/// `401`, with its `WWW-Authenticate: Bearer` header.
pub(crate) struct Unauthorized;

impl PartialSchema for Unauthorized {
    fn schema() -> RefOr<Schema> {
        fixed_detail(&["Unauthorized"]).into()
    }
}

impl ToSchema for Unauthorized {}

/// `403`.
pub(crate) struct Forbidden;

impl PartialSchema for Forbidden {
    fn schema() -> RefOr<Schema> {
        fixed_detail(&["Forbidden"]).into()
    }
}

impl ToSchema for Forbidden {}

/// `403` of `DELETE /users/{id}`: also for deleting oneself.
pub(crate) struct DeleteForbidden;

impl PartialSchema for DeleteForbidden {
    fn schema() -> RefOr<Schema> {
        fixed_detail(&["Forbidden", "Admins cannot delete their own account"]).into()
    }
}

impl ToSchema for DeleteForbidden {}

/// `404`.
pub(crate) struct NotFound;

impl PartialSchema for NotFound {
    fn schema() -> RefOr<Schema> {
        fixed_detail(&["Not Found"]).into()
    }
}

impl ToSchema for NotFound {}

/// `{"status": "ok"}` or, with the store unreachable, `{"status":
/// "unavailable"}`.
pub(crate) struct HealthStatus;

impl PartialSchema for HealthStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["ok", "unavailable"])),
            )
            .required("status")
            .into()
    }
}

impl ToSchema for HealthStatus {}

/// Answers any operation of the contract may give whatever the route: `503`
/// while the store is unreachable, and `413` for a body larger than any
/// request needs (on the operations that read a body).
struct InfrastructureAnswers;

impl Modify for InfrastructureAnswers {
    fn modify(&self, doc: &mut Document) {
        let json = |schema: Schema| ContentBuilder::new().schema(Some(schema)).build();
        let too_large = ResponseBuilder::new()
            .description(format!(
                "The body is larger than any request needs ({} KiB).",
                crate::MAX_BODY_BYTES / 1024
            ))
            .content(
                "application/json",
                json(fixed_detail(&["Request Entity Too Large"])),
            )
            .build();
        let unavailable = ResponseBuilder::new()
            .description("The store cannot be reached; try again later.")
            .content(
                "application/json",
                json(fixed_detail(&["Service Unavailable"])),
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    ))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                if operation.request_body.is_some() {
                    operation
                        .responses
                        .responses
                        .insert("413".into(), too_large.clone().into());
                }
                operation
                    .responses
                    .responses
                    .insert("503".into(), unavailable.clone().into());
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
        item.put.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The `422` entry's `input` and `ctx` are free-form JSON.
pub(crate) fn any_json() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .into()
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
    fn the_special_use_domains_are_those_the_domain_refuses() {
        use portcullis_domain::EmailAddress;
        for domain in SPECIAL_USE_DOMAINS {
            assert!(EmailAddress::parse(&format!("ann@site.{domain}")).is_err());
            assert!(EmailAddress::parse(&format!("ann@site.{}", domain.to_uppercase())).is_err());
            assert!(EmailAddress::parse(&format!("ann@{domain}.example.com")).is_ok());
        }
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
