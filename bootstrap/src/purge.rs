//! Forgetting what has expired, so that the store's tables hold what is
//! still live rather than everything ever written:
//!
//! - closed failed-login and mail windows ([`purge_throttle_windows`]):
//!   `portcullis_throttle` holds about one row per address that failed a
//!   login or was mailed lately rather than one per address ever seen;
//! - expired access tokens of the `database` strategy
//!   ([`purge_expired_access_tokens`]): FastAPI Users' `accesstoken` holds
//!   the sessions still valid rather than every login ever made (FastAPI
//!   Users itself never deletes an expired token).
//!
//! `portcullis serve` ([`start`](crate::start)) runs [`purge_expired`]
//! every [`PURGE_INTERVAL`] ([`spawn_purge`]); a host that serves with its
//! own builder may do the same with its store.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::rt::task::JoinHandle;
use actix_web::rt::time::{Instant, interval_at};
use portcullis_domain::{AccessTokenStore, Store, ThrottleKind, ThrottleLedger};

use crate::superuser::with_causes;

/// How often `portcullis serve` purges: every 10 minutes.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// How long a window of `kind` is kept after it opened: at least the
/// longest window of that kind, so that only closed windows are purged.
/// Failed logins: 24 hours (any `LOGIN_LOCKOUT_MINUTES` up to a day); mails:
/// 1 hour (`MAIL_PER_ADDRESS_PER_HOUR`'s window).
pub fn throttle_retention(kind: ThrottleKind) -> Duration {
    const HOUR: Duration = Duration::from_secs(60 * 60);
    match kind {
        ThrottleKind::LoginFailure => 24 * HOUR,
        ThrottleKind::Mail => HOUR,
    }
}

/// Purges, for each kind, the windows that opened more than
/// [`throttle_retention`] before `now`, and returns how many went. Counts
/// are logged at DEBUG; a store error is logged at WARN (with its causes)
/// and the other kinds are still purged.
pub async fn purge_throttle_windows(ledger: &dyn ThrottleLedger, now: SystemTime) -> u64 {
    let mut purged = 0;
    for kind in ThrottleKind::ALL {
        let cutoff = now
            .checked_sub(throttle_retention(kind))
            .unwrap_or(UNIX_EPOCH);
        match ledger.purge(kind, cutoff).await {
            Ok(count) => {
                tracing::debug!(
                    kind = kind.as_str(),
                    purged = count,
                    "throttle windows purged"
                );
                purged += count;
            }
            Err(e) => tracing::warn!(
                kind = kind.as_str(),
                "cannot purge throttle windows: {}",
                with_causes(&e)
            ),
        }
    }
    purged
}

/// Purges the access tokens created more than `lifetime` (the access token
/// lifetime, `JWT_ACCESS_TOKEN_EXPIRE_MINUTES`) before `now`: those no
/// lookup accepts any more. Returns how many went; the count is logged at
/// DEBUG, a store error at WARN (with its causes), and then it is 0.
pub async fn purge_expired_access_tokens(
    sessions: &dyn AccessTokenStore,
    now: SystemTime,
    lifetime: Duration,
) -> u64 {
    let cutoff = now.checked_sub(lifetime).unwrap_or(UNIX_EPOCH);
    match sessions.purge_access_tokens(cutoff).await {
        Ok(count) => {
            tracing::debug!(purged = count, "expired access tokens purged");
            count
        }
        Err(e) => {
            tracing::warn!("cannot purge expired access tokens: {}", with_causes(&e));
            0
        }
    }
}

/// Both purges on one store: [`purge_throttle_windows`] and
/// [`purge_expired_access_tokens`] with `access_token_lifetime`. Returns how
/// many rows went in all; a failure of one does not stop the other.
pub async fn purge_expired(
    store: &dyn Store,
    now: SystemTime,
    access_token_lifetime: Duration,
) -> u64 {
    purge_throttle_windows(store, now).await
        + purge_expired_access_tokens(store, now, access_token_lifetime).await
}

