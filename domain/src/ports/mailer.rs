use async_trait::async_trait;

use crate::EmailAddress;

/// A rendered mail, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The one recipient.
    pub to: EmailAddress,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body: the same message as `text`, for mail readers that
    /// show HTML.
    pub html: String,
}

/// The mail could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(pub String);

/// Sends mail.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands `mail` over for delivery. `Ok` means it was accepted (by the
    /// mail server, the log, or a background queue), not that it arrived.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}
