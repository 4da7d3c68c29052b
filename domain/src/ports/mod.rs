//! The ports: what the core needs from the outside world. Adapters implement
//! them; the application uses them as `Arc<dyn Port>`.

mod access_token_store;
mod clock;
mod mailer;
mod oauth_account_store;
mod oauth_provider;
mod password_hasher;
mod password_validator;
mod store;
mod throttle_ledger;
mod token_codec;
mod user_events;
mod user_repository;

pub use access_token_store::{AccessTokenRecord, AccessTokenStore};
pub use clock::{Clock, SystemClock};
pub use mailer::{Mail, MailError, Mailer};
pub use oauth_account_store::{OAuthAccount, OAuthAccountStore};
pub use oauth_provider::{
    OAuthProvider, OAuthProviderError, OAuthState, OAuthStateCodec, OAuthStateError,
    ProviderIdentity,
};
pub use password_hasher::{HashError, PasswordHasher, Verification};
pub use password_validator::{PasswordOwner, PasswordValidator};
pub use store::Store;
pub use throttle_ledger::{ThrottleKind, ThrottleLedger, ThrottleWindow};
pub use token_codec::{AccessClaims, ResetClaims, TokenCodec, TokenError, VerifyClaims};
pub use user_events::{NoEvents, UserEvents};
pub use user_repository::{StoreError, UserRepository};

#[cfg(feature = "mocks")]
pub use access_token_store::MockAccessTokenStore;
#[cfg(feature = "mocks")]
pub use clock::MockClock;
#[cfg(feature = "mocks")]
pub use mailer::MockMailer;
#[cfg(feature = "mocks")]
pub use oauth_account_store::MockOAuthAccountStore;
#[cfg(feature = "mocks")]
pub use oauth_provider::{MockOAuthProvider, MockOAuthStateCodec};
#[cfg(feature = "mocks")]
pub use password_hasher::MockPasswordHasher;
#[cfg(feature = "mocks")]
pub use password_validator::MockPasswordValidator;
#[cfg(feature = "mocks")]
pub use throttle_ledger::MockThrottleLedger;
#[cfg(feature = "mocks")]
pub use token_codec::MockTokenCodec;
#[cfg(feature = "mocks")]
pub use user_events::MockUserEvents;
#[cfg(feature = "mocks")]
pub use user_repository::MockUserRepository;
