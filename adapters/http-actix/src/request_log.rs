//! One log line per request, and a request id the response carries as
//! `X-Request-Id`: [`RequestLog`], a `tracing-actix-web` [`TracingLogger`]
//! with Portcullis' own root span ([`RequestSpan`]).

use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};

use crate::client_address::ClientAddress;

/// `X-Request-Id`: the request id, kept from the request when sane
/// ([`RequestId::is_sane`]), echoed on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming `X-Request-Id` kept.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The `route` of a request no route of the app matched (an unknown path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The id of one request: the incoming `X-Request-Id` when it is a sane
/// token, else a new UUID (v4, hyphenated). [`RequestLog`] sets it before
/// anything else runs; a handler reads it with [`RequestId::of`].
///
/// ```
/// use portcullis_http_actix::RequestId;
///
/// assert!(RequestId::is_sane("3f2a9c1e-trace.01_b"));
/// assert!(!RequestId::is_sane(""));
/// assert!(!RequestId::is_sane("has space"));
/// assert!(!RequestId::is_sane(&"x".repeat(65)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Whether `id` may be kept as a request id: 1 to
    /// [`MAX_REQUEST_ID_LEN`] characters, each an ASCII letter, digit, `.`,
    /// `_` or `-`. Nothing else can reach a log line or a response header
    /// from the client's hands (no spaces, quotes, control characters,
    /// nothing a log parser or a terminal would read as structure).
    pub fn is_sane(id: &str) -> bool {
        (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    /// The id for a request with this `X-Request-Id` (or none): the value
    /// itself when it is sane, else a new one.
    pub fn for_incoming(incoming: Option<&HeaderValue>) -> Self {
        match incoming.and_then(|v| v.to_str().ok()) {
            Some(id) if Self::is_sane(id) => Self(id.to_owned()),
            _ => Self::new(),
        }
    }

    /// A new id: a random UUID.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id [`RequestLog`] gave `req`, if it runs in front of it.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        req.extensions().get::<Self>().cloned()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The root span of a request, for `tracing-actix-web`'s [`TracingLogger`]:
/// it chooses the request id ([`RequestId`]) and opens the span
/// `request{request_id}`. Every event logged while the request is handled
/// (the use cases' auth events included) is inside it, so it carries the
/// id. [`RequestLog`] uses it and writes the request line; a host that
/// composes its own `TracingLogger<RequestSpan>` gets the span only (use
/// [`RequestLog`]).
#[derive(Debug)]
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = RequestId::for_incoming(request.headers().get(&X_REQUEST_ID));
        let span = tracing::info_span!("request", request_id = %id);
        request.extensions_mut().insert(id);
        span
    }

    fn on_request_end<B: MessageBody>(_: Span, _: &Result<ServiceResponse<B>, Error>) {
        // The request line is [`LogRequest`]'s: it has the start time.
    }
}

/// The request log middleware: one log line per request and the request
/// id ([`RequestId`]) echoed as `X-Request-Id` on every response.
///
/// The line is an `INFO` event, target `portcullis::request`, message
/// `request`, with `method`, `route` (the matched route pattern, e.g.
/// `/api/users/{id}`, or [`UNMATCHED_ROUTE`]: never the path itself, nor
/// the query string), `status`, `latency_ms` (until the response head is
/// ready), `client_address` (the one the rate limit uses:
/// [`ClientAddress`], `TRUSTED_PROXIES` aware) and `request_id`. No
/// header, body or query string is logged. It is a `tracing-actix-web`
/// [`TracingLogger`] with Portcullis' root span ([`RequestSpan`]).
///
/// The standalone server wraps its whole app in it. A host that mounts
/// Portcullis ([`mount`](crate::mount), [`configure`](crate::configure))
/// gets the same by wrapping its `App` in it, last (outermost), so that it
/// sees every request and every other middleware's answer; the client
/// address then follows the mounted service's `TRUSTED_PROXIES`, and the
/// host's own routes are logged alike. The lines go to `tracing`: the host
/// installs a subscriber (e.g. `tracing_subscriber::fmt().json()`).
///
/// An error that a middleware inside it returns instead of a response
/// (actix-web renders it afterwards) is logged with its status, but its
/// response has no `X-Request-Id`; Portcullis' own routes and middleware
/// always answer with a response.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use portcullis_http_actix::{RequestLog, mount};
///
/// # async fn run(service: portcullis_application::UserService) -> std::io::Result<()> {
/// HttpServer::new(move || {
///     App::new()
///         .configure(mount(service.clone(), "/api"))
///         // Last: the outermost middleware.
///         .wrap(RequestLog)
/// })
/// .bind(("127.0.0.1", 8000))?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLog;

