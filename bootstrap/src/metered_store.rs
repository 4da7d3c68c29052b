//! `portcullis_store_errors_total`: a store wrapped so that every failed
//! call counts, labelled with its `operation` (the port method, e.g.
//! `get_by_email`). Only [`StoreError::Unavailable`] counts: `Conflict` and
//! `NotFound` are answers of the ports' contracts (a taken address, a gone
//! user), not failures.
//!
//! Installed by `serve` only when `METRICS_ADDR` is set, so a server
//! without metrics pays nothing for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use portcullis_domain::{
    AccessTokenRecord, AccessTokenStore, EmailAddress, Store, StoreError, ThrottleKind,
    ThrottleLedger, ThrottleWindow, User, UserFields, UserId, UserPatch, UserRepository,
};

/// The counter's name.
pub(crate) const STORE_ERRORS: &str = "portcullis_store_errors_total";

/// `store`, with its failures counted.
pub(crate) fn metered(store: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(MeteredStore(store))
}

struct MeteredStore(Arc<dyn Store>);

/// `outcome`, counted in [`STORE_ERRORS`] when it is an outage.
fn count<T>(operation: &'static str, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(StoreError::Unavailable(_)) = &outcome {
        metrics::counter!(STORE_ERRORS, "operation" => operation).increment(1);
    }
    outcome
}

#[async_trait]
impl UserRepository for MeteredStore {
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        count("get", self.0.get(id).await)
    }

    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        count("get_by_email", self.0.get_by_email(email).await)
    }

    async fn create(&self, user: User) -> Result<User, StoreError> {
        count("create", self.0.create(user).await)
    }

    async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError> {
        count("patch", self.0.patch(id, patch).await)
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        count(
            "replace_password_hash",
            self.0.replace_password_hash(id, current, new).await,
        )
    }

    async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        count("delete", self.0.delete(id).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        count("ping", self.0.ping().await)
    }

    fn user_fields(&self) -> Option<UserFields> {
        self.0.user_fields()
    }
}

#[async_trait]
impl ThrottleLedger for MeteredStore {
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError> {
        count("throttle_hit", self.0.hit(kind, key, now, window).await)
    }

    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError> {
        count(
            "throttle_current",
            self.0.current(kind, key, now, window).await,
        )
    }

    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
        count("throttle_clear", self.0.clear(kind, key).await)
    }

    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
        count("throttle_purge", self.0.purge(kind, cutoff).await)
    }
}

#[async_trait]
impl AccessTokenStore for MeteredStore {
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError> {
        count(
            "create_access_token",
            self.0.create_access_token(record).await,
        )
    }

    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        count(
            "get_access_token",
            self.0.get_access_token(token, not_before).await,
        )
    }

    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError> {
        count(
            "delete_access_token",
            self.0.delete_access_token(token).await,
        )
    }

    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError> {
        count(
            "delete_access_tokens_of",
            self.0.delete_access_tokens_of(user).await,
        )
    }

    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        count(
            "purge_access_tokens",
            self.0.purge_access_tokens(cutoff).await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_store_memory::MemoryUserStore;

    #[tokio::test]
    async fn answers_and_refusals_pass_through_unchanged() {
        let store = metered(Arc::new(MemoryUserStore::new()));
        let email = EmailAddress::parse("ann@example.com").unwrap();
        assert_eq!(store.get_by_email(&email).await, Ok(None));
        assert_eq!(store.ping().await, Ok(()));
        assert_eq!(
            store.delete(UserId::random()).await,
            Err(StoreError::NotFound)
        );
    }
}
