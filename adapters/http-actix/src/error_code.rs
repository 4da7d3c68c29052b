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
}

impl ErrorCode {
    /// Every code, in the order above.
    pub const ALL: [ErrorCode; 10] = [
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
