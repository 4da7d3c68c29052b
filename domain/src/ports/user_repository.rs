use std::error::Error;

use async_trait::async_trait;

use crate::{EmailAddress, User, UserId, UserPatch};

/// Why a store operation failed.
///
/// Equality compares the kind, and for [`StoreError::Unavailable`] the
/// message (a cause is not comparable): enough for a test to `assert_eq!`
/// a store's answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already has this e-mail address (case-insensitively).
    #[error("a user with this e-mail address already exists")]
    Conflict,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// The store cannot be reached or failed; the operation may be retried.
    ///
    /// The store's own error (the driver's, a timeout, a corrupt row) is
    /// kept as the [`source`](Error::source); the message repeats it, so a
    /// log line of this error alone says what happened.
    #[error("user store unavailable: {0}")]
    Unavailable(#[source] Box<dyn Error + Send + Sync>),
}

impl StoreError {
    /// [`StoreError::Unavailable`] caused by `cause` (any error, or a
    /// message).
    ///
    /// ```
    /// use std::error::Error;
    /// use portcullis_domain::StoreError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
    /// let err = StoreError::unavailable(io);
    /// assert_eq!(err.to_string(), "user store unavailable: no answer");
    /// assert!(err.source().is_some());
    /// ```
    pub fn unavailable(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Unavailable(cause.into())
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Conflict, Self::Conflict) | (Self::NotFound, Self::NotFound) => true,
            (Self::Unavailable(a), Self::Unavailable(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for StoreError {}

/// Where users live.
///
/// Contract every implementation MUST keep (the store contract suite in
/// `tests/` checks it):
/// - e-mail lookups are case-insensitive ([`EmailAddress::key`]);
/// - `create` and `patch` return [`StoreError::Conflict`] when another user
///   has the same e-mail key, decided atomically by the store (a unique index),
///   never by a read-then-write race: of many concurrent creates of one
///   address, exactly one succeeds;
/// - `patch` and `delete` of an unknown id return [`StoreError::NotFound`];
/// - `patch` writes only the columns it names, so it never undoes a
///   concurrent change to another column (there is no "replace the whole
///   user": every writer read the user earlier, and would undo the others);
/// - a store that cannot answer returns [`StoreError::Unavailable`], never
///   panics.
///
/// Extra user fields ([`UserFields`](crate::UserFields)): a store is given
/// the deployment's fields when it is built (`with_user_fields`), each a
/// real column of the `user` table, so that FastAPI Users on the same
/// database sees them. Then:
/// - `get` and `get_by_email` return [`User::fields`] with a value for every
///   configured field (`FieldValue::Null` included) and nothing for a
///   column that is no configured field;
/// - `create` writes each configured field's value from `user.fields`, or
///   the field's default when absent, drops names that are not configured,
///   and returns the user as stored (with those values);
/// - `patch` writes only the fields `patch.fields` names, as columns of the
///   same atomic update as the other columns (so a concurrent change to
///   another field or column is kept), and ignores names that are not
///   configured;
/// - a value that does not fit its field (the application checks values
///   first) is refused with [`StoreError::Unavailable`] before anything is
///   written;
/// - `replace_password_hash`, `delete` and `ping` do not touch them.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The user with this id, if any.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user with this e-mail address, matched case-insensitively.
    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;
    /// Stores a new user, with a value for each configured extra field (its
    /// default when `user.fields` has none), and returns it as stored.
    async fn create(&self, user: User) -> Result<User, StoreError>;
    /// Changes only the columns `patch` names of user `id`, atomically, and
    /// returns the stored user afterwards (with every other column as it is
    /// stored now, not as the caller last saw it).
    ///
    /// - [`StoreError::NotFound`] when no user has `id`;
    /// - [`StoreError::Conflict`] when the new e-mail's key
    ///   ([`EmailAddress::key`]) belongs to another user, decided atomically
    ///   by the store as for `create`; nothing is changed then;
    ///   a new spelling of the user's own address is no conflict;
    /// - columns the patch does not name are never written, extra fields
    ///   included: only those `patch.fields` names (and that are
    ///   configured) are;
    /// - an empty patch changes nothing and returns the stored user.
    async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError>;
    /// Replaces the password hash of user `id` only if it is still
    /// `current`, atomically (a conditional update): `Ok(true)` when it did,
    /// `Ok(false)` when the hash had changed meanwhile or the user is gone.
    /// This is what makes a reset token single-use even when two requests
    /// race with it, across any number of server processes.
    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError>;
    /// Removes the user.
    async fn delete(&self, id: UserId) -> Result<(), StoreError>;
    /// Whether the store answers at all (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The extra user fields this store reads and writes, when it says
    /// (the three stores of Portcullis do); `None`, the default, for a
    /// store that does not. The builder refuses a store whose fields differ
    /// from the service's, which would silently drop values.
    fn user_fields(&self) -> Option<crate::UserFields> {
        None
    }
}
