//! Portcullis use cases: register, login, logout, forgot/reset password,
//! request/verify e-mail, the current user, and user administration.
//!
//! One module per use case, each returning its own error enum in business
//! words. Of the workspace this crate depends on `portcullis-domain` only: it
//! knows no HTTP, SQL, JWT or SMTP. Every outside effect goes through a port
//! held as `Arc<dyn Port>` in [`Ports`], and the ports are reached only
//! through the use cases of [`UserService`].
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::{
    AccessTokenStore, Clock, PasswordHasher, SystemClock, ThrottleLedger, TokenCodec, UserEvents,
    UserFields, UserRepository,
};

mod admin;
mod auth_rate_limit;
mod authenticate;
mod create_superuser;
mod create_user;
mod error;
mod fields;
mod forgot_password;
mod health;
mod hooks;
mod login;
mod logout;
mod me;
mod password_rules;
mod register;
mod request_verify;
mod reset_password;
mod sessions;
mod trusted_proxies;
mod verify;

#[cfg(test)]
mod secrets_in_logs;
#[cfg(test)]
mod test_support;

pub use admin::{AdminDeleteError, AdminError, AdminUpdateError};
pub use auth_rate_limit::{AuthRateLimit, DEFAULT_AUTH_REQUESTS_PER_MINUTE, TooManyRequests};
pub use authenticate::AuthError;
pub use create_superuser::{CreateSuperuserError, SuperuserOutcome};
pub use create_user::{CreateUserError, NewUser};
pub use error::InfraError;
pub use hooks::HookChain;
pub use login::LoginError;
pub use me::UpdateMeError;
pub use password_rules::PasswordRules;
pub use register::RegisterError;
pub use reset_password::ResetPasswordError;
pub use sessions::{AuthStrategy, InvalidAuthStrategy};
pub use trusted_proxies::{InvalidTrustedProxy, TrustedProxies};
pub use verify::VerifyError;

error::infra_from_port_errors!(
    AdminError,
    AdminUpdateError,
    AdminDeleteError,
    AuthError,
    CreateSuperuserError,
    CreateUserError,
    LoginError,
    UpdateMeError,
    RegisterError,
    ResetPasswordError,
    VerifyError,
);

/// The adapters the use cases work through.
#[derive(Clone)]
pub struct Ports {
    /// Where users are stored.
    pub users: Arc<dyn UserRepository>,
    /// Hashes and checks passwords (and reset-token fingerprints).
    pub hasher: Arc<dyn PasswordHasher>,
    /// Issues and checks access, reset-password and verify-e-mail tokens.
    pub tokens: Arc<dyn TokenCodec>,
    /// The hooks called after the use cases, e.g. a [`HookChain`].
    pub events: Arc<dyn UserEvents>,
    /// Failed-login and mail counts per address, shared by every instance
    /// on one store (normally the user store itself).
    pub throttle: Arc<dyn ThrottleLedger>,
    /// The opaque access tokens of the `database` strategy (normally the
    /// user store itself, for the `ON DELETE CASCADE`).
    pub sessions: Arc<dyn AccessTokenStore>,
}

/// Policy switches of the use cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Refuse login to users who have not verified their e-mail address.
    pub login_requires_verification: bool,
    /// What an access token is (`AUTH_STRATEGY`, default [`AuthStrategy::Jwt`]).
    pub auth_strategy: AuthStrategy,
    /// How long an access token lives (`JWT_ACCESS_TOKEN_EXPIRE_MINUTES`,
    /// default one hour). The token codec enforces it on JWTs; the
    /// `database` strategy's opaque tokens expire this long after they were
    /// stored.
    pub access_token_lifetime: Duration,
}

impl Default for Policy {
    /// Login without verification, the `jwt` strategy, one-hour tokens.
    fn default() -> Self {
        Self {
            login_requires_verification: false,
            auth_strategy: AuthStrategy::default(),
            access_token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Every use case, over one set of ports. Cheap to clone. The ports are
/// reached only through the use cases: an adapter or a host that needs one
/// directly is missing a use case.
///
/// A host builds one with `portcullis::PortcullisBuilder` (or
/// [`UserService::new`] over ports of its own) and may call the use cases
/// directly, each answering with its own error enum:
///
/// ```no_run
/// use portcullis_application::{RegisterError, UserService};
/// use portcullis_domain::{EmailAddress, User};
///
/// /// Registers a user and checks they can log in: the user, or what to tell them.
/// async fn sign_up(service: &UserService, email: &str, password: &str) -> Result<User, String> {
///     let email = EmailAddress::parse(email).map_err(|e| e.to_string())?;
///     match service.register(email.clone(), password).await {
///         Ok(_) => {}
///         Err(RegisterError::InvalidPassword(why)) => return Err(why.reason().into()),
///         Err(RegisterError::AlreadyExists) => return Err("that address has an account".into()),
///         // The cause is for the log, never for the client.
///         Err(RegisterError::Infra(_)) => return Err("try again later".into()),
///     }
///     let token = service.login(email.as_str(), password).await.map_err(|e| e.to_string())?;
///     service.authenticate(&token).await.map_err(|e| e.to_string())
/// }
/// ```
#[derive(Clone)]
pub struct UserService {
    ports: Ports,
    policy: Policy,
    fields: UserFields,
    password_rules: PasswordRules,
    auth_rate_limit: AuthRateLimit,
    trusted_proxies: TrustedProxies,
    clock: Arc<dyn Clock>,
}

impl UserService {
    /// Assembles the use cases over `ports` with `policy`, the default
    /// [`PasswordRules`] (see [`with_password_rules`](Self::with_password_rules))
    /// no extra user field ([`with_user_fields`](Self::with_user_fields)),
    /// the default [`AuthRateLimit`] (30 a minute per client address) and
    /// no trusted proxy.
    pub fn new(ports: Ports, policy: Policy) -> Self {
        Self {
            ports,
            policy,
            fields: UserFields::none(),
            password_rules: PasswordRules::default(),
            auth_rate_limit: AuthRateLimit::default(),
            trusted_proxies: TrustedProxies::none(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same use cases, reading the time from `clock` (default the
    /// system's) where they judge it themselves: the expiry of the
    /// `database` strategy's tokens and their `created_at`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same use cases, for a deployment behind these proxies: the HTTP
    /// adapter takes the client's address from `X-Forwarded-For` when the
    /// peer is one of them (default: none).
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The proxies trusted to report the client's address.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The same use cases, with `rules` for every new password.
    pub fn with_password_rules(mut self, rules: PasswordRules) -> Self {
        self.password_rules = rules;
        self
    }

    /// The password rules in force.
    pub fn password_rules(&self) -> &PasswordRules {
        &self.password_rules
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }
}
