use actix_web::HttpResponse;
use actix_web::web::Data;
use portcullis_application::UserService;
use serde_json::json;

/// `GET /health`: 200 once the store answers, 503 while it does not.
pub async fn health(service: Data<UserService>) -> HttpResponse {
    match service.ports().users.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
