//! `GET /health`.

use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"status": "ok"}` or, with the store unreachable, `{"status":
/// "unavailable"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// Whether the store answers.
    pub status: Status,
}

/// The store's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The store answers.
    Ok,
    /// The store cannot be reached.
    Unavailable,
}

/// Health
///
/// 200 once the store answers, 503 while it does not.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    responses(
        (status = 200, description = "The store answers.", body = inline(HealthStatus),
            example = json!({"status": "ok"})),
        (status = 503, description = "The store cannot be reached.", body = inline(HealthStatus),
            example = json!({"status": "unavailable"})),
    )
)]
pub async fn health(service: Data<UserService>) -> HttpResponse {
    match service.health().await {
        Ok(()) => HttpResponse::Ok().json(HealthStatus { status: Status::Ok }),
        Err(e) => {
            let error: &(dyn std::error::Error + 'static) = &e;
            tracing::warn!(error, "health check: store unavailable");
            HttpResponse::ServiceUnavailable().json(HealthStatus {
                status: Status::Unavailable,
            })
        }
    }
}
