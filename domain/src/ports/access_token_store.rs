use std::time::SystemTime;

use async_trait::async_trait;

use super::StoreError;
use crate::UserId;

/// An opaque access token of the `database` strategy, as FastAPI Users'
/// `accesstoken` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The token itself: 43 URL-safe characters (`secrets.token_urlsafe()`),
    /// the table's primary key.
    pub token: String,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it was issued, to the microsecond; it is valid for the access
    /// token lifetime after this.
    pub created_at: SystemTime,
}

/// The sessions of the `database` strategy: FastAPI Users' `accesstoken`
/// table (`token` VARCHAR(43) primary key, `created_at` timestamp with time
/// zone, indexed, `user_id` referencing `user.id` ON DELETE CASCADE).
///
/// Method names carry `access_token` so that a store implementing this and
/// [`UserRepository`](crate::UserRepository) has no two methods of one name.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// Stores a new token. `Conflict` if the token exists, `NotFound` if the
    /// user does not.
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError>;

    /// The token's record if it exists and was created at or after
    /// `not_before` (older ones have expired). Writes nothing.
    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError>;

    /// Deletes the token (nothing if there is none).
    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError>;

    /// Deletes every token of `user` and returns how many there were.
    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError>;

    /// Deletes every token created before `cutoff` and returns how many.
    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError>;
}
