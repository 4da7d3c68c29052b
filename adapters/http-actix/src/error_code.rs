//! The `detail` codes of business errors, as FastAPI Users' `ErrorCode`.

use serde::Serialize;

/// A business error's code: `400 {"detail": "CODE"}`, or with a reason
/// `400 {"detail": {"code": "CODE", "reason": "…"}}`.
///
/// ```
/// use portcullis_http_actix::ErrorCode;
/// assert_eq!(ErrorCode::RegisterUserAlreadyExists.as_str(), "REGISTER_USER_ALREADY_EXISTS");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Register: a user with this address exists (in any letter case).
    RegisterUserAlreadyExists,
    /// Register: the password fails the policy.
    RegisterInvalidPassword,
    /// Login: unknown address, wrong password, or inactive user.
    LoginBadCredentials,
    /// Login: unverified user, where verification is required.
    LoginUserNotVerified,
    /// Reset: a bad, expired or used token.
    ResetPasswordBadToken,
    /// Reset: the new password fails the policy.
    ResetPasswordInvalidPassword,
    /// Verify: a bad or expired token, or not the user's current address.
    VerifyUserBadToken,
    /// Verify: the user is verified already.
    VerifyUserAlreadyVerified,
    /// Update: another user has this address.
    UpdateUserEmailAlreadyExists,
    /// Update: the new password fails the policy.
    UpdateUserInvalidPassword,
    /// OAuth callback: the state token does not decode (bad signature,
    /// audience or form).
    AccessTokenDecodeError,
    /// OAuth callback: the state token expired.
    AccessTokenAlreadyExpired,
    /// OAuth callback: the CSRF cookie is missing or does not match the state.
    OauthInvalidState,
    /// OAuth callback: the provider gave no e-mail address.
    OauthNotAvailableEmail,
    /// OAuth callback: a user has the address and may not be associated, or
    /// (associate) the provider account belongs to another user.
    OauthUserAlreadyExists,
    /// OAuth callback: the provider refused the code or the ID token did
    /// not check out (the reason is logged). Portcullis' own (FastAPI Users
    /// answers 500).
    OauthProviderError,
}

impl ErrorCode {
    /// Every code, in the order above.
    pub const ALL: [ErrorCode; 16] = [
        Self::RegisterUserAlreadyExists,
        Self::RegisterInvalidPassword,
        Self::LoginBadCredentials,
        Self::LoginUserNotVerified,
        Self::ResetPasswordBadToken,
        Self::ResetPasswordInvalidPassword,
        Self::VerifyUserBadToken,
        Self::VerifyUserAlreadyVerified,
        Self::UpdateUserEmailAlreadyExists,
        Self::UpdateUserInvalidPassword,
        Self::AccessTokenDecodeError,
        Self::AccessTokenAlreadyExpired,
        Self::OauthInvalidState,
        Self::OauthNotAvailableEmail,
        Self::OauthUserAlreadyExists,
        Self::OauthProviderError,
    ];

    /// The code as the wire carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegisterUserAlreadyExists => "REGISTER_USER_ALREADY_EXISTS",
            Self::RegisterInvalidPassword => "REGISTER_INVALID_PASSWORD",
            Self::LoginBadCredentials => "LOGIN_BAD_CREDENTIALS",
            Self::LoginUserNotVerified => "LOGIN_USER_NOT_VERIFIED",
            Self::ResetPasswordBadToken => "RESET_PASSWORD_BAD_TOKEN",
            Self::ResetPasswordInvalidPassword => "RESET_PASSWORD_INVALID_PASSWORD",
            Self::VerifyUserBadToken => "VERIFY_USER_BAD_TOKEN",
            Self::VerifyUserAlreadyVerified => "VERIFY_USER_ALREADY_VERIFIED",
            Self::UpdateUserEmailAlreadyExists => "UPDATE_USER_EMAIL_ALREADY_EXISTS",
            Self::UpdateUserInvalidPassword => "UPDATE_USER_INVALID_PASSWORD",
            Self::AccessTokenDecodeError => "ACCESS_TOKEN_DECODE_ERROR",
            Self::AccessTokenAlreadyExpired => "ACCESS_TOKEN_ALREADY_EXPIRED",
            Self::OauthInvalidState => "OAUTH_INVALID_STATE",
            Self::OauthNotAvailableEmail => "OAUTH_NOT_AVAILABLE_EMAIL",
            Self::OauthUserAlreadyExists => "OAUTH_USER_ALREADY_EXISTS",
            Self::OauthProviderError => "OAUTH_PROVIDER_ERROR",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_as_str_spell_every_code_alike() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).ok(), Some(code.as_str().into()));
        }
    }
}
