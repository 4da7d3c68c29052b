use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;
use serde_json::json;

/// Health
///
/// 200 once the store answers, 503 while it does not.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    responses(
        (status = 200, description = "The store answers.", body = inline(crate::openapi::HealthStatus),
            example = json!({"status": "ok"})),
        (status = 503, description = "The store cannot be reached.", body = inline(crate::openapi::HealthStatus),
            example = json!({"status": "unavailable"})),
    )
)]
pub async fn health(service: Data<UserService>) -> HttpResponse {
    match service.health().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => {
            let error: &(dyn std::error::Error + 'static) = &e;
            tracing::warn!(error, "health check: store unavailable");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
