//! Outgoing mail for Portcullis: the adapters behind the domain's
//! [`Mailer`](portcullis_domain::Mailer) port, the reset-password and
//! verification mail templates, and the [`UserEvents`] hooks that send them.
//!
//! * [`SmtpMailer`] sends over SMTP with lettre (`SMTP_HOST`, `SMTP_PORT`,
//!   `SMTP_USERNAME`, `SMTP_PASSWORD`, `SMTP_TLS`, `MAIL_FROM`; see
//!   [`SmtpSettings`]). Mails are `multipart/alternative` (text and HTML),
//!   both parts in `7bit` (or `8bit`) transfer encoding, so the link and its
//!   token appear verbatim, on one line, in the raw message.
//! * [`LogMailer`] writes mails to the log at INFO instead: for development,
//!   when `SMTP_HOST` is unset. It logs the tokens; never use it in
//!   production.
//! * [`BackgroundMailer`] wraps another mailer: a bounded queue drained by
//!   a worker task, so the caller never waits for (or learns about) the
//!   SMTP server.
//! * [`reset_password_mail`] and [`verify_mail`] render the mails with the
//!   links `{FRONTEND_URL}/reset-password?token=<token>` and
//!   `{FRONTEND_URL}/verify?token=<token>`.
//! * [`MailingUserEvents`] is a [`UserEvents`] that sends those mails from
//!   `on_after_forgot_password` and `on_after_request_verify`; a failure is
//!   logged, never propagated.
//!
//! [`UserEvents`]: portcullis_domain::UserEvents
#![warn(missing_docs)]

mod background;
mod events;
mod log;
mod settings;
mod smtp;
mod templates;

pub use background::BackgroundMailer;
pub use events::MailingUserEvents;
pub use log::LogMailer;
pub use settings::{MailConfigError, SmtpSettings, SmtpTls};
pub use smtp::SmtpMailer;
pub use templates::{html_escape, mail_link, reset_password_mail, verify_mail};
