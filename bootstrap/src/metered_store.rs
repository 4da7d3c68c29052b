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
    AccessTokenRecord, AccessTokenStore, EmailAddress, OAuthAccount, OAuthAccountStore, Store,
    StoreError, ThrottleKind, ThrottleLedger, ThrottleWindow, User, UserFields, UserId, UserPatch,
    UserRepository,
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

#[async_trait]
impl OAuthAccountStore for MeteredStore {
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError> {
        count(
            "get_oauth_account",
            self.0.get_oauth_account(oauth_name, account_id).await,
        )
    }

    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
        count("oauth_accounts_of", self.0.oauth_accounts_of(user).await)
    }

    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        count("add_oauth_account", self.0.add_oauth_account(account).await)
    }

    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        count(
            "update_oauth_account",
            self.0.update_oauth_account(account).await,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use portcullis_store_memory::MemoryUserStore;

    use super::*;

    /// Counters by `name{label=value,…}`; gauges and histograms dropped.
    #[derive(Default)]
    struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

    impl Counters {
        fn get(&self) -> BTreeMap<String, u64> {
            let counters = self.0.lock().unwrap();
            counters
                .iter()
                .map(|(k, v)| (k.clone(), v.load(Ordering::SeqCst)))
                .collect()
        }
    }

    impl Recorder for Counters {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            Counter::from_arc(Arc::clone(self.0.lock().unwrap().entry(name).or_default()))
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Runs `work` on this thread with `recorder` as the recorder.
    fn recorded<F: std::future::Future>(recorder: &Counters, work: F) -> F::Output {
        metrics::with_local_recorder(recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(work)
        })
    }

    /// A store that is down: every call fails as unavailable.
    struct Down;

    fn down<T>() -> Result<T, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }

    #[async_trait]
    impl UserRepository for Down {
        async fn get(&self, _: UserId) -> Result<Option<User>, StoreError> {
            down()
        }
        async fn get_by_email(&self, _: &EmailAddress) -> Result<Option<User>, StoreError> {
            down()
        }
        async fn create(&self, _: User) -> Result<User, StoreError> {
            down()
        }
        async fn patch(&self, _: UserId, _: UserPatch) -> Result<User, StoreError> {
            down()
        }
        async fn replace_password_hash(
            &self,
            _: UserId,
            _: &str,
            _: &str,
        ) -> Result<bool, StoreError> {
            down()
        }
        async fn delete(&self, _: UserId) -> Result<(), StoreError> {
            down()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            down()
        }
    }

    #[async_trait]
    impl ThrottleLedger for Down {
        async fn hit(
            &self,
            _: ThrottleKind,
            _: &str,
            _: SystemTime,
            _: Duration,
        ) -> Result<ThrottleWindow, StoreError> {
            down()
        }
        async fn current(
            &self,
            _: ThrottleKind,
            _: &str,
            _: SystemTime,
            _: Duration,
        ) -> Result<Option<ThrottleWindow>, StoreError> {
            down()
        }
        async fn clear(&self, _: ThrottleKind, _: &str) -> Result<(), StoreError> {
            down()
        }
        async fn purge(&self, _: ThrottleKind, _: SystemTime) -> Result<u64, StoreError> {
            down()
        }
    }

    #[async_trait]
    impl AccessTokenStore for Down {
        async fn create_access_token(&self, _: &AccessTokenRecord) -> Result<(), StoreError> {
            down()
        }
        async fn get_access_token(
            &self,
            _: &str,
            _: SystemTime,
        ) -> Result<Option<AccessTokenRecord>, StoreError> {
            down()
        }
        async fn delete_access_token(&self, _: &str) -> Result<(), StoreError> {
            down()
        }
        async fn delete_access_tokens_of(&self, _: UserId) -> Result<u64, StoreError> {
            down()
        }
        async fn purge_access_tokens(&self, _: SystemTime) -> Result<u64, StoreError> {
            down()
        }
    }

    #[async_trait]
    impl OAuthAccountStore for Down {
        async fn get_oauth_account(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<OAuthAccount>, StoreError> {
            down()
        }
        async fn oauth_accounts_of(&self, _: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
            down()
        }
        async fn add_oauth_account(&self, _: &OAuthAccount) -> Result<(), StoreError> {
            down()
        }
        async fn update_oauth_account(&self, _: &OAuthAccount) -> Result<(), StoreError> {
            down()
        }
    }

    #[test]
    fn an_outage_counts_by_operation_and_passes_through() {
        let counters = Counters::default();
        let store = metered(Arc::new(Down));
        let email = EmailAddress::parse("ann@example.com").unwrap();
        recorded(&counters, async {
            assert!(matches!(
                store.get_by_email(&email).await,
                Err(StoreError::Unavailable(_))
            ));
            assert!(store.get_by_email(&email).await.is_err());
            assert!(store.ping().await.is_err());
            let now = SystemTime::now();
            assert!(
                store
                    .hit(
                        ThrottleKind::LoginFailure,
                        "k",
                        now,
                        Duration::from_secs(60)
                    )
                    .await
                    .is_err()
            );
            assert!(store.purge_access_tokens(now).await.is_err());
            assert!(store.get_oauth_account("github", "1").await.is_err());
        });
        assert_eq!(
            counters.get(),
            BTreeMap::from([
                (format!("{STORE_ERRORS}{{operation=get_by_email}}"), 2),
                (format!("{STORE_ERRORS}{{operation=get_oauth_account}}"), 1),
                (format!("{STORE_ERRORS}{{operation=ping}}"), 1),
                (
                    format!("{STORE_ERRORS}{{operation=purge_access_tokens}}"),
                    1
                ),
                (format!("{STORE_ERRORS}{{operation=throttle_hit}}"), 1),
            ])
        );
    }

    #[test]
    fn answers_and_refusals_pass_through_uncounted() {
        let counters = Counters::default();
        let store = metered(Arc::new(MemoryUserStore::new()));
        let email = EmailAddress::parse("ann@example.com").unwrap();
        recorded(&counters, async {
            assert_eq!(store.get_by_email(&email).await, Ok(None));
            assert_eq!(store.ping().await, Ok(()));
            assert_eq!(
                store.delete(UserId::random()).await,
                Err(StoreError::NotFound)
            );
            let account = OAuthAccount {
                id: uuid::Uuid::new_v4(),
                user_id: UserId::random(),
                oauth_name: "github".into(),
                access_token: "t".into(),
                expires_at: None,
                refresh_token: None,
                account_id: "1".into(),
                account_email: "ann@example.com".into(),
            };
            assert_eq!(
                store.add_oauth_account(&account).await,
                Err(StoreError::NotFound)
            );
            assert_eq!(
                store.update_oauth_account(&account).await,
                Err(StoreError::NotFound)
            );
        });
        assert_eq!(counters.get(), BTreeMap::new(), "NotFound is an answer");
    }
}
