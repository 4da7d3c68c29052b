//! A store that a test switches off, and a server assembled on any store:
//! what the black-box tests of the 503 contract run on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use portcullis::PortcullisBuilder;
use portcullis_domain::{
    AccessTokenRecord, AccessTokenStore, EmailAddress, OAuthAccount, OAuthAccountStore, Store,
    StoreError, ThrottleKind, ThrottleLedger, ThrottleWindow, User, UserId, UserPatch,
    UserRepository,
};
use portcullis_tests::smtp_sink::SmtpSink;
use portcullis_tests::test_app::{
    FRONTEND_URL, JWT_SECRET, RESET_SECRET, TestApp, TestDatabase, VERIFY_SECRET,
};

/// What the switched-off store says: a cause with details (a host, a
/// password) that must never reach a client.
pub const CAUSE: &str = "connection to db-7.internal:5432 refused (password=hunter2)";

/// Wraps a store (its users and its counts); while down, every operation
/// fails as
/// `StoreError::Unavailable(CAUSE)`, and is counted.
pub struct Switchable {
    inner: Arc<dyn Store>,
    down: AtomicBool,
    failures: AtomicUsize,
}

impl Switchable {
    /// `inner`, up.
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            down: AtomicBool::new(false),
            failures: AtomicUsize::new(0),
        })
    }

    /// Switches the store off (`true`) or on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many operations failed because the store was down.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::unavailable(CAUSE));
        }
        Ok(())
    }
}

#[async_trait]
impl UserRepository for Switchable {
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.check()?;
        self.inner.get(id).await
    }

    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        self.check()?;
        self.inner.get_by_email(email).await
    }

    async fn create(&self, user: User) -> Result<User, StoreError> {
        self.check()?;
        self.inner.create(user).await
    }

    async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError> {
        self.check()?;
        self.inner.patch(id, patch).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.replace_password_hash(id, current, new).await
    }

    async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
}

#[async_trait]
impl ThrottleLedger for Switchable {
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError> {
        self.check()?;
        self.inner.hit(kind, key, now, window).await
    }

    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError> {
        self.check()?;
        self.inner.current(kind, key, now, window).await
    }

    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.clear(kind, key).await
    }

    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge(kind, cutoff).await
    }
}

#[async_trait]
impl AccessTokenStore for Switchable {
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_access_token(record).await
    }

    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.check()?;
        self.inner.get_access_token(token, not_before).await
    }

    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_access_token(token).await
    }

    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.delete_access_tokens_of(user).await
    }

    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_access_tokens(cutoff).await
    }
}

#[async_trait]
impl OAuthAccountStore for Switchable {
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError> {
        self.check()?;
        self.inner.get_oauth_account(oauth_name, account_id).await
    }

    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
        self.check()?;
        self.inner.oauth_accounts_of(user).await
    }

    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_oauth_account(account).await
    }

    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update_oauth_account(account).await
    }
}

/// A whole server on `store`, with the harness's secrets (so that its
/// token helpers work) and `/api` as prefix, served on a free port.
pub async fn spawn_app_on(store: Arc<dyn Store>, database_url: &str) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let service = PortcullisBuilder::new()
        .store(store)
        .token_secrets(JWT_SECRET, RESET_SECRET, VERIFY_SECRET)
        .frontend_url(FRONTEND_URL)
        .build()
        .expect("the service builds");
    let server = portcullis::serve(service, "/api", listener).expect("the server starts");
    actix_web::rt::spawn(server);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        api_prefix: "/api".into(),
        sink: SmtpSink::start().await,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .disable_redirects()
            .finish(),
        database: TestDatabase::external(database_url),
    }
}
