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
    AccessTokenStore, Clock, PasswordHasher, ThrottleLedger, TokenCodec, UserEvents, UserFields,
    UserRepository,
};

mod admin;
mod auth_log;
mod auth_rate_limit;
mod authenticate;
mod cookie_transport;
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
mod oauth;
mod password_rules;
mod register;
mod request_verify;
mod reset_password;
mod sessions;
mod throttle;
mod trusted_proxies;
mod verify;

#[cfg(test)]
mod secrets_in_logs;
#[cfg(test)]
mod test_support;

pub use admin::{AdminDeleteError, AdminError, AdminUpdateError};
pub use auth_log::AUTH_LOG_TARGET;
pub use auth_rate_limit::{AuthRateLimit, DEFAULT_AUTH_REQUESTS_PER_MINUTE, TooManyRequests};
pub use authenticate::AuthError;
pub use cookie_transport::{
    AllowedOrigins, DEFAULT_COOKIE_NAME, InvalidCookieSetting, InvalidOrigin, SessionCookie,
    origin_of,
};
pub use create_superuser::{CreateSuperuserError, SuperuserOutcome};
pub use create_user::{CreateUserError, NewUser};
pub use error::InfraError;
pub use hooks::HookChain;
pub use login::LoginError;
pub use me::UpdateMeError;
pub use oauth::{
    OAuth, OAuthAuthorization, OAuthAuthorizeError, OAuthCallback, OAuthCallbackError, OAuthLogin,
    OAuthPolicy,
};
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
    /// The time the throttle windows are counted with.
    pub clock: Arc<dyn Clock>,
}

/// Policy switches of the use cases.
///
/// ```
/// use std::time::Duration;
/// use portcullis_application::{LoginLockout, Policy};
///
/// let policy = Policy::default();
/// assert!(!policy.login_requires_verification);
/// assert_eq!(policy.login_lockout, LoginLockout { failures: 10, window: Duration::from_secs(15 * 60) });
/// assert_eq!(policy.mail_per_address_per_hour, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Refuse login to users who have not verified their e-mail address.
    pub login_requires_verification: bool,
    /// When failed logins lock an address (`LOGIN_LOCKOUT_*`).
    pub login_lockout: LoginLockout,
    /// The most reset and verification mails sent to one address per hour,
    /// together (`MAIL_PER_ADDRESS_PER_HOUR`); `0`: no cap.
    pub mail_per_address_per_hour: u32,
    /// What an access token is (`AUTH_STRATEGY`, default [`AuthStrategy::Jwt`]).
    pub auth_strategy: AuthStrategy,
    /// How long an access token lives (`JWT_ACCESS_TOKEN_EXPIRE_MINUTES`,
    /// default one hour). The token codec enforces it on JWTs; the
    /// `database` strategy's opaque tokens expire this long after they were
    /// stored.
    pub access_token_lifetime: Duration,
}

impl Policy {
    /// [`Policy::mail_per_address_per_hour`] by default.
    pub const DEFAULT_MAIL_PER_ADDRESS_PER_HOUR: u32 = 3;
    /// The window [`Policy::mail_per_address_per_hour`] counts in.
    pub const MAIL_WINDOW: Duration = Duration::from_secs(3600);
}

impl Default for Policy {
    /// No verification required, [`LoginLockout::default`], at most
    /// [`Policy::DEFAULT_MAIL_PER_ADDRESS_PER_HOUR`] mails per address per
    /// hour, the `jwt` strategy, one-hour access tokens.
    fn default() -> Self {
        Self {
            login_requires_verification: false,
            login_lockout: LoginLockout::default(),
            mail_per_address_per_hour: Self::DEFAULT_MAIL_PER_ADDRESS_PER_HOUR,
            auth_strategy: AuthStrategy::default(),
            access_token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// The failed-login lockout: after `failures` failed logins for one address
/// within `window` (counted from the first of them), every login for that
/// address is refused until the window closes
/// ([`LoginError::TooManyAttempts`]). Only usernames that are an e-mail
/// address count: anything else can never log in anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLockout {
    /// Failed logins that lock the address (`LOGIN_LOCKOUT_FAILURES`);
    /// `0`: no lockout.
    pub failures: u32,
    /// How long a count runs from the first failure, and so the longest a
    /// lock lasts (`LOGIN_LOCKOUT_MINUTES`). Must not be zero while
    /// `failures` is not.
    pub window: Duration,
}

impl LoginLockout {
    /// [`LoginLockout::failures`] by default.
    pub const DEFAULT_FAILURES: u32 = 10;
    /// [`LoginLockout::window`] by default: 15 minutes.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

    /// No lockout: failed logins are not even counted.
    pub const OFF: LoginLockout = LoginLockout {
        failures: 0,
        window: Self::DEFAULT_WINDOW,
    };

    /// Whether failed logins are counted.
    pub fn is_on(&self) -> bool {
        self.failures > 0
    }
}

impl Default for LoginLockout {
    /// [`LoginLockout::DEFAULT_FAILURES`] within
    /// [`LoginLockout::DEFAULT_WINDOW`].
    fn default() -> Self {
        Self {
            failures: Self::DEFAULT_FAILURES,
            window: Self::DEFAULT_WINDOW,
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
    session_cookie: SessionCookie,
    allowed_origins: AllowedOrigins,
    cors_origins: AllowedOrigins,
    oauth: Option<Arc<OAuth>>,
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
            session_cookie: SessionCookie::default(),
            allowed_origins: AllowedOrigins::none(),
            cors_origins: AllowedOrigins::none(),
            oauth: None,
        }
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

    /// The same use cases, with this cookie for the cookie transport
    /// (default: [`SessionCookie::default`]).
    pub fn with_session_cookie(mut self, cookie: SessionCookie) -> Self {
        self.session_cookie = cookie;
        self
    }

    /// The cookie of the cookie transport.
    pub fn session_cookie(&self) -> &SessionCookie {
        &self.session_cookie
    }

    /// The same use cases, with these origins allowed to send
    /// cookie-authenticated unsafe requests besides the API's own (default:
    /// none).
    pub fn with_allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// The origins allowed to send cookie-authenticated unsafe requests,
    /// besides the API's own.
    pub fn allowed_origins(&self) -> &AllowedOrigins {
        &self.allowed_origins
    }

    /// The same use cases, with these origins allowed to call the API from a
    /// browser, credentials included (`CORS_ORIGINS`; default: none, no
    /// CORS). The HTTP adapter answers their preflights and grants their
    /// responses; they are meant to be among the
    /// [`allowed_origins`](Self::allowed_origins) too.
    pub fn with_cors_origins(mut self, origins: AllowedOrigins) -> Self {
        self.cors_origins = origins;
        self
    }

    /// The origins allowed to call the API from a browser (CORS).
    pub fn cors_origins(&self) -> &AllowedOrigins {
        &self.cors_origins
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
