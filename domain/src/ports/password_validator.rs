use async_trait::async_trait;

use crate::{EmailAddress, FieldValues, User};

/// Whose password a [`PasswordValidator`] judges.
#[derive(Debug, Clone, Copy)]
pub struct PasswordOwner<'a> {
    /// The address the password will belong to: the new one when an
    /// administrator changes both address and password.
    pub email: &'a EmailAddress,
    /// The owner's extra field values ([`UserFields`](crate::UserFields)),
    /// as they will be after the change (empty where the use case sets
    /// none).
    pub fields: &'a FieldValues,
    /// The stored user, as before the change: `None` when the password is
    /// for a user being created (register, create user, create superuser).
    pub user: Option<&'a User>,
}

/// A host's own password rule, as FastAPI Users' `validate_password`. It
/// runs after the built-in checks (length, not containing the address), in
/// the order the rules were added; the first refusal wins, and its reason is
/// sent to the client as is, e.g. `400 {"detail": {"code":
/// "REGISTER_INVALID_PASSWORD", "reason": "<your text>"}}`.
///
/// A plain function or closure is a validator:
///
/// ```
/// use portcullis_domain::{PasswordOwner, PasswordValidator};
///
/// let no_company_name = |password: &str, _owner: &PasswordOwner<'_>| {
///     if password.to_lowercase().contains("acme") {
///         Err("Password should not contain the company name".to_owned())
///     } else {
///         Ok(())
///     }
/// };
/// let _: &dyn PasswordValidator = &no_company_name;
/// ```
///
/// An asynchronous one (a breached-password service, …) implements the
/// trait with `#[async_trait]`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordValidator: Send + Sync {
    /// `Ok(())` to accept `password` for `owner`, or `Err(reason)` to refuse
    /// it with `reason`, the text the client reads.
    async fn validate<'a>(&self, password: &str, owner: &PasswordOwner<'a>) -> Result<(), String>;
}

#[async_trait]
impl<F> PasswordValidator for F
where
    F: Fn(&str, &PasswordOwner<'_>) -> Result<(), String> + Send + Sync,
{
    async fn validate<'a>(&self, password: &str, owner: &PasswordOwner<'a>) -> Result<(), String> {
        self(password, owner)
    }
}