/// Spawns (on the current actix/Tokio runtime) a task that runs
/// [`purge_expired`] every `every` (at least 1 ms), the first time one
/// `every` from now. It holds `store` weakly: it ends by itself once
/// nothing else holds it (the server that used it has stopped).
pub fn spawn_purge(
    store: &Arc<dyn Store>,
    access_token_lifetime: Duration,
    every: Duration,
) -> JoinHandle<()> {
    let store = Arc::downgrade(store);
    let every = every.max(Duration::from_millis(1));
    actix_web::rt::spawn(async move {
        let mut ticks = interval_at(Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else {
                break;
            };
            purge_expired(store.as_ref(), SystemTime::now(), access_token_lifetime).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use portcullis_domain::{AccessTokenRecord, StoreError, ThrottleWindow, User, UserRepository};
    use portcullis_store_memory::MemoryUserStore;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(hours_ago: u32, now: SystemTime) -> SystemTime {
        now - HOUR * hours_ago
    }

    /// Opens a window of `kind` for `key` at `started`.
    async fn open(store: &dyn ThrottleLedger, kind: ThrottleKind, key: &str, started: SystemTime) {
        store.hit(kind, key, started, HOUR).await.unwrap();
    }

    /// The keys of `kind` that still have a window (any age).
    async fn kept(store: &dyn ThrottleLedger, kind: ThrottleKind, keys: &[&str]) -> Vec<String> {
        let mut kept = Vec::new();
        for key in keys {
            let forever = Duration::from_secs(100 * 365 * 24 * 3600);
            if store
                .current(kind, key, SystemTime::now(), forever)
                .await
                .unwrap()
                .is_some()
            {
                kept.push((*key).to_owned());
            }
        }
        kept
    }

    #[tokio::test]
    async fn purges_only_windows_older_than_their_kinds_retention() {
        let store = MemoryUserStore::new();
        let now = SystemTime::now();
        let login = ThrottleKind::LoginFailure;
        let mail = ThrottleKind::Mail;
        open(&store, login, "login-25h", at(25, now)).await;
        open(&store, login, "login-23h", at(23, now)).await;
        open(&store, login, "login-2h", at(2, now)).await;
        open(&store, mail, "mail-2h", at(2, now)).await;
        open(&store, mail, "mail-59m", now - Duration::from_secs(59 * 60)).await;

        assert_eq!(purge_throttle_windows(&store, now).await, 2);
        assert_eq!(
            kept(&store, login, &["login-25h", "login-23h", "login-2h"]).await,
            ["login-23h", "login-2h"]
        );
        assert_eq!(
            kept(&store, mail, &["mail-2h", "mail-59m"]).await,
            ["mail-59m"]
        );
        assert_eq!(
            purge_throttle_windows(&store, now).await,
            0,
            "nothing left to purge"
        );
    }

    /// A ledger whose purge of failed logins fails; mails are purged.
    struct HalfBroken(Arc<MemoryUserStore>);

    #[async_trait]
    impl ThrottleLedger for HalfBroken {
        async fn hit(
            &self,
            kind: ThrottleKind,
            key: &str,
            now: SystemTime,
            window: Duration,
        ) -> Result<ThrottleWindow, StoreError> {
            self.0.hit(kind, key, now, window).await
        }
        async fn current(
            &self,
            kind: ThrottleKind,
            key: &str,
            now: SystemTime,
            window: Duration,
        ) -> Result<Option<ThrottleWindow>, StoreError> {
            self.0.current(kind, key, now, window).await
        }
        async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
            self.0.clear(kind, key).await
        }
        async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
            match kind {
                ThrottleKind::LoginFailure => Err(StoreError::unavailable("database away")),
                ThrottleKind::Mail => self.0.purge(kind, cutoff).await,
            }
        }
    }

    #[tokio::test]
    async fn a_store_error_on_one_kind_still_purges_the_others() {
        let store = Arc::new(MemoryUserStore::new());
        let now = SystemTime::now();
        open(store.as_ref(), ThrottleKind::LoginFailure, "a", at(30, now)).await;
        open(store.as_ref(), ThrottleKind::Mail, "a", at(30, now)).await;
        let ledger = HalfBroken(Arc::clone(&store));
        assert_eq!(purge_throttle_windows(&ledger, now).await, 1);
        assert_eq!(
            kept(store.as_ref(), ThrottleKind::Mail, &["a"]).await,
            Vec::<String>::new()
        );
        assert_eq!(
            kept(store.as_ref(), ThrottleKind::LoginFailure, &["a"]).await,
            ["a"]
        );
    }

    /// A user of `store` with tokens created `ages` ago (tokens `t0`, `t1`…).
    async fn with_tokens(store: &MemoryUserStore, now: SystemTime, ages: &[Duration]) -> User {
        let ann = User::new(
            portcullis_domain::EmailAddress::parse("ann@example.com").unwrap(),
            "$argon2id$…".into(),
        );
        let ann = store.create(ann).await.unwrap();
        for (i, age) in ages.iter().enumerate() {
            let record = AccessTokenRecord {
                token: format!("t{i}"),
                user_id: ann.id,
                created_at: now - *age,
            };
            store.create_access_token(&record).await.unwrap();
        }
        ann
    }

    /// The tokens of `names` that are still stored (any age).
    async fn tokens_kept(store: &dyn AccessTokenStore, names: &[&str]) -> Vec<String> {
        let mut kept = Vec::new();
        for name in names {
            if store
                .get_access_token(name, UNIX_EPOCH)
                .await
                .unwrap()
                .is_some()
            {
                kept.push((*name).to_owned());
            }
        }
        kept
    }

    #[tokio::test]
    async fn purges_only_access_tokens_older_than_the_lifetime() {
        let store = MemoryUserStore::new();
        let now = SystemTime::now();
        let lifetime = HOUR;
        with_tokens(
            &store,
            now,
            &[
                HOUR + Duration::from_secs(1),
                HOUR,
                HOUR - Duration::from_secs(1),
                Duration::ZERO,
            ],
        )
        .await;
        assert_eq!(
            purge_expired_access_tokens(&store, now, lifetime).await,
            1,
            "only the one created before now - lifetime"
        );
        assert_eq!(
            tokens_kept(&store, &["t0", "t1", "t2", "t3"]).await,
            ["t1", "t2", "t3"]
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            purge_expired_access_tokens(&store, later, lifetime).await,
            2
        );
        assert_eq!(tokens_kept(&store, &["t1", "t2", "t3"]).await, ["t3"]);
    }

    #[tokio::test]
    async fn purge_expired_purges_both_windows_and_tokens() {
        let store = MemoryUserStore::new();
        let now = SystemTime::now();
        open(&store, ThrottleKind::Mail, "old", at(2, now)).await;
        with_tokens(&store, now, &[HOUR * 2, Duration::ZERO]).await;
        assert_eq!(purge_expired(&store, now, HOUR).await, 2);
        assert_eq!(tokens_kept(&store, &["t0", "t1"]).await, ["t1"]);
        assert_eq!(
            kept(&store, ThrottleKind::Mail, &["old"]).await,
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_task_purges_periodically_and_ends_with_its_store() {
        actix_web::rt::System::new().block_on(async {
            let memory = Arc::new(MemoryUserStore::new());
            let long_ago = SystemTime::now() - HOUR * 48;
            with_tokens(&memory, SystemTime::now(), &[HOUR * 48]).await;
            let store: Arc<dyn Store> = memory.clone();
            open(store.as_ref(), ThrottleKind::LoginFailure, "old", long_ago).await;
            let task = spawn_purge(&store, HOUR, Duration::from_millis(10));

            let deadline = Instant::now() + Duration::from_secs(10);
            while !kept(store.as_ref(), ThrottleKind::LoginFailure, &["old"])
                .await
                .is_empty()
                || !tokens_kept(store.as_ref(), &["t0"]).await.is_empty()
            {
                assert!(Instant::now() < deadline, "the task never purged");
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
            // A window opened again is purged again: the task keeps running.
            open(store.as_ref(), ThrottleKind::LoginFailure, "old", long_ago).await;
            while !kept(store.as_ref(), ThrottleKind::LoginFailure, &["old"])
                .await
                .is_empty()
            {
                assert!(Instant::now() < deadline, "the task purged only once");
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }

            drop(store);
            drop(memory);
            actix_web::rt::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the task ends once nothing holds its store")
                .expect("the task did not panic");
        });
    }
}
