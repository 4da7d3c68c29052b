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

/// What a valid access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The `sub` claim, not yet parsed: a token may carry anything there.
    pub subject: String,
    /// The `stamp` claim: the user's [`session_stamp`](crate::User::session_stamp)
    /// when the token was issued. A token without it (every token FastAPI
    /// Users mints, and Portcullis' own while the stamp is 0) reads as 0.
    pub stamp: i64,
    /// The `exp` claim, in Unix seconds (as PyJWT reads it).
    pub expires_at: i64,
    /// The `iat` claim, in Unix seconds, when the token has one (FastAPI
    /// Users' and Portcullis' own have none).
    pub issued_at: Option<i64>,
}

/// What a valid reset-password token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetClaims {
    /// The `sub` claim, not yet parsed: a token may carry anything there.
    pub subject: String,
    /// `password_fgpt`: a password hash of the `hashed_password` the token
    /// was issued against.
    pub password_fingerprint: String,
    /// The `state` claim: a digest of the account's state when the token was
    /// issued (see `UserService` in `portcullis-application`). `None` for a
    /// token without it (minted by FastAPI Users).
    pub state: Option<String>,
}

/// What a valid verify-e-mail token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyClaims {
    /// The `sub` claim, not yet parsed.
    pub subject: String,
    /// The `email` claim, not yet validated.
    pub email: String,
    /// The `state` claim, as in [`ResetClaims::state`].
    pub state: Option<String>,
}

/// Issues and checks the three kinds of token. A token of one kind is never
/// accepted as another (each has its own secret and audience).
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait TokenCodec: Send + Sync {
    /// An access token for `user`, carrying `stamp` (the claim is left out
    /// when it is 0, so the token is then exactly FastAPI Users').
    fn issue_access(&self, user: UserId, stamp: i64) -> Result<String, TokenError>;
    /// The claims of a valid access token.
    fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError>;
    /// A reset-password token for `user`, bound to `password_fingerprint`
    /// and, when given, to the account's `state`.
    // mockall needs the lifetime of `Option<&str>` named.
    #[allow(clippy::needless_lifetimes)]
    fn issue_reset<'a>(
        &self,
        user: UserId,
        password_fingerprint: &str,
        state: Option<&'a str>,
    ) -> Result<String, TokenError>;
    /// The claims of a valid reset-password token.
    fn verify_reset(&self, token: &str) -> Result<ResetClaims, TokenError>;
    /// A verify-e-mail token for `user` at `email`, bound, when given, to
    /// the account's `state`.
    // mockall needs the lifetime of `Option<&str>` named.
    #[allow(clippy::needless_lifetimes)]
    fn issue_verify<'a>(
        &self,
        user: UserId,
        email: &EmailAddress,
        state: Option<&'a str>,
    ) -> Result<String, TokenError>;
    /// The claims of a valid verify-e-mail token.
    fn verify_verify(&self, token: &str) -> Result<VerifyClaims, TokenError>;
}
