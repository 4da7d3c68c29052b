use std::fmt;

use secrecy::SecretSlice;

/// The shortest secret accepted, in bytes: HS256 needs a key at least as long
/// as its 32-byte output (RFC 7518 §3.2), and josekit refuses shorter ones.
pub const MIN_SECRET_LEN: usize = 32;

/// The default lifetime of every kind of token, in seconds (one hour, as in
/// FastAPI Users).
pub const DEFAULT_LIFETIME_SECS: i64 = 3600;

/// One of the three kinds of token, each with its own secret, audience and
/// lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Access (bearer) tokens: `JWT_SECRET_KEY`.
    Access,
    /// Reset-password tokens: `AUTH_RESET_PASSWORD_TOKEN_SECRET`.
    Reset,
    /// Verify-e-mail tokens: `AUTH_VERIFICATION_TOKEN_SECRET`.
    Verify,
}

impl TokenKind {
    /// `"access"`, `"reset"` or `"verify"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Reset => "reset",
            Self::Verify => "verify",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Secrets and lifetimes of the three kinds of token.
///
/// Secrets are raw bytes; FastAPI Users (PyJWT) uses the UTF-8 bytes of its
/// string secrets, so pass the same text to share tokens with it. They are
/// held in [`SecretSlice`]s: zeroed when dropped, and `Debug` never shows
/// them.
///
/// ```
/// use portcullis_jwt_josekit::TokenSettings;
///
/// let settings = TokenSettings::new(
///     "an access token secret of 32+ bytes!",
///     "a reset token secret of 32+ bytes!!!",
///     "a verify token secret of 32+ bytes!!",
/// );
/// assert!(!format!("{settings:?}").contains("32+ bytes"));
/// ```
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Signs access tokens (`JWT_SECRET_KEY`); at least [`MIN_SECRET_LEN`] bytes.
    pub access_secret: SecretSlice<u8>,
    /// Signs reset-password tokens (`AUTH_RESET_PASSWORD_TOKEN_SECRET`); at
    /// least [`MIN_SECRET_LEN`] bytes.
    pub reset_secret: SecretSlice<u8>,
    /// Signs verify-e-mail tokens (`AUTH_VERIFICATION_TOKEN_SECRET`); at least
    /// [`MIN_SECRET_LEN`] bytes.
    pub verify_secret: SecretSlice<u8>,
    /// Lifetime of an access token in seconds (default 3600); must be positive.
    pub access_lifetime_secs: i64,
    /// Lifetime of a reset-password token in seconds (default 3600); must be
    /// positive.
    pub reset_lifetime_secs: i64,
    /// Lifetime of a verify-e-mail token in seconds (default 3600); must be
    /// positive.
    pub verify_lifetime_secs: i64,
}

impl TokenSettings {
    /// Settings with these secrets and the default lifetimes
    /// ([`DEFAULT_LIFETIME_SECS`] each). Nothing is checked until
    /// [`JosekitTokenCodec::new`](crate::JosekitTokenCodec::new).
    pub fn new(
        access_secret: impl Into<Vec<u8>>,
        reset_secret: impl Into<Vec<u8>>,
        verify_secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            access_secret: access_secret.into().into(),
            reset_secret: reset_secret.into().into(),
            verify_secret: verify_secret.into().into(),
            access_lifetime_secs: DEFAULT_LIFETIME_SECS,
            reset_lifetime_secs: DEFAULT_LIFETIME_SECS,
            verify_lifetime_secs: DEFAULT_LIFETIME_SECS,
        }
    }

    /// The secret of `kind`.
    pub const fn secret(&self, kind: TokenKind) -> &SecretSlice<u8> {
        match kind {
            TokenKind::Access => &self.access_secret,
            TokenKind::Reset => &self.reset_secret,
            TokenKind::Verify => &self.verify_secret,
        }
    }

    /// The lifetime of `kind`, in seconds.
    pub const fn lifetime_secs(&self, kind: TokenKind) -> i64 {
        match kind {
            TokenKind::Access => self.access_lifetime_secs,
            TokenKind::Reset => self.reset_lifetime_secs,
            TokenKind::Verify => self.verify_lifetime_secs,
        }
    }
}

/// Why [`TokenSettings`] cannot be used. Each variant names the kind of token
/// it is about ([`TokenConfigError::kind`]) so that the caller can name the
/// setting (`JWT_SECRET_KEY`, `AUTH_RESET_PASSWORD_TOKEN_SECRET`,
/// `AUTH_VERIFICATION_TOKEN_SECRET`, or the lifetime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConfigError {
    /// A secret is shorter than [`MIN_SECRET_LEN`] bytes.
    ///
    /// Message: `the access token secret is 12 bytes long; it must be at least 32 bytes`.
    SecretTooShort {
        /// Whose secret.
        kind: TokenKind,
        /// Its length in bytes.
        len: usize,
    },
    /// A lifetime is zero or negative.
    ///
    /// Message: `the reset token lifetime must be a positive number of seconds, not 0`.
    NonPositiveLifetime {
        /// Whose lifetime.
        kind: TokenKind,
        /// The value given.
        secs: i64,
    },
    /// The HMAC refused a secret for another reason (not expected to happen:
    /// HMAC takes keys of any length).
    ///
    /// Message: `the verify token secret was refused by the HMAC: <reason>`.
    KeyRejected {
        /// Whose secret.
        kind: TokenKind,
        /// The HMAC's explanation.
        reason: String,
    },
}

impl TokenConfigError {
    /// The kind of token the problem is about.
    pub const fn kind(&self) -> TokenKind {
        match self {
            Self::SecretTooShort { kind, .. }
            | Self::NonPositiveLifetime { kind, .. }
            | Self::KeyRejected { kind, .. } => *kind,
        }
    }
}

impl fmt::Display for TokenConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretTooShort { kind, len } => write!(
                f,
                "the {kind} token secret is {len} bytes long; it must be at least {MIN_SECRET_LEN} bytes"
            ),
            Self::NonPositiveLifetime { kind, secs } => write!(
                f,
                "the {kind} token lifetime must be a positive number of seconds, not {secs}"
            ),
            Self::KeyRejected { kind, reason } => {
                write!(
                    f,
                    "the {kind} token secret was refused by the HMAC: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for TokenConfigError {}
