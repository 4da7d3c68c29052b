use async_trait::async_trait;
use portcullis_domain::{Mail, MailError, Mailer};

/// Writes each mail (recipient, subject, text body with its link) to the log
/// at INFO instead of sending it: for development, when `SMTP_HOST` is
/// unset. The log then holds live reset and verification tokens, so never
/// use it in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

impl LogMailer {
    /// A log mailer.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            "mail not sent (SMTP_HOST is unset), logged instead:\n{}",
            mail.text
        );
        Ok(())
    }
}
