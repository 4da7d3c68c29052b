//! Helpers shared by this crate's unit tests.

/// Polls `future` once, on this thread, then drops it: `Some` when it was
/// ready without waiting for anything.
pub(crate) fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
