use std::fmt;

use crate::EmailAddress;

/// A plain-text password that satisfies the built-in policy: at least
/// [`Password::MIN_CHARS`] characters (or the deployment's minimum; Unicode
/// scalar values, not bytes) and not containing the owner's e-mail address,
/// case-insensitively. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a password was refused. `reason()` is the exact text the HTTP contract
/// sends (`{"detail": {"code": "…_INVALID_PASSWORD", "reason": …}}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyViolation {
    /// Fewer than `min` characters (8 unless the deployment says otherwise).
    #[error("Password should be at least {min} characters")]
    TooShort {
        /// The minimum length in force, in characters.
        min: usize,
    },
    /// The password contains the owner's e-mail address, in any case.
    #[error("Password should not contain e-mail")]
    ContainsEmail,
    /// A host's own rule (a `PasswordValidator`) refused it; the reason is
    /// the host's, sent as is.
    #[error("{0}")]
    Rejected(String),
}

impl PasswordPolicyViolation {
    /// The human reason of the contract, exactly as sent: `Password should
    /// be at least 8 characters`, `Password should not contain e-mail`, or a
    /// host's own text.
    ///
    /// ```
    /// use portcullis_domain::PasswordPolicyViolation;
    /// assert_eq!(
    ///     PasswordPolicyViolation::TooShort { min: 12 }.reason(),
    ///     "Password should be at least 12 characters"
    /// );
    /// assert_eq!(PasswordPolicyViolation::Rejected("Too common".into()).reason(), "Too common");
    /// ```
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl Password {
    /// The default minimum length, in characters.
    pub const MIN_CHARS: usize = 8;

    /// Checks `raw` against the default policy for the owner of `email`:
    /// [`Password::with_min_length`] with [`Password::MIN_CHARS`].
    ///
    /// ```
    /// use portcullis_domain::{EmailAddress, Password, PasswordPolicyViolation};
    /// let email = EmailAddress::parse("Ann@example.com").unwrap();
    /// assert!(Password::new("correct horse", &email).is_ok());
    /// assert_eq!(
    ///     Password::new("short", &email),
    ///     Err(PasswordPolicyViolation::TooShort { min: 8 })
    /// );
    /// assert_eq!(
    ///     Password::new("xxANN@EXAMPLE.COMxx", &email),
    ///     Err(PasswordPolicyViolation::ContainsEmail)
    /// );
    /// ```
    pub fn new(raw: &str, email: &EmailAddress) -> Result<Self, PasswordPolicyViolation> {
        Self::with_min_length(raw, email, Self::MIN_CHARS)
    }

    /// Checks `raw` for the owner of `email`: at least `min` characters
    /// (checked first), then not containing the address in any case.
    ///
    /// ```
    /// use portcullis_domain::{EmailAddress, Password, PasswordPolicyViolation};
    /// let email = EmailAddress::parse("ann@example.com").unwrap();
    /// assert_eq!(
    ///     Password::with_min_length("correct horse", &email, 14),
    ///     Err(PasswordPolicyViolation::TooShort { min: 14 })
    /// );
    /// assert!(Password::with_min_length("correct horse!", &email, 14).is_ok());
    /// ```
    pub fn with_min_length(
        raw: &str,
        email: &EmailAddress,
        min: usize,
    ) -> Result<Self, PasswordPolicyViolation> {
        if raw.chars().count() < min {
            return Err(PasswordPolicyViolation::TooShort { min });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_reasons_are_byte_identical() {
        assert_eq!(
            PasswordPolicyViolation::TooShort { min: 8 }.reason(),
            "Password should be at least 8 characters"
        );
        assert_eq!(
            PasswordPolicyViolation::ContainsEmail.reason(),
            "Password should not contain e-mail"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let email = EmailAddress::parse("ann@example.com").unwrap();
        // 8 characters, 16 bytes.
        assert!(Password::new("éééééééé", &email).is_ok());
        assert_eq!(
            Password::with_min_length("éééééééé", &email, 9),
            Err(PasswordPolicyViolation::TooShort { min: 9 })
        );
    }
}
