use crate::{EmailAddress, UserId};

/// A token was refused (bad signature, wrong algorithm, expired, wrong
/// audience, missing claims, malformed) or could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token was refused, for any of the reasons above; which one is
    /// deliberately not said.
    #[error("invalid token")]
    Invalid,
    /// A token could not be issued (its expiry overflows, signing failed);
    /// the cause, for the log.
    #[error("could not issue token: {0}")]
    Issue(String),
}

/// What a valid reset-password token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetClaims {
    /// The `sub` claim, not yet parsed: a token may carry anything there.
    pub subject: String,
    /// `password_fgpt`: a password hash of the `hashed_password` the token
    /// was issued against.
    pub password_fingerprint: String,
}

/// What a valid verify-e-mail token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyClaims {
    /// The `sub` claim, not yet parsed.
    pub subject: String,
    /// The `email` claim, not yet validated.
    pub email: String,
}

/// Issues and checks the three kinds of token. A token of one kind is never
/// accepted as another (each has its own secret and audience).
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait TokenCodec: Send + Sync {
    /// An access token for `user`.
    fn issue_access(&self, user: UserId) -> Result<String, TokenError>;
    /// The subject of a valid access token.
    fn verify_access(&self, token: &str) -> Result<String, TokenError>;
    /// A reset-password token for `user`, bound to `password_fingerprint`.
    fn issue_reset(&self, user: UserId, password_fingerprint: &str) -> Result<String, TokenError>;
    /// The claims of a valid reset-password token.
    fn verify_reset(&self, token: &str) -> Result<ResetClaims, TokenError>;
    /// A verify-e-mail token for `user` at `email`.
    fn issue_verify(&self, user: UserId, email: &EmailAddress) -> Result<String, TokenError>;
    /// The claims of a valid verify-e-mail token.
    fn verify_verify(&self, token: &str) -> Result<VerifyClaims, TokenError>;
}
