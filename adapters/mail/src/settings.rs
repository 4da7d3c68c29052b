use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SmtpTls {
    /// Plain text, no TLS at all (`none`): local relays and test servers
    /// only. Credentials, if any, travel in clear.
    None,
    /// Plain connection upgraded with `STARTTLS`, which the server must
    /// offer (`starttls`; submission port 587). The default.
    #[default]
    StartTls,
    /// TLS from the first byte (`tls`, "implicit TLS"; submissions port 465).
    Tls,
}

impl SmtpTls {
    /// The usual port for this mode: 25 for [`SmtpTls::None`], 587 for
    /// [`SmtpTls::StartTls`], 465 for [`SmtpTls::Tls`]. Use it when
    /// `SMTP_PORT` is unset.
    ///
    /// ```
    /// use portcullis_mail::SmtpTls;
    /// let port: Option<u16> = None;
    /// assert_eq!(port.unwrap_or(SmtpTls::Tls.default_port()), 465);
    /// ```
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }

    /// The `SMTP_TLS` spelling of this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

impl FromStr for SmtpTls {
    type Err = MailConfigError;

    /// `none`, `starttls` or `tls`, case-insensitive, surrounding white space
    /// ignored.
    ///
    /// ```
    /// use portcullis_mail::SmtpTls;
    /// assert_eq!(" StartTLS ".parse::<SmtpTls>().unwrap(), SmtpTls::StartTls);
    /// assert!("ssl".parse::<SmtpTls>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            _ => Err(MailConfigError::UnknownTls(s.to_owned())),
        }
    }
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how [`SmtpMailer`](crate::SmtpMailer) sends mail.
///
/// The password is a [`SecretString`]: zeroed when dropped, and `Debug`
/// never shows it.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Server host name (`SMTP_HOST`); also the name checked against the
    /// server certificate with TLS.
    pub host: String,
    /// Server port (`SMTP_PORT`); see [`SmtpTls::default_port`].
    pub port: u16,
    /// Login (`SMTP_USERNAME`); `None` (or empty) sends without `AUTH`.
    pub username: Option<String>,
    /// Password (`SMTP_PASSWORD`); used only with a username.
    pub password: Option<SecretString>,
    /// Connection protection (`SMTP_TLS`).
    pub tls: SmtpTls,
    /// Sender (`MAIL_FROM`): `noreply@example.com` or
    /// `Portcullis <noreply@example.com>`.
    pub from: String,
    /// An extra certificate authority (PEM) the TLS client trusts besides
    /// the system's, for a relay whose certificate a private CA issued.
    /// Host names are still checked. Used with [`SmtpTls::StartTls`] and
    /// [`SmtpTls::Tls`]; ignored with [`SmtpTls::None`].
    pub root_certificate: Option<String>,
}

impl SmtpSettings {
    /// Settings for `host` with `tls`, its [default port](SmtpTls::default_port)
    /// when `port` is `None`, and no credentials.
    pub fn new(
        host: impl Into<String>,
        port: Option<u16>,
        tls: SmtpTls,
        from: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port: port.unwrap_or(tls.default_port()),
            username: None,
            password: None,
            tls,
            from: from.into(),
            root_certificate: None,
        }
    }

    /// The same settings, also trusting the certificate authority `pem`
    /// (see [`SmtpSettings::root_certificate`]).
    pub fn with_root_certificate(mut self, pem: impl Into<String>) -> Self {
        self.root_certificate = Some(pem.into());
        self
    }

    /// The same settings, logging in as `username` with `password`.
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }
}

/// The mail configuration cannot work; the message names the variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailConfigError {
    /// `SMTP_TLS` is not one of `none`, `starttls`, `tls`.
    #[error("SMTP_TLS must be `none`, `starttls` or `tls`, not {0:?}")]
    UnknownTls(String),
    /// `SMTP_HOST` is empty.
    #[error("SMTP_HOST is empty")]
    EmptyHost,
    /// `SMTP_PORT` is 0.
    #[error("SMTP_PORT must be between 1 and 65535, not 0")]
    InvalidPort,
    /// `MAIL_FROM` is not a mailbox.
    #[error(
        "MAIL_FROM {value:?} is not a valid sender (expected `noreply@example.com` or \
         `Name <noreply@example.com>`): {reason}"
    )]
    InvalidFrom {
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A password is set without a username.
    #[error("SMTP_PASSWORD is set but SMTP_USERNAME is not")]
    PasswordWithoutUsername,
    /// The TLS client could not be set up.
    #[error("SMTP TLS ({tls}) setup for {host:?} failed: {reason}")]
    Tls {
        /// The mode asked for.
        tls: SmtpTls,
        /// The server host name.
        host: String,
        /// What the TLS library said.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_modes_parse_and_have_default_ports() {
        for (text, tls, port) in [
            ("none", SmtpTls::None, 25),
            ("STARTTLS", SmtpTls::StartTls, 587),
            (" tls\n", SmtpTls::Tls, 465),
        ] {
            let parsed: SmtpTls = text.parse().unwrap();
            assert_eq!(parsed, tls);
            assert_eq!(parsed.default_port(), port);
            assert_eq!(parsed.as_str().parse::<SmtpTls>().unwrap(), tls);
        }
        let err = "ssl".parse::<SmtpTls>().unwrap_err();
        assert!(err.to_string().contains("SMTP_TLS"), "{err}");
    }

    #[test]
    fn settings_default_port_and_redacted_debug() {
        let s = SmtpSettings::new("mail.example.com", None, SmtpTls::Tls, "a@example.com")
            .with_credentials("user", "hunter2-secret");
        assert_eq!(s.port, 465);
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        assert_eq!(
            SmtpSettings::new("h", Some(2525), SmtpTls::None, "a@example.com").port,
            2525
        );
    }
}
