//! What every answer of the API carries besides its contract: CORS for the
//! origins of `CORS_ORIGINS` ([`cors`]), and the security headers
//! ([`SecurityHeaders`]): `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, and `Cache-Control: no-store` on every
//! `/auth/` and `/users/` answer (which includes every answer that carries a
//! token or sets the session cookie).

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;
use portcullis_application::AllowedOrigins;

/// The request headers a browser page may send to the API: the bearer
/// token, the body's media type, and a request id.
const ALLOWED_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("x-request-id"),
];

/// The response headers a browser page may read besides the safe ones.
const EXPOSED_HEADERS: [HeaderName; 2] =
    [HeaderName::from_static("x-request-id"), header::RETRY_AFTER];

/// CORS for `origins` (`CORS_ORIGINS`), credentials allowed: a preflight
/// (`OPTIONS` with `Access-Control-Request-Method`) from one of them is
/// answered `200` with `Access-Control-Allow-Origin` (that origin),
/// `Access-Control-Allow-Credentials: true`, the API's methods and request
/// headers; their actual requests' answers carry the origin, the
/// credentials grant and the exposed headers (`X-Request-Id`,
/// `Retry-After`), with `Vary: Origin`. Any other origin is granted
/// nothing: its preflight is a `400`, its actual requests are answered
/// as usual but without a grant (so a browser keeps the answer from the
/// page).
pub(crate) fn cors(origins: &AllowedOrigins) -> Cors {
    let origins = origins.clone();
    Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| origins.allows(o)))
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .supports_credentials()
        .block_on_origin_mismatch(false)
}

/// What [`mount`](crate::mount) wraps the API in: CORS when `CORS_ORIGINS`
/// names origins, then the security headers (outermost, so a preflight's
/// answer carries them too).
pub(crate) struct Hardening<'a> {
    /// The origins CORS grants (none: no CORS).
    pub(crate) cors_origins: &'a AllowedOrigins,
    /// The prefix the API is mounted at.
    pub(crate) prefix: &'a str,
}

impl Hardening<'_> {
    /// Whether there is CORS at all.
    pub(crate) fn cors_on(&self) -> bool {
        !self.cors_origins.is_empty()
    }

    /// The CORS middleware (only used when [`cors_on`](Self::cors_on)).
    pub(crate) fn cors(&self) -> Cors {
        cors(self.cors_origins)
    }

    /// The security headers' middleware.
    pub(crate) fn headers(&self) -> SecurityHeaders {
        SecurityHeaders::for_prefix(self.prefix)
    }
}

/// Middleware that sets the security headers on every answer of the
/// service it wraps, errors included: `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer`, and `Cache-Control: no-store` on every
/// answer under `<prefix>/auth/` and `<prefix>/users/` (tokens, the session
/// cookie, users: nothing a cache may keep). An answer that grants no
/// origin (no `Access-Control-Allow-Origin`) loses any other CORS grant.
///
/// [`mount`](crate::mount) wraps the routes with it; a host that serves
/// more (the standalone server: `/health`, the OpenAPI document, Swagger
/// UI, its 404s) may wrap its whole app too:
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use portcullis_http_actix::{SecurityHeaders, configure};
///
/// # async fn run(service: portcullis_application::UserService) -> std::io::Result<()> {
/// HttpServer::new(move || {
///     App::new()
///         .wrap(SecurityHeaders::for_prefix("/api"))
///         .configure(configure(service.clone(), "/api"))
/// })
/// .bind(("127.0.0.1", 8000))?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    no_store: Rc<[String; 2]>,
}

impl SecurityHeaders {
    /// The headers for an API mounted at `prefix` (`"/api"`, or `""` for the
    /// root).
    pub fn for_prefix(prefix: &str) -> Self {
        let prefix = crate::normalise_prefix(prefix);
        Self {
            no_store: Rc::new([format!("{prefix}/auth/"), format!("{prefix}/users/")]),
        }
    }

    /// Sets the headers on an answer to a request for `path`.
    fn apply(&self, path: &str, headers: &mut HeaderMap) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if self.no_store.iter().any(|p| path.starts_with(p.as_str())) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        // actix-cors grants credentials and exposes headers on the answers
        // to any origin; without `Access-Control-Allow-Origin` they grant
        // nothing, so an unlisted origin's answer carries none of them.
        if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
            headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SecurityHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SecurityHeadersMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersMiddleware {
            service,
            headers: self.clone(),
        }))
    }
}

/// The service [`SecurityHeaders`] wraps another in.
#[doc(hidden)]
pub struct SecurityHeadersMiddleware<S> {
    service: S,
    headers: SecurityHeaders,
}

impl<S, B> Service<ServiceRequest> for SecurityHeadersMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let path = req.path().to_owned();
        let headers = self.headers.clone();
        let answer = self.service.call(req);
        Box::pin(async move {
            match answer.await {
                Ok(mut response) => {
                    headers.apply(&path, response.headers_mut());
                    Ok(response)
                }
                Err(mut error) => {
                    // The answer an inner middleware's error becomes
                    // carries the headers too.
                    error.add_response_mapper(move |mut response| {
                        headers.apply(&path, response.headers_mut());
                        response
                    });
                    Err(error)
                }
            }
        })
    }
}
