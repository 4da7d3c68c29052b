//! The per-client-address limit on `POST`s under `/auth/`
//! (`RATE_LIMIT_AUTH_PER_MINUTE`), as a middleware on each `/auth/`
//! resource of the route table: it answers `429 {"detail":
//! "TOO_MANY_REQUESTS"}` with `Retry-After` before the body is read, so a
//! refused request costs neither parsing nor hashing. Each refusal counts in
//! `portcullis_requests_shed_total{reason="rate_limited"}`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use portcullis_application::UserService;

use crate::client_address::client_address;
use crate::error::{ApiError, Limit};

/// Whether the resource at `path` (relative to the prefix) is limited:
/// every route under `/auth/`.
pub(crate) fn is_limited(path: &str) -> bool {
    path.starts_with("/auth/")
}

/// Admits a `POST` through the mounted service's
/// [`admit_auth_request`](UserService::admit_auth_request) for the client
/// address, or answers `429`. Other methods pass untouched.
pub(crate) async fn limit_auth_posts(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() == Method::POST
        && let Some(service) = req.app_data::<web::Data<UserService>>()
        && let Err(refused) =
            service.admit_auth_request(client_address(req.request(), service.trusted_proxies()))
    {
        metrics::counter!("portcullis_requests_shed_total", "reason" => "rate_limited")
            .increment(1);
        let error = ApiError::TooMany(Limit::TooManyRequests, refused.retry_after);
        return Ok(req.error_response(error).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
