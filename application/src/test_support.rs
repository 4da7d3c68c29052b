//! Mocks of the ports for the use-case unit tests.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_domain::{
    EmailAddress, HashError, PasswordHasher, ResetClaims, StoreError, TokenCodec, TokenError, User,
    UserChanges, UserEvents, UserId, UserPatch, UserRepository, Verification, VerifyClaims,
};

use crate::{Policy, Ports, UserService};

mockall::mock! {
    pub Users {}
    #[async_trait]
    impl UserRepository for Users {
        async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;
        async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;
        async fn create(&self, user: User) -> Result<User, StoreError>;
        async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError>;
        async fn replace_password_hash(&self, id: UserId, current: &str, new: &str) -> Result<bool, StoreError>;
        async fn delete(&self, id: UserId) -> Result<(), StoreError>;
        async fn ping(&self) -> Result<(), StoreError>;
    }
}

mockall::mock! {
    pub Hasher {}
    #[async_trait]
    impl PasswordHasher for Hasher {
        async fn hash(&self, secret: &str) -> Result<String, HashError>;
        async fn verify_and_update(&self, secret: &str, hash: &str) -> Result<Verification, HashError>;
    }
}

mockall::mock! {
    pub Tokens {}
    impl TokenCodec for Tokens {
        fn issue_access(&self, user: UserId) -> Result<String, TokenError>;
        fn verify_access(&self, token: &str) -> Result<String, TokenError>;
        fn issue_reset(&self, user: UserId, password_fingerprint: &str) -> Result<String, TokenError>;
        fn verify_reset(&self, token: &str) -> Result<ResetClaims, TokenError>;
        fn issue_verify(&self, user: UserId, email: &EmailAddress) -> Result<String, TokenError>;
        fn verify_verify(&self, token: &str) -> Result<VerifyClaims, TokenError>;
    }
}

mockall::mock! {
    pub Events {}
    #[async_trait]
    impl UserEvents for Events {
        async fn on_after_register(&self, user: &User);
        async fn on_after_login(&self, user: &User);
        async fn on_after_forgot_password(&self, user: &User, token: &str);
        async fn on_after_reset_password(&self, user: &User);
        async fn on_after_request_verify(&self, user: &User, token: &str);
        async fn on_after_verify(&self, user: &User);
        async fn on_after_update(&self, user: &User, changes: &UserChanges);
        async fn on_before_delete(&self, user: &User);
        async fn on_after_delete(&self, user: &User);
    }
}

/// One mock per port; set expectations, then call [`Mocks::service`].
/// A call nobody expected fails the test.
pub struct Mocks {
    pub users: MockUsers,
    pub hasher: MockHasher,
    pub tokens: MockTokens,
    pub events: MockEvents,
    pub policy: Policy,
}

impl Mocks {
    pub fn new() -> Self {
        Self {
            users: MockUsers::new(),
            hasher: MockHasher::new(),
            tokens: MockTokens::new(),
            events: MockEvents::new(),
            policy: Policy::default(),
        }
    }

    pub fn service(self) -> UserService {
        UserService::new(
            Ports {
                users: Arc::new(self.users),
                hasher: Arc::new(self.hasher),
                tokens: Arc::new(self.tokens),
                events: Arc::new(self.events),
            },
            self.policy,
        )
    }
}

pub fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

pub fn a_user() -> User {
    User::new(email("Ann@example.com"), "$argon2id$old".into())
}

pub fn valid(new_hash: Option<&str>) -> Result<Verification, HashError> {
    Ok(Verification {
        valid: true,
        new_hash: new_hash.map(str::to_owned),
    })
}

pub fn invalid() -> Result<Verification, HashError> {
    Ok(Verification {
        valid: false,
        new_hash: None,
    })
}
