use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_domain::{Mail, MailError, Mailer};

/// Hands each mail to another mailer in a task spawned on the current Tokio
/// runtime, and returns `Ok(())` at once; a failure is logged (WARN) by the
/// task.
///
/// Wrap the [`SmtpMailer`](crate::SmtpMailer) in it when callers must not
/// wait for the SMTP server: then `POST /forgot-password` answers as fast
/// for a known address as for an unknown one, and a slow server does not
/// hold the request. The price: send errors never reach the caller.
///
/// # Panics
/// `send` panics outside a Tokio runtime (actix-web runs on Tokio).
#[derive(Clone)]
pub struct BackgroundMailer {
    inner: Arc<dyn Mailer>,
}

impl BackgroundMailer {
    /// Delivers through `inner` in the background.
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self { inner }
    }
}

impl fmt::Debug for BackgroundMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundMailer").finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for BackgroundMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let subject = mail.subject.clone();
            if let Err(error) = inner.send(mail).await {
                tracing::warn!(%subject, %error, "background mail delivery failed");
            }
        });
        Ok(())
    }
}