impl<S, B> Transform<S, ServiceRequest> for RequestLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response =
        <TracingLogger<RequestSpan> as Transform<LogRequest<S>, ServiceRequest>>::Response;
    type Error = Error;
    type Transform =
        <TracingLogger<RequestSpan> as Transform<LogRequest<S>, ServiceRequest>>::Transform;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = LogRequest {
            service: Rc::new(service),
        };
        // TracingLogger's own future is ready at once as well.
        ready(
            TracingLogger::<RequestSpan>::new()
                .new_transform(inner)
                .into_inner(),
        )
    }
}

/// Inside [`RequestLog`]'s `TracingLogger` (so inside the request's span):
/// writes the request line and sets `X-Request-Id` on the response.
#[doc(hidden)]
pub struct LogRequest<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for LogRequest<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        // Taken now: the request is the inner service's from here on.
        let method = req.method().clone();
        let route = req.match_pattern();
        let client = ClientAddress::of(req.request());
        let id = RequestId::of(req.request());
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            let outcome = service.call(req).await;
            let status = match &outcome {
                Ok(response) => response.status(),
                Err(error) => error.as_response_error().status_code(),
            };
            // Microseconds are plenty, and keep the number short.
            let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
            tracing::info!(
                target: "portcullis::request",
                method = %method,
                route = route.as_deref().unwrap_or(UNMATCHED_ROUTE),
                status = status.as_u16(),
                latency_ms,
                client_address = %client,
                request_id = id.as_ref().map(tracing::field::display),
                "request"
            );
            let mut response = outcome?;
            if let Some(value) = id.and_then(|id| HeaderValue::from_str(id.as_str()).ok()) {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(value: &str) -> RequestId {
        RequestId::for_incoming(Some(&HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn a_sane_incoming_id_is_kept() {
        for id in [
            "a",
            "req-1.2_3",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            &"x".repeat(64),
        ] {
            assert_eq!(incoming(id).as_str(), id);
        }
    }

    #[test]
    fn an_insane_or_missing_id_is_replaced_by_a_uuid() {
        for id in [
            "",
            "has space",
            "semi;colon",
            "quote\"d",
            "{\"json\":1}",
            "tab\there",
            &"x".repeat(65),
            "ünïcode",
        ] {
            let given = HeaderValue::from_bytes(id.as_bytes()).unwrap();
            let chosen = RequestId::for_incoming(Some(&given));
            assert_ne!(chosen.as_str(), id);
            assert!(uuid::Uuid::parse_str(chosen.as_str()).is_ok(), "{chosen}");
        }
        let a = RequestId::for_incoming(None);
        let b = RequestId::for_incoming(None);
        assert_ne!(a, b);
        assert!(RequestId::is_sane(a.as_str()));
    }

    /// Everything logged while it is alive, as text.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn each_request_has_one_line_and_its_id_on_the_response() {
        use actix_web::{App, HttpResponse, test, web};

        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route("/courses/{id}", web::get().to(HttpResponse::Ok))
                // A middleware that fails instead of answering on /fail.
                .wrap_fn(|req, srv| {
                    let fail = req.path() == "/fail";
                    let answer = srv.call(req);
                    async move {
                        if fail {
                            Err(actix_web::error::ErrorConflict("refused"))
                        } else {
                            answer.await
                        }
                    }
                })
                .wrap(RequestLog),
        )
        .await;

        let res = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/courses/7?token=secret-in-query")
                .insert_header(("X-Request-Id", "abc.1"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get(&X_REQUEST_ID).unwrap(), "abc.1");

        let res =
            test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
        assert_eq!(res.status(), 404);
        let unmatched_id = res.headers().get(&X_REQUEST_ID).unwrap().to_str().unwrap();
        assert!(uuid::Uuid::parse_str(unmatched_id).is_ok());
        let unmatched_id = unmatched_id.to_owned();

        let res =
            test::try_call_service(&app, test::TestRequest::get().uri("/fail").to_request()).await;
        let Err(error) = res else {
            panic!("the inner middleware's error passes through");
        };
        assert_eq!(error.as_response_error().status_code(), 409);

        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("portcullis::request"))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (line, fields) in lines.iter().zip([
            vec![
                "INFO",
                "method=GET",
                "route=\"/courses/{id}\"",
                "status=200",
                "latency_ms=",
                "client_address=0.0.0.0",
                " request_id=abc.1",
            ],
            vec![
                "route=\"unmatched\"",
                "status=404",
                &format!(" request_id={unmatched_id}"),
            ],
            vec!["route=\"unmatched\"", "status=409", "request_id="],
        ]) {
            for field in fields {
                assert!(line.contains(field), "{field} in {line}");
            }
        }
        assert!(
            !text.contains("secret-in-query") && !text.contains("/courses/7"),
            "{text}"
        );
    }
}
