use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, Error as SmtpError};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_domain::{Mail, MailError, Mailer};
use secrecy::ExposeSecret as _;

use crate::settings::{MailConfigError, SmtpSettings, SmtpTls};

/// The longest line SMTP allows, CRLF excluded (RFC 5321 §4.5.3.1.6).
const MAX_LINE_BYTES: usize = 998;

/// Sends mail over SMTP with lettre, through a pool of connections.
///
/// Every SMTP step (connect, TLS handshake, each command) is bounded by a
/// timeout, 10 s unless [`SmtpMailer::with_timeout`] says otherwise, so a
/// dead server delays a send by at most a few timeouts.
///
/// The lettre transport (and its pool) is created on the first send, on the
/// Tokio runtime that runs it: [`SmtpMailer::new`] itself needs no runtime.
pub struct SmtpMailer {
    from: Mailbox,
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    host: String,
    port: u16,
    tls: SmtpTls,
}

impl SmtpMailer {
    /// The default bound on each SMTP step.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A mailer for `settings`, checked: the sender must be a mailbox, the
    /// host non-empty, the port non-zero, a password comes with a username,
    /// and the TLS client (for `starttls` and `tls`, with the
    /// [root certificate](SmtpSettings::root_certificate) if any) must set
    /// up. Empty username and password count as unset.
    pub fn new(settings: SmtpSettings) -> Result<Self, MailConfigError> {
        let SmtpSettings {
            host,
            port,
            username,
            password,
            tls,
            from,
            root_certificate,
        } = settings;
        let host = host.trim().to_owned();
        if host.is_empty() {
            return Err(MailConfigError::EmptyHost);
        }
        if port == 0 {
            return Err(MailConfigError::InvalidPort);
        }
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|e| MailConfigError::InvalidFrom {
                value: from.clone(),
                reason: format!("{e}"),
            })?;
        let username = username.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.expose_secret().is_empty());

        let tls_error = |e: SmtpError| MailConfigError::Tls {
            tls,
            host: host.clone(),
            reason: e.to_string(),
        };
        let tls_parameters = || {
            let mut parameters = TlsParameters::builder(host.clone());
            if let Some(pem) = &root_certificate {
                let ca = Certificate::from_pem(pem.as_bytes()).map_err(tls_error)?;
                parameters = parameters.add_root_certificate(ca);
            }
            parameters.build().map_err(tls_error)
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .tls(match tls {
                SmtpTls::None => Tls::None,
                // STARTTLS or no mail: never a fallback to plain text.
                SmtpTls::StartTls => Tls::Required(tls_parameters()?),
                SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
            })
            .port(port)
            .timeout(Some(Self::DEFAULT_TIMEOUT));
        match (username, password) {
            (Some(user), password) => {
                // Exposed only to hand it to lettre.
                let password = password.map(|p| p.expose_secret().to_owned());
                builder = builder.credentials(Credentials::new(user, password.unwrap_or_default()));
            }
            (None, Some(_)) => return Err(MailConfigError::PasswordWithoutUsername),
            (None, None) => {}
        }
        Ok(Self {
            from,
            builder,
            transport: OnceLock::new(),
            host,
            port,
            tls,
        })
    }

    /// The same mailer with each SMTP step bounded by `timeout` instead of
    /// [`SmtpMailer::DEFAULT_TIMEOUT`]. Call before the first send.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.clone().timeout(Some(timeout));
        self.transport = OnceLock::new();
        self
    }

    /// The sender every mail comes from (`MAIL_FROM`).
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Connects to the server and says hello (and logs in, with
    /// credentials): a start-up check. `Ok(())` when the server answered.
    pub async fn test_connection(&self) -> Result<(), MailError> {
        match self.transport().test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.error("the server did not answer NOOP")),
            Err(e) => Err(self.error(&e.to_string())),
        }
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
    }

    fn error(&self, what: &str) -> MailError {
        MailError(format!(
            "SMTP {}:{} ({}): {what}",
            self.host, self.port, self.tls
        ))
    }
}

impl Drop for SmtpMailer {
    fn drop(&mut self) {
        // lettre's pool spawns its shutdown on the current Tokio runtime when
        // dropped, and that panics outside one (say, after the server's
        // runtime has stopped). Nothing is left to shut down cleanly then:
        // let the transport go without running its destructor.
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(transport) = self.transport.take()
        {
            std::mem::forget(transport);
        }
    }
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, &mail)?;
        self.transport()
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("sending {:?} failed: {e}", mail.subject)))
    }
}

/// The lettre message for `mail`: `multipart/alternative`, text then HTML,
/// each part in `7bit` (`8bit` when not ASCII) transfer encoding so that
/// links stay verbatim.
pub(crate) fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Address = mail.to.as_str().parse().map_err(|e| {
        MailError(format!(
            "recipient {:?} refused by the mail library: {e}",
            mail.to.as_str()
        ))
    })?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.as_str())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(verbatim_body(&mail.text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(verbatim_body(&mail.html)),
                ),
        )
        .map_err(|e| MailError(format!("mail {:?} could not be built: {e}", mail.subject)))
}

