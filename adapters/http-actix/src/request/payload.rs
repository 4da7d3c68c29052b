//! The raw body of a request: its bytes (within actix's `PayloadConfig`
//! limit) and its media type.

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, PayloadConfig};
use actix_web::{FromRequest, HttpRequest, dev};

use crate::error::ApiError;

/// No request of the contract needs more than this; the routes register it
/// as their `PayloadConfig`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `PayloadConfig` of every route that reads a body.
pub(crate) fn payload_config() -> PayloadConfig {
    PayloadConfig::new(MAX_BODY_BYTES)
}

/// The whole body, through actix's own `Bytes` extractor: over the limit is
/// a 413; a broken upload reads as an empty body (the client's problem).
pub(crate) async fn read_bytes(
    req: &HttpRequest,
    payload: &mut dev::Payload,
) -> Result<Bytes, ApiError> {
    match Bytes::from_request(req, payload).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if matches!(e.as_error::<PayloadError>(), Some(PayloadError::Overflow)) => {
            Err(ApiError::PayloadTooLarge)
        }
        Err(e) => {
            tracing::debug!(error = %e, "unreadable request body, read as empty");
            Ok(Bytes::new())
        }
    }
}

/// The media type of the `Content-Type` header, lowercased, without
/// parameters.
pub(crate) fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// `application/json` or any `application/…+json`.
pub(crate) fn is_json(media: &str) -> bool {
    media
        .split_once('/')
        .is_some_and(|(top, sub)| top == "application" && (sub == "json" || sub.ends_with("+json")))
}
