//! The actix-web adapter of Portcullis: every route of the FastAPI Users
//! HTTP contract, the extractors that guard routes, and the mapping of
//! use-case errors to the contract's status codes and JSON bodies. This is
//! the only crate that knows status codes.
//!
//! It depends on the domain and the application, never on a store, hasher,
//! token or mail adapter: those arrive as ports inside the
//! [`UserService`].
//!
//! A host application mounts the routes next to its own and guards its own
//! handlers with the same extractors; it may serve the OpenAPI document of
//! the routes it mounted, and Swagger UI, too:
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use portcullis_http_actix::{
//!     CurrentUser, InstructorUser, mount, openapi_document_with, openapi_resource, swagger_ui,
//! };
//!
//! async fn courses(CurrentUser(user): CurrentUser) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("courses for {}", user.email))
//! }
//!
//! async fn create_course(InstructorUser { user, .. }: InstructorUser) -> HttpResponse {
//!     HttpResponse::Created().finish()
//! }
//!
//! # async fn run(service: portcullis_application::UserService) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(mount(service.clone(), "/api"))
//!         .service(openapi_resource(
//!             "/openapi.json",
//!             openapi_document_with("/api", service.user_fields()),
//!         ))
//!         .service(swagger_ui("/docs", "/openapi.json"))
//!         .route("/courses", web::get().to(courses))
//!         .route("/courses", web::post().to(create_course))
//! })
//! .bind(("127.0.0.1", 8000))?
//! .run()
//! .await
//! # }
//! ```
#![warn(missing_docs)]

mod client_address;
mod client_watch;
mod error;
mod error_code;
mod extractors;
mod handlers;
mod hardening;
mod openapi;
mod pydantic;
mod rate_limit;
mod request;
mod request_log;
mod request_metrics;
mod session_cookie;
mod user_body;

use actix_web::middleware::Condition;
use actix_web::web::{self, ServiceConfig};
pub use client_address::{ClientAddress, NO_PEER_ADDRESS, client_address};
pub use client_watch::on_connect;
pub use error::{ApiError, Cause, Limit};
pub use error_code::ErrorCode;
pub use extractors::{
    Admin, AdminUser, AuthenticatedSession, CurrentUser, Instructor, InstructorUser, RequireRole,
    RoleRequirement, Student, StudentUser, Superuser, Transport, VerifiedUser, authenticate,
    bearer_token, cookie_value, credentials,
};
use handlers::fallback::{method_not_allowed, not_found};
use handlers::health;
pub use handlers::routes;
use hardening::Hardening;
pub use hardening::SecurityHeaders;
pub use openapi::{
    DOCS_PATH, OPENAPI_PATH, openapi_document, openapi_document_for, openapi_document_with,
    openapi_resource, standalone_document, standalone_document_for, standalone_document_with,
    swagger_ui,
};
pub use portcullis_application::{
    AllowedOrigins, AuthRateLimit, InvalidTrustedProxy, SessionCookie, TooManyRequests,
    TrustedProxies, UserService,
};
pub use pydantic::ValidationError;
pub use request::{BODY_STALL_TIMEOUT, BODY_TOTAL_TIMEOUT, MAX_BODY_BYTES};
pub use request_log::{
    MAX_REQUEST_ID_LEN, RequestId, RequestLog, RequestSpan, UNMATCHED_ROUTE, X_REQUEST_ID,
};
pub use request_metrics::{REQUEST_DURATION, record_request_metrics};
pub use user_body::UserBody;

/// Mounts Portcullis in a host's `App` (via `App::configure`): the service as
/// app data, so the guard extractors work in every handler of the app, and
/// every route of the contract under `prefix` (`"/api"`, `"/auth/v1"`, or
/// `""` for the root). The host's other routes, default service and
/// middleware stay its own.
///
/// The service's per-client-address limit on `POST`s under `/auth/`
/// ([`UserService::auth_rate_limit`], 30 a minute unless the builder says
/// otherwise) comes with the routes; the client address is the peer's, or
/// what the service's [`TrustedProxies`] report (see [`client_address`]).
///
/// The request log is the app's, not the routes': wrap the `App` in
/// [`RequestLog`] (last, so it is outermost) for the standalone server's
/// line per request and `X-Request-Id`, for the host's routes too.
/// So do CORS for the service's [`cors_origins`](UserService::cors_origins)
/// (`CORS_ORIGINS`, credentials allowed; none: no CORS) and the
/// [`SecurityHeaders`] on every answer of the routes (and, under a prefix,
/// on the prefix's 404s).
pub fn mount(service: UserService, prefix: &str) -> impl FnOnce(&mut ServiceConfig) + Clone {
    let prefix = normalise_prefix(prefix);
    move |cfg: &mut ServiceConfig| {
        let cors_origins = service.cors_origins().clone();
        let hardening = Hardening {
            cors_origins: &cors_origins,
            prefix: &prefix,
        };
        cfg.app_data(web::Data::new(service));
        if prefix.is_empty() {
            // At the root a scope would swallow the host's own routes: each
            // route is wrapped by itself.
            handlers::resources(cfg, Some(&hardening));
        } else {
            cfg.service(
                web::scope(&prefix)
                    .configure(routes)
                    .default_service(web::to(not_found))
                    .wrap(Condition::new(hardening.cors_on(), hardening.cors()))
                    .wrap(hardening.headers()),
            );
        }
    }
}

/// Everything the standalone Portcullis server serves: [`mount`] at
/// `prefix`, `GET /health`, the OpenAPI document at `GET /openapi.json`,
/// Swagger UI at `GET /docs`, and `404 {"detail": "Not Found"}` for unknown
/// paths. Like [`mount`], it leaves the request log to the `App`
/// ([`RequestLog`]); the standalone server wraps its `App` in it.
pub fn configure(service: UserService, prefix: &str) -> impl FnOnce(&mut ServiceConfig) + Clone {
    let document = standalone_document_for(prefix, &service);
    let mount = mount(service, prefix);
    move |cfg: &mut ServiceConfig| {
        cfg.service(health_resource())
            .service(openapi_resource(OPENAPI_PATH, document))
            .service(swagger_ui(DOCS_PATH, OPENAPI_PATH));
        mount(cfg);
        cfg.default_service(web::to(not_found));
    }
}

/// `GET /health`: `200 {"status": "ok"}` while the store answers, 503
/// otherwise. A host may mount it wherever it likes.
pub fn health_resource() -> actix_web::Resource {
    web::resource("/health")
        .route(web::get().to(health::health))
        .default_service(method_not_allowed("GET"))
}

/// `""` or `"/"` mounts at the root; otherwise one leading slash and no
/// trailing one.
fn normalise_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix("/api"), "/api");
        assert_eq!(normalise_prefix("api/"), "/api");
        assert_eq!(normalise_prefix("/"), "");
        assert_eq!(normalise_prefix(""), "");
        assert_eq!(normalise_prefix("/v1/auth/"), "/v1/auth");
    }
}
