use async_trait::async_trait;

use crate::{EmailAddress, User, UserId};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another user already has this e-mail address (case-insensitively).
    #[error("a user with this e-mail address already exists")]
    Conflict,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// The store cannot be reached or failed; the operation may be retried.
    #[error("user store unavailable: {0}")]
    Unavailable(String),
}

/// Where users live.
///
/// Contract every implementation MUST keep (the store contract suite in
/// `tests/` checks it):
/// - e-mail lookups are case-insensitive ([`EmailAddress::key`]);
/// - `create` and `update` return [`StoreError::Conflict`] when another user
///   has the same e-mail key, decided atomically by the store (a unique index),
///   never by a read-then-write race: of many concurrent creates of one
///   address, exactly one succeeds;
/// - `update` and `delete` of an unknown id return [`StoreError::NotFound`];
/// - a store that cannot answer returns [`StoreError::Unavailable`], never
///   panics.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The user with this id, if any.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user with this e-mail address, matched case-insensitively.
    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;
    /// Stores a new user.
    async fn create(&self, user: User) -> Result<User, StoreError>;
    /// Replaces the stored user that has `user.id`.
    async fn update(&self, user: User) -> Result<User, StoreError>;
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
}
