use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::UserId;

/// A provider account linked to a user (social login), as FastAPI Users'
/// `oauth_account` table holds it: `id` UUID primary key, `oauth_name`
/// VARCHAR(100) indexed, `access_token` VARCHAR(1024), `expires_at` INTEGER
/// nullable, `refresh_token` VARCHAR(1024) nullable, `account_id`
/// VARCHAR(320) indexed, `account_email` VARCHAR(320), `user_id` UUID
/// referencing `user.id` ON DELETE CASCADE.
///
/// `Debug` leaves the provider tokens out.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthAccount {
    /// The row's own id.
    pub id: Uuid,
    /// Whose account it is.
    pub user_id: UserId,
    /// The provider's name as configured (`github`, `google`, …).
    pub oauth_name: String,
    /// The provider's access token.
    pub access_token: String,
    /// When the provider's access token expires (Unix seconds), if it said.
    pub expires_at: Option<i64>,
    /// The provider's refresh token, if it gave one.
    pub refresh_token: Option<String>,
    /// The account's id at the provider (`sub` or `id`).
    pub account_id: String,
    /// The account's e-mail address as the provider gave it.
    pub account_email: String,
}

impl std::fmt::Debug for OAuthAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthAccount")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("oauth_name", &self.oauth_name)
            .field("expires_at", &self.expires_at)
            .field("account_id", &self.account_id)
            .field("account_email", &self.account_email)
            .finish_non_exhaustive()
    }
}

/// The provider accounts linked to users: FastAPI Users' `oauth_account`
/// table (see [`OAuthAccount`]).
///
/// Method names carry `oauth_account` so that a store implementing this and
/// [`UserRepository`](crate::UserRepository) has no two methods of one name.
///
/// Contract (the store contract suite checks it):
/// - one provider account (`oauth_name`, `account_id`) is linked to at most
///   one row: `add_oauth_account` of a pair already stored returns
///   [`StoreError::Conflict`], decided atomically by the store, so that two
///   concurrent callbacks cannot link it twice;
/// - `add_oauth_account` for an unknown user returns
///   [`StoreError::NotFound`];
/// - deleting a user deletes its accounts;
/// - a store that cannot answer returns [`StoreError::Unavailable`].
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OAuthAccountStore: Send + Sync {
    /// The account `account_id` at provider `oauth_name`, if linked.
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError>;

    /// Every account linked to `user`, ordered by `oauth_name`, then
    /// `account_id` (byte order; FastAPI Users' table keeps no link time to
    /// order by age).
    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError>;

    /// Links a new account (see the contract for `Conflict` and `NotFound`).
    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError>;

    /// Replaces the provider tokens, expiry and e-mail of the row with
    /// `account.id` (its `user_id`, `oauth_name` and `account_id` are kept);
    /// [`StoreError::NotFound`] when there is no such row.
    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError>;
}