/// `text` with CRLF line endings, sent as it is: `7bit` when ASCII, `8bit`
/// otherwise. lettre would choose quoted-printable for any line over 76
/// bytes, folding long links (and their tokens) with soft line breaks; we
/// only fall back to lettre's choice when a line exceeds the SMTP limit or
/// the text holds a NUL.
fn verbatim_body(text: &str) -> Body {
    let crlf = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    let sendable =
        !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= MAX_LINE_BYTES);
    if !sendable {
        tracing::warn!("mail body has a line over {MAX_LINE_BYTES} bytes or a NUL: encoding it");
        return Body::new(text.to_owned());
    }
    let encoding = if crlf.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}

#[cfg(test)]
mod tests {
    use portcullis_domain::EmailAddress;

    use super::*;
    use crate::reset_password_mail;

    fn settings(tls: SmtpTls) -> SmtpSettings {
        SmtpSettings::new("localhost", None, tls, "Portcullis <noreply@example.com>")
    }

    #[test]
    fn new_accepts_every_tls_mode() {
        for tls in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls] {
            let m = SmtpMailer::new(settings(tls)).unwrap();
            assert_eq!(m.port, tls.default_port());
            assert_eq!(m.from().email.to_string(), "noreply@example.com");
        }
    }

    #[test]
    fn new_refuses_bad_settings_clearly() {
        let mut bad_from = settings(SmtpTls::None);
        bad_from.from = "not a mailbox".into();
        let err = SmtpMailer::new(bad_from).unwrap_err();
        assert!(matches!(err, MailConfigError::InvalidFrom { .. }));
        assert!(err.to_string().contains("MAIL_FROM"), "{err}");

        let mut no_host = settings(SmtpTls::None);
        no_host.host = "  ".into();
        assert_eq!(
            SmtpMailer::new(no_host).unwrap_err(),
            MailConfigError::EmptyHost
        );

        let mut port0 = settings(SmtpTls::None);
        port0.port = 0;
        assert_eq!(
            SmtpMailer::new(port0).unwrap_err(),
            MailConfigError::InvalidPort
        );

        let mut pw_only = settings(SmtpTls::None);
        pw_only.password = Some("secret".into());
        assert_eq!(
            SmtpMailer::new(pw_only).unwrap_err(),
            MailConfigError::PasswordWithoutUsername
        );

        let mut empty_creds = settings(SmtpTls::None);
        empty_creds.username = Some(String::new());
        empty_creds.password = Some(String::new().into());
        assert!(SmtpMailer::new(empty_creds).is_ok());
    }

    #[test]
    fn a_root_certificate_that_is_not_pem_is_refused_with_tls() {
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
        for tls in [SmtpTls::StartTls, SmtpTls::Tls] {
            let err = SmtpMailer::new(settings(tls).with_root_certificate(garbage)).unwrap_err();
            assert!(
                matches!(&err, MailConfigError::Tls { tls: t, .. } if *t == tls),
                "{err}"
            );
        }
        // No TLS, no certificate to read.
        assert!(SmtpMailer::new(settings(SmtpTls::None).with_root_certificate(garbage)).is_ok());
    }

    #[test]
    fn dropping_outside_a_runtime_does_not_panic() {
        let mailer = SmtpMailer::new(SmtpSettings::new(
            "127.0.0.1",
            Some(1),
            SmtpTls::None,
            "a@example.com",
        ))
        .unwrap()
        .with_timeout(Duration::from_secs(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let to = EmailAddress::parse("ann@example.com").unwrap();
        let sent = runtime.block_on(mailer.send(reset_password_mail(&to, "http://f", "t")));
        assert!(sent.is_err());
        drop(runtime);
        drop(mailer);
    }

    #[test]
    fn debug_hides_credentials() {
        let m = SmtpMailer::new(settings(SmtpTls::None).with_credentials("u", "hunter2")).unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn message_is_multipart_alternative_with_verbatim_long_link() {
        let token = format!(
            "{}.{}.{}",
            "a".repeat(120),
            "b-c_".repeat(30),
            "Z9".repeat(40)
        );
        let to = EmailAddress::parse("ann@example.com").unwrap();
        let mail = reset_password_mail(&to, "https://app.example.com/", &token);
        let from: Mailbox = "Portcullis <noreply@example.com>".parse().unwrap();
        let raw = String::from_utf8(build_message(&from, &mail).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Subject: Reset your password\r\n"), "{raw}");
        assert_eq!(
            raw.matches("Content-Transfer-Encoding: 7bit").count(),
            2,
            "{raw}"
        );
        assert!(!raw.contains("quoted-printable"));
        let link = format!("https://app.example.com/reset-password?token={token}");
        assert_eq!(raw.matches(&link).count(), 3, "{raw}");
        assert!(raw.split("\r\n").all(|l| l.len() <= MAX_LINE_BYTES));
        assert!(!raw.replace("\r\n", "").contains('\n'), "bare LF in {raw}");
    }

    #[test]
    fn non_ascii_bodies_go_8bit_and_huge_lines_fall_back() {
        assert_eq!(
            verbatim_body("grüße\n").encoding(),
            ContentTransferEncoding::EightBit
        );
        assert_eq!(
            verbatim_body("plain\r\n").encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_eq!(verbatim_body("a\rb\nc").as_ref(), b"a\r\nb\r\nc");
        assert_ne!(
            verbatim_body(&"x".repeat(1200)).encoding(),
            ContentTransferEncoding::SevenBit
        );
    }
}
