use std::fmt;

use crate::EmailAddress;

/// A plain-text password that satisfies the policy: at least 8 characters
/// (Unicode scalar values, not bytes) and not containing the owner's e-mail
/// address, case-insensitively. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a password was refused. `reason()` is the exact text the HTTP contract
/// sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyViolation {
    /// Fewer than [`Password::MIN_CHARS`] characters.
    #[error("Password should be at least 8 characters")]
    TooShort,
    /// The password contains the owner's e-mail address, in any case.
    #[error("Password should not contain e-mail")]
    ContainsEmail,
}

impl PasswordPolicyViolation {
    /// The human reason of the contract.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort => "Password should be at least 8 characters",
            Self::ContainsEmail => "Password should not contain e-mail",
        }
    }
}

impl Password {
    /// The minimum length, in characters.
    pub const MIN_CHARS: usize = 8;

    /// Checks `raw` against the policy for the owner of `email`.
    ///
    /// ```
    /// use portcullis_domain::{EmailAddress, Password, PasswordPolicyViolation};
    /// let email = EmailAddress::parse("Ann@example.com").unwrap();
    /// assert!(Password::new("correct horse", &email).is_ok());
    /// assert_eq!(Password::new("short", &email), Err(PasswordPolicyViolation::TooShort));
    /// assert_eq!(
    ///     Password::new("xxANN@EXAMPLE.COMxx", &email),
    ///     Err(PasswordPolicyViolation::ContainsEmail)
    /// );
    /// ```
    pub fn new(raw: &str, email: &EmailAddress) -> Result<Self, PasswordPolicyViolation> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(PasswordPolicyViolation::TooShort);
        }
        if raw.to_lowercase().contains(&email.as_str().to_lowercase()) {
            return Err(PasswordPolicyViolation::ContainsEmail);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret, for the hasher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}
