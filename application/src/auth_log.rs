//! Auth events: one `INFO` event each, target [`AUTH_LOG_TARGET`], with an
//! `auth_event` field that names it and the `user_id` when there is one.
//! They happen inside the request's span (the HTTP adapter's request log),
//! so they carry its request id too; the client address is on that
//! request's line.
//!
//! | `auth_event` | when | `user_id` |
//! |---|---|---|
//! | `login_ok` | a login issued a token | yes |
//! | `login_failed` | wrong password, inactive user, unknown address (`reason = "bad_credentials"`) or an unverified user where verification is required (`reason = "not_verified"`) | when the address has an account |
//! | `login_locked` | refused unchecked: too many failed logins for the address | no (the user is not even looked up) |
//! | `register` | a user registered | yes |
//! | `reset_requested` | a reset token was issued (forgot-password) | yes |
//! | `password_reset` | a password was reset with a token | yes |
//! | `verify_requested` | a verification token was issued | yes |
//! | `verify` | an address was verified | yes |
//! | `sessions_revoked` | every session of a user ended; `cause`: `end_all_sessions`, `password_reset`, `password_change`, `deactivation` | yes |
//!
//! Users are named by id only: never by address (the username of a failed
//! login may be a password typed in the wrong field), and never a password,
//! token or hash (`secrets_in_logs` tests the use cases for it).

/// The `tracing` target of the auth events: `portcullis::auth`
/// (`RUST_LOG=portcullis::auth=info` keeps them alone).
pub const AUTH_LOG_TARGET: &str = "portcullis::auth";

/// Why every session of a user was revoked: the `cause` of a
/// `sessions_revoked` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revocation {
    /// `DELETE /users/me/sessions` (log out everywhere).
    EndAllSessions,
    /// A password reset with a token.
    PasswordReset,
    /// The user, or an administrator, changed the password.
    PasswordChange,
    /// An administrator deactivated the user.
    Deactivation,
}

impl Revocation {
    /// The `cause` field's value.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::EndAllSessions => "end_all_sessions",
            Self::PasswordReset => "password_reset",
            Self::PasswordChange => "password_change",
            Self::Deactivation => "deactivation",
        }
    }
}
