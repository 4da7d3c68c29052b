//! One file per route (or pair of routes sharing a use case): its request
//! type, its handler with the `#[utoipa::path]` that documents it, and the
//! mapping of its use case's error enum to the contract's answers.

pub mod cookie;
pub mod fallback;
pub mod health;
pub mod login;
pub mod logout;
pub mod oauth;
pub mod register;
pub mod reset_password;
pub mod sessions;
pub mod users_admin;
pub mod users_me;
pub mod verify;

use actix_web::HttpResponse;
use actix_web::middleware::{Condition, from_fn};
use actix_web::web::{self, ServiceConfig};
use serde_json::Value;

use actix_cors::Cors;

use crate::hardening::{Hardening, SecurityHeaders};
use crate::rate_limit;
use crate::request::payload_config;
use fallback::method_not_allowed;

/// The contract's routes, each path listed once with its methods and
/// handlers: it generates both what actix serves ([`routes`]) and the
/// operations of the OpenAPI document ([`ContractPaths`]), so neither can
/// leave a route out. (Each handler's `#[utoipa::path]` names its path
/// again; `tests/tests/openapi.rs` checks the two agree.)
macro_rules! contract_routes {
    ($( $path:literal => { $( $method:ident : $module:ident :: $handler:ident ),+ $(,)? } ),+ $(,)?) => {
        /// The routes of the contract, relative to the prefix they are
        /// mounted at; another method is a 405 with an `Allow` header. The
        /// [`UserService`](portcullis_application::UserService) must be
        /// registered as `web::Data` on the app. Every `POST` under
        /// `/auth/` first passes the service's per-client-address limit
        /// ([`UserService::admit_auth_request`](portcullis_application::UserService::admit_auth_request)),
        /// before its body is read.
        ///
        /// These routes alone carry neither CORS nor the security headers:
        /// [`mount`](crate::mount) adds them.
        pub fn routes(cfg: &mut ServiceConfig) {
            resources(cfg, None);
        }

        /// [`routes`], each wrapped in `hardening` when given (CORS and the
        /// security headers; `mount` at the root, where no scope can hold
        /// them).
        pub(crate) fn resources(cfg: &mut ServiceConfig, hardening: Option<&Hardening<'_>>) {
            let cors_on = hardening.is_some_and(Hardening::cors_on);
            $(
                cfg.service(
                    web::resource($path)
                        .wrap(Condition::new(
                            rate_limit::is_limited($path),
                            from_fn(rate_limit::limit_auth_posts),
                        ))
                        // The body size limit, for the routes that read one.
                        .app_data(payload_config())
                        $( .route(web::$method().to($module::$handler)) )+
                        .default_service(method_not_allowed(
                            [$(stringify!($method)),+].join(", ").to_uppercase(),
                        ))
                        .wrap(Condition::new(
                            cors_on,
                            hardening.map_or_else(Cors::default, Hardening::cors),
                        ))
                        .wrap(Condition::new(
                            hardening.is_some(),
                            hardening.map_or_else(|| SecurityHeaders::for_prefix(""), Hardening::headers),
                        )),
                );
            )+
        }

        /// The operations of [`routes`], for the OpenAPI document.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($($module::$handler),+),+))]
        pub(crate) struct ContractPaths;
    };
}

contract_routes! {
    "/auth/register" => { post: register::register },
    "/auth/jwt/login" => { post: login::login },
    "/auth/jwt/logout" => { post: logout::logout },
    "/auth/cookie/login" => { post: cookie::cookie_login },
    "/auth/cookie/logout" => { post: cookie::cookie_logout },
    // Social login (OAUTH_PROVIDERS); an unknown provider is a 404.
    "/auth/associate/{name}/authorize" => { get: oauth::associate_authorize },
    "/auth/associate/{name}/callback" => { get: oauth::associate_callback },
    "/auth/cookie/{name}/authorize" => { get: oauth::cookie_authorize },
    "/auth/cookie/{name}/callback" => { get: oauth::cookie_callback },
    "/auth/{name}/authorize" => { get: oauth::authorize },
    "/auth/{name}/callback" => { get: oauth::callback },
    "/auth/forgot-password" => { post: reset_password::forgot_password },
    "/auth/reset-password" => { post: reset_password::reset_password },
    "/auth/request-verify-token" => { post: verify::request_verify_token },
    "/auth/verify" => { post: verify::verify },
    "/users/me/sessions" => { delete: sessions::end_all_sessions },
    // Before `/users/{id}`, which would take `me` for an id.
    "/users/me" => {
        get: users_me::get_me,
        patch: users_me::patch_me,
        delete: users_admin::delete_me_path,
    },
    "/users/{id}" => {
        get: users_admin::get_user,
        patch: users_admin::patch_user,
        delete: users_admin::delete_user,
    },
}

/// `202 null`: what forgot-password and request-verify-token always answer.
fn accepted_null() -> HttpResponse {
    HttpResponse::Accepted().json(Value::Null)
}
