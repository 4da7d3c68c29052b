//! `portcullis_http_request_duration_seconds`: every request's latency, by
//! route pattern, method and status, through the `metrics` facade (a no-op
//! until a recorder is installed).
//!
//! Labels stay bounded whatever clients send: the route is the pattern the
//! request matched (`/api/users/{id}`), never the raw path, and
//! `unmatched` for paths no route knows; a method outside the standard
//! ones is `other`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// The request histogram's name (seconds; its `_count` counts requests).
pub const REQUEST_DURATION: &str = "portcullis_http_request_duration_seconds";

/// Records each request's latency (until its response head is ready) in
/// [`REQUEST_DURATION`] with the labels `route`, `method` and `status`. Wrap
/// an `App` with it through
/// [`from_fn`](actix_web::middleware::from_fn):
///
/// ```
/// use actix_web::{App, middleware::from_fn};
/// use portcullis_http_actix::record_request_metrics;
///
/// let app = App::new().wrap(from_fn(record_request_metrics));
/// ```
pub async fn record_request_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| crate::UNMATCHED_ROUTE.to_owned());
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::histogram!(
        REQUEST_DURATION,
        "route" => route,
        "method" => method,
        "status" => status.as_str().to_owned(),
    )
    .record(started.elapsed().as_secs_f64());
    outcome
}

/// The `method` label: the standard methods by name, anything else
/// `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").expect("a token")),
            "other"
        );
    }
}
