//! The raw body of a request: its bytes (within actix's `PayloadConfig`
//! limit and the stall timeouts) and its media type.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::rt::time::{Sleep, sleep, timeout};
use actix_web::web::{Bytes, PayloadConfig};
use actix_web::{FromRequest, HttpRequest, dev};
use futures_util::Stream;

use crate::error::ApiError;

/// No request of the contract needs more than this; the routes register it
/// as their `PayloadConfig`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `PayloadConfig` of every route that reads a body.
pub(crate) fn payload_config() -> PayloadConfig {
    PayloadConfig::new(MAX_BODY_BYTES)
}

/// The longest wait for the next piece of a request body: a body that
/// stalls this long is cut off with `408 {"detail": "Request Timeout"}` and
/// the connection closed. A slow body that keeps coming is read on (within
/// [`BODY_TOTAL_TIMEOUT`]).
pub const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a whole request body may take to arrive, however steadily
/// it trickles in (at most [`MAX_BODY_BYTES`]): past it, the same `408`.
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole body, through actix's own `Bytes` extractor (which also
/// decompresses): over the limit is a 413; no data for
/// [`BODY_STALL_TIMEOUT`], or not all of it within [`BODY_TOTAL_TIMEOUT`], is
/// a 408; another broken upload reads as an empty body (the client's
/// problem).
pub(crate) async fn read_bytes(
    req: &HttpRequest,
    payload: &mut dev::Payload,
) -> Result<Bytes, ApiError> {
    let stalling = StallGuard::new(payload.take(), BODY_STALL_TIMEOUT);
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stalling);
    let mut guarded = dev::Payload::Stream { payload: stream };
    let Ok(read) = timeout(BODY_TOTAL_TIMEOUT, Bytes::from_request(req, &mut guarded)).await else {
        return Err(ApiError::RequestTimeout);
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(e) if matches!(e.as_error::<PayloadError>(), Some(PayloadError::Overflow)) => {
            Err(ApiError::PayloadTooLarge)
        }
        Err(e) if is_stall(e.as_error::<PayloadError>()) => Err(ApiError::RequestTimeout),
        Err(e) => {
            tracing::debug!(error = %e, "unreadable request body, read as empty");
            Ok(Bytes::new())
        }
    }
}

/// Whether a payload error is [`StallGuard`]'s.
fn is_stall(e: Option<&PayloadError>) -> bool {
    matches!(e, Some(PayloadError::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// A body stream that fails with a `TimedOut` I/O error when no chunk
/// arrives for `wait` (the clock restarts at each chunk).
struct StallGuard {
    inner: dev::Payload,
    wait: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl StallGuard {
    fn new(inner: dev::Payload, wait: Duration) -> Self {
        Self {
            inner,
            wait,
            deadline: Box::pin(sleep(wait)),
        }
    }
}

impl Stream for StallGuard {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                let next = actix_web::rt::time::Instant::now() + this.wait;
                this.deadline.as_mut().reset(next);
                Poll::Ready(item)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body stalled",
                ))))),
                Poll::Pending => Poll::Pending,
            },
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
