use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError, Route, web};

use crate::error::ApiError;

/// Any path no route matches: `404 {"detail": "Not Found"}`.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound.error_response()
}

/// A known path with another method: `405 {"detail": "Method Not Allowed"}`
/// with the `Allow` header listing what the path takes.
pub fn method_not_allowed(allow: impl Into<String>) -> Route {
    let allow: String = allow.into();
    web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::MethodNotAllowed.error_response();
            if let Ok(value) = header::HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
    })
}
