use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::{Mail, MailError, Mailer};

/// Hands each mail to another mailer in a task of its own, waits for it at
/// most a bounded time, and returns `Ok(())`; a failure is logged (WARN) by
/// the task.
///
/// Wrap the [`SmtpMailer`](crate::SmtpMailer) in it so that a slow or dead
/// SMTP server can neither hold a request for long nor make
/// `POST /forgot-password` measurably slower for a known address than for an
/// unknown one beyond the bound. A healthy server is normally done within the
/// bound, so the mail has been handed over when the answer leaves — as with
/// FastAPI Users, which sends before answering. The price: send errors never
/// reach the caller.
#[derive(Clone)]
pub struct BackgroundMailer {
    inner: Arc<dyn Mailer>,
    wait: Duration,
}

impl BackgroundMailer {
    /// How long [`BackgroundMailer::new`] waits for a delivery by default.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

    /// Delivers through `inner`, waiting up to [`Self::DEFAULT_WAIT`].
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self {
            inner,
            wait: Self::DEFAULT_WAIT,
        }
    }

    /// The same mailer, waiting up to `wait` (zero: not at all).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl fmt::Debug for BackgroundMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundMailer")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for BackgroundMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let inner = Arc::clone(&self.inner);
        let delivery = async move {
            let subject = mail.subject.clone();
            if let Err(error) = inner.send(mail).await {
                tracing::warn!(%subject, %error, "mail delivery failed");
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it in the background: deliver in place.
            delivery.await;
            return Ok(());
        };
        let task = runtime.spawn(delivery);
        // Past the bound the task goes on by itself; dropping its handle
        // does not cancel it.
        let _ = tokio::time::timeout(self.wait, task).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use portcullis_domain::EmailAddress;

    use super::*;

    struct Stuck;

    #[async_trait]
    impl Mailer for Stuck {
        async fn send(&self, _mail: Mail) -> Result<(), MailError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_stuck_server_holds_the_caller_only_for_the_bound() {
        let to = EmailAddress::parse("ann@example.com").unwrap();
        let bound = Duration::from_millis(50);
        let mailer = BackgroundMailer::new(Arc::new(Stuck)).with_wait(bound);
        let started = Instant::now();
        mailer
            .send(crate::verify_mail(&to, "http://f", "t"))
            .await
            .unwrap();
        let waited = started.elapsed();
        // It did wait for the delivery, and for the bound set, not the
        // default 2 s: the margin covers a busy machine.
        assert!(waited >= bound, "{waited:?}");
        assert!(
            waited < BackgroundMailer::DEFAULT_WAIT / 2,
            "waited {waited:?} for a bound of {bound:?}"
        );
    }
}
