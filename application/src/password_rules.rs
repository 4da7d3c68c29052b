//! The password rules of a deployment: the built-in policy with its minimum
//! length, then the host's own validators.

use std::fmt;
use std::sync::Arc;

use portcullis_domain::{Password, PasswordOwner, PasswordPolicyViolation, PasswordValidator};

/// What a new password must satisfy, checked by every use case that sets
/// one (register, reset, `update_me`, the administrator's change,
/// `create_user`, `create_superuser`): at least [`min_length`] characters,
/// not the owner's address, then each of [`validators`] in order. The
/// first refusal wins.
///
/// [`min_length`]: PasswordRules::min_length
/// [`validators`]: PasswordRules::validators
#[derive(Clone)]
pub struct PasswordRules {
    /// The fewest characters a password may have (default
    /// [`Password::MIN_CHARS`], 8).
    pub min_length: usize,
    /// The host's own rules, run in order after the built-in checks.
    pub validators: Vec<Arc<dyn PasswordValidator>>,
}

impl PasswordRules {
    /// The largest minimum length a deployment may ask for: beyond it no
    /// password a person types would pass.
    pub const MAX_MIN_LENGTH: usize = 4096;

    /// Whether `min` is a usable minimum length: 1 to
    /// [`MAX_MIN_LENGTH`](Self::MAX_MIN_LENGTH).
    pub fn valid_min_length(min: usize) -> bool {
        (1..=Self::MAX_MIN_LENGTH).contains(&min)
    }

    /// Checks `raw` for `owner`: the built-in policy first, then each
    /// validator in order; the first refusal is the answer.
    pub async fn check(
        &self,
        raw: &str,
        owner: &PasswordOwner<'_>,
    ) -> Result<Password, PasswordPolicyViolation> {
        let password = Password::with_min_length(raw, owner.email, self.min_length)?;
        for validator in &self.validators {
            validator
                .validate(raw, owner)
                .await
                .map_err(PasswordPolicyViolation::Rejected)?;
        }
        Ok(password)
    }
}

impl Default for PasswordRules {
    /// The contract's policy: at least 8 characters, not the address, no
    /// validator of the host's.
    fn default() -> Self {
        Self {
            min_length: Password::MIN_CHARS,
            validators: Vec::new(),
        }
    }
}

impl fmt::Debug for PasswordRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordRules")
            .field("min_length", &self.min_length)
            .field("validators", &self.validators.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{FieldValues, MockPasswordValidator};

    fn refusing(reason: &'static str) -> Arc<dyn PasswordValidator> {
        let mut v = MockPasswordValidator::new();
        v.expect_validate()
            .times(1)
            .returning(move |_, _| Err(reason.to_owned()));
        Arc::new(v)
    }

    #[tokio::test]
    async fn validators_run_in_order_after_the_built_in_checks_and_the_first_refusal_wins() {
        let address = email("ann@example.com");
        let fields = FieldValues::new();
        let owner = PasswordOwner {
            email: &address,
            fields: &fields,
            user: None,
        };
        let mut accepting = MockPasswordValidator::new();
        accepting
            .expect_validate()
            .withf(|p, o| p == "long enough" && o.email.as_str() == "ann@example.com")
            .times(1)
            .returning(|_, _| Ok(()));
        let mut never = MockPasswordValidator::new();
        never.expect_validate().never();
        let rules = PasswordRules {
            min_length: 8,
            validators: vec![Arc::new(accepting), refusing("first"), Arc::new(never)],
        };
        assert_eq!(
            rules.check("long enough", &owner).await,
            Err(PasswordPolicyViolation::Rejected("first".into()))
        );

        // The built-in checks come first: no validator is asked.
        let mut never = MockPasswordValidator::new();
        never.expect_validate().never();
        let rules = PasswordRules {
            min_length: 12,
            validators: vec![Arc::new(never)],
        };
        assert_eq!(
            rules.check("long enough", &owner).await,
            Err(PasswordPolicyViolation::TooShort { min: 12 })
        );
    }

    #[tokio::test]
    async fn a_closure_is_a_validator() {
        let address = email("ann@example.com");
        let fields = FieldValues::new();
        let owner = PasswordOwner {
            email: &address,
            fields: &fields,
            user: None,
        };
        let rules = PasswordRules {
            validators: vec![Arc::new(|p: &str, o: &PasswordOwner<'_>| {
                if p.contains("ann") && o.user.is_none() {
                    Err("Not your name".to_owned())
                } else {
                    Ok(())
                }
            })],
            ..PasswordRules::default()
        };
        assert_eq!(
            rules.check("hi, ann here", &owner).await,
            Err(PasswordPolicyViolation::Rejected("Not your name".into()))
        );
        assert!(rules.check("correct horse", &owner).await.is_ok());
    }
}
