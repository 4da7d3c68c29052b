//! Assembling Portcullis in code: what a host application uses instead of
//! environment variables. `portcullis serve` is one caller of this builder.

use std::sync::Arc;
use std::time::Duration;

use portcullis_application::{
    AllowedOrigins, AuthRateLimit, AuthStrategy, DEFAULT_COOKIE_NAME, HookChain,
    InvalidCookieSetting, LoginLockout, PasswordRules, Policy, Ports, SessionCookie,
    TrustedProxies, UserService, origin_of,
};
#[cfg(feature = "oauth")]
use portcullis_application::{OAuth, OAuthPolicy};
#[cfg(feature = "oauth")]
use portcullis_domain::OAuthAccountStore;
use portcullis_domain::{
    AccessTokenStore, Clock, InvalidUserField, Mailer, PasswordHasher, PasswordValidator, Store,
    SystemClock, ThrottleLedger, UserEvents, UserFields, UserRepository,
};
#[cfg(feature = "oauth")]
use portcullis_jwt_josekit::JosekitOAuthStateCodec;
use portcullis_jwt_josekit::{JosekitTokenCodec, TokenSettings};
use portcullis_mail::{LogMailer, MailingUserEvents};
#[cfg(feature = "oauth")]
use portcullis_oauth::{HttpOAuthProvider, ProviderSettings};
use portcullis_password::{HasherConfig, PhcPasswordHasher};
use portcullis_store_memory::MemoryUserStore;
use secrecy::SecretSlice;
#[cfg(feature = "oauth")]
use secrecy::SecretString;

/// Why the pieces given to [`PortcullisBuilder`] do not make a service.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Token secrets are required: there is no safe default.
    #[error("token secrets are not set: call PortcullisBuilder::token_secrets")]
    MissingSecrets,
    /// Social login cannot be set up: no state secret, a bad provider URL,
    /// or no store for the provider accounts.
    #[error("social login: {0}")]
    OAuth(String),
    /// The token signer refused the secrets or lifetimes (e.g. a secret
    /// shorter than 32 bytes).
    #[error("tokens: {0}")]
    Tokens(String),
    /// The built-in hasher refused its [`HasherConfig`].
    #[error("password hasher: {0}")]
    Hasher(String),
    /// The minimum password length is 0 or above
    /// [`PasswordRules::MAX_MIN_LENGTH`].
    #[error("password minimum length {0}: must be between 1 and {max}", max = PasswordRules::MAX_MIN_LENGTH)]
    PasswordMinLength(usize),
    /// The failed-login lockout is on with a zero window.
    #[error("login lockout: the window must be longer than zero while failures are counted")]
    LoginLockoutWindow,
    /// An extra user field is declared wrongly (the message names it).
    #[error(transparent)]
    UserFields(#[from] InvalidUserField),
    /// The store was given other extra user fields than the builder: its
    /// columns would not hold what the service accepts.
    #[error(
        "the store reads and writes other user fields than the builder was given: pass the \
         same UserFields to the store's with_user_fields and to PortcullisBuilder::user_fields"
    )]
    StoreFieldsDiffer,
    /// The session cookie's name or domain cannot be sent in a `Set-Cookie`
    /// header.
    #[error("session cookie: {0}")]
    Cookie(#[from] InvalidCookieSetting),
}

/// Builds a [`UserService`]: store, hasher, token secrets and lifetimes,
/// mailer, hooks, policy and password rules, each with a sensible default
/// except the secrets.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::PortcullisBuilder;
/// use portcullis_store_memory::MemoryUserStore;
///
/// let service = PortcullisBuilder::new()
///     .store(Arc::new(MemoryUserStore::new()))
///     .token_secrets(
///         "an access token secret of 32+ bytes!",
///         "a reset token secret of 32+ bytes!!!",
///         "a verify token secret of 32+ bytes!!",
///     )
///     .frontend_url("https://app.example.com")
///     .login_requires_verification(true)
///     .build()
///     .expect("valid settings");
/// assert!(service.policy().login_requires_verification);
/// ```
pub struct PortcullisBuilder {
    store: Option<Arc<dyn Store>>,
    throttle: Option<Arc<dyn ThrottleLedger>>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    hasher_config: HasherConfig,
    secrets: Option<(SecretSlice<u8>, SecretSlice<u8>, SecretSlice<u8>)>,
    access_lifetime: Duration,
    reset_lifetime: Duration,
    verify_lifetime: Duration,
    clock: Arc<dyn Clock>,
    mailer: Option<Arc<dyn Mailer>>,
    frontend_url: String,
    events: Vec<Arc<dyn UserEvents>>,
    default_mails: bool,
    policy: Policy,
    password_rules: PasswordRules,
    user_fields: Result<UserFields, InvalidUserField>,
    auth_rate_limit: u32,
    trusted_proxies: TrustedProxies,
    cookie_name: String,
    cookie_secure: bool,
    cookie_domain: Option<String>,
    cors_origins: AllowedOrigins,
    #[cfg(feature = "oauth")]
    oauth: OAuthParts,
}

/// What [`PortcullisBuilder`]'s `oauth_*` methods gathered (feature
/// `oauth`).
#[cfg(feature = "oauth")]
#[derive(Default)]
struct OAuthParts {
    providers: Vec<ProviderSettings>,
    state_secret: Option<SecretString>,
    policy: OAuthPolicy,
    accounts: Option<Arc<dyn OAuthAccountStore>>,
}

impl Default for PortcullisBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PortcullisBuilder {
    /// Defaults: in-memory store, argon2id at OWASP parameters, one-hour
    /// tokens, mails to the log with links under `http://localhost:3000`,
    /// login without verification. Secrets must be set.
    pub fn new() -> Self {
        Self {
            store: None,
            throttle: None,
            hasher: None,
            hasher_config: HasherConfig::default(),
            secrets: None,
            access_lifetime: Duration::from_secs(3600),
            reset_lifetime: Duration::from_secs(3600),
            verify_lifetime: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
            mailer: None,
            frontend_url: "http://localhost:3000".into(),
            events: Vec::new(),
            default_mails: true,
            policy: Policy::default(),
            user_fields: Ok(UserFields::none()),
            password_rules: PasswordRules::default(),
            auth_rate_limit: portcullis_application::DEFAULT_AUTH_REQUESTS_PER_MINUTE,
            trusted_proxies: TrustedProxies::none(),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            cookie_secure: true,
            cookie_domain: None,
            cors_origins: AllowedOrigins::none(),
            #[cfg(feature = "oauth")]
            oauth: OAuthParts::default(),
        }
    }

    /// Adds a social-login provider (`OAUTH_PROVIDERS`, `OAUTH_<NAME>_*`):
    /// its routes are `GET {prefix}/auth/{name}/authorize|callback`, the
    /// cookie variant's `{prefix}/auth/cookie/{name}/…` and the associate
    /// flow's `{prefix}/auth/associate/{name}/…`. Needs
    /// [`oauth_state_secret`](Self::oauth_state_secret) and a store for the
    /// provider accounts ([`oauth_accounts`](Self::oauth_accounts), or the
    /// default memory store).
    ///
    /// (feature `oauth`.)
    #[cfg(feature = "oauth")]
    pub fn oauth_provider(mut self, provider: ProviderSettings) -> Self {
        self.oauth.providers.push(provider);
        self
    }

    /// The secret OAuth state tokens are signed with (`OAUTH_STATE_SECRET`,
    /// at least 32 bytes).
    ///
    /// (feature `oauth`.)
    #[cfg(feature = "oauth")]
    pub fn oauth_state_secret(mut self, secret: impl Into<String>) -> Self {
        self.oauth.state_secret = Some(SecretString::from(secret.into()));
        self
    }

    /// Link a provider account to the existing user of its address when the
    /// provider says it is verified (`OAUTH_ASSOCIATE_BY_EMAIL`, default
    /// `false`).
    ///
    /// (feature `oauth`.)
    #[cfg(feature = "oauth")]
    pub fn oauth_associate_by_email(mut self, associate: bool) -> Self {
        self.oauth.policy.associate_by_email = associate;
        self
    }

    /// `is_verified` of users a social login creates
    /// (`OAUTH_VERIFIED_BY_DEFAULT`, default `false`).
    ///
    /// (feature `oauth`.)
    #[cfg(feature = "oauth")]
    pub fn oauth_verified_by_default(mut self, verified: bool) -> Self {
        self.oauth.policy.verified_by_default = verified;
        self
    }

    /// Where provider accounts live (FastAPI Users' `oauth_account` table).
    /// Default: the [`store`](Self::store) (the table references the
    /// users).
    ///
    /// (feature `oauth`.)
    #[cfg(feature = "oauth")]
    pub fn oauth_accounts(mut self, accounts: Arc<dyn OAuthAccountStore>) -> Self {
        self.oauth.accounts = Some(accounts);
        self
    }

    /// Where users live, and failed-login and mail counts and the access
    /// tokens of the `database` strategy with them (a [`Store`] is a
    /// [`UserRepository`], a [`ThrottleLedger`] and an
    /// [`AccessTokenStore`]): every instance on the store's database shares
    /// the counts and the sessions. Default: one [`MemoryUserStore`] of
    /// this process for all three.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Keeps failed-login and mail counts in `ledger` instead of the store
    /// (see [`ThrottleLedger`]): for a host that wants them elsewhere, or a
    /// test that watches them. Without it the store keeps them.
    pub fn throttle_ledger(mut self, ledger: Arc<dyn ThrottleLedger>) -> Self {
        self.throttle = Some(ledger);
        self
    }

    /// Parameters of the built-in argon2id/PBKDF2 hasher.
    pub fn hasher_config(mut self, config: HasherConfig) -> Self {
        self.hasher_config = config;
        self
    }

    /// A hasher of your own instead of the built-in one.
    pub fn hasher(mut self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// The signing secrets of access, reset and verify tokens (at least 32
    /// bytes each), held zeroed-on-drop from here on.
    pub fn token_secrets(
        mut self,
        access: impl Into<Vec<u8>>,
        reset: impl Into<Vec<u8>>,
        verify: impl Into<Vec<u8>>,
    ) -> Self {
        self.secrets = Some((
            access.into().into(),
            reset.into().into(),
            verify.into().into(),
        ));
        self
    }

    /// How long an access token lives (default one hour).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_lifetime = lifetime;
        self
    }

    /// How long a reset-password token lives (default one hour).
    pub fn reset_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.reset_lifetime = lifetime;
        self
    }

    /// How long a verify-e-mail token lives (default one hour).
    pub fn verify_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.verify_lifetime = lifetime;
        self
    }

    /// The clock tokens are stamped and checked with, and failed-login and
    /// mail windows counted with (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where reset and verify mails go out (default: the log).
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The base of the links in mails.
    pub fn frontend_url(mut self, url: impl Into<String>) -> Self {
        self.frontend_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Your hooks. They run after the built-in mailing hooks, and only the
    /// hooks you override do anything; call it again to add more sets.
    pub fn events(mut self, events: Arc<dyn UserEvents>) -> Self {
        self.events.push(events);
        self
    }

    /// Whether the built-in hooks mail reset and verify tokens (default
    /// true). Turn it off when your own hooks deliver the tokens.
    pub fn send_default_mails(mut self, send: bool) -> Self {
        self.default_mails = send;
        self
    }

    /// What an access token is (`AUTH_STRATEGY`): [`AuthStrategy::Jwt`]
    /// (default), a signed token checked with no store call beyond loading
    /// its user, or [`AuthStrategy::Database`], an opaque token stored in
    /// FastAPI Users' `accesstoken` table (a real logout; one more store
    /// call per authenticated request). Both revoke every session of a user
    /// on a password reset or change, a deactivation and
    /// `end_all_sessions`.
    pub fn auth_strategy(mut self, strategy: AuthStrategy) -> Self {
        self.policy.auth_strategy = strategy;
        self
    }

    /// Refuse login to unverified users (`LOGIN_USER_NOT_VERIFIED`).
    pub fn login_requires_verification(mut self, required: bool) -> Self {
        self.policy.login_requires_verification = required;
        self
    }

    /// Lock an address for the rest of `window` once it failed to log in
    /// `failures` times within it (counted from the first failure); `0`
    /// failures: no lockout. Default: 10 within 15 minutes
    /// ([`LoginLockout::default`]). A locked login answers
    /// `429 LOGIN_TOO_MANY_ATTEMPTS` with `Retry-After`, for unknown
    /// addresses exactly as for known ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::PortcullisBuilder;
    ///
    /// let service = PortcullisBuilder::new()
    ///     .token_secrets([1; 32], [2; 32], [3; 32])
    ///     .login_lockout(5, Duration::from_secs(30 * 60))
    ///     .mail_per_address_per_hour(2)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(service.policy().login_lockout.failures, 5);
    /// assert_eq!(service.policy().mail_per_address_per_hour, 2);
    /// ```
    pub fn login_lockout(mut self, failures: u32, window: Duration) -> Self {
        self.policy.login_lockout = LoginLockout { failures, window };
        self
    }

    /// The most reset and verification mails (together) sent to one
    /// address per hour (default 3; `0`: no cap). Past it, forgot-password
    /// and request-verify-token still answer `202 null` and send nothing.
    pub fn mail_per_address_per_hour(mut self, mails: u32) -> Self {
        self.policy.mail_per_address_per_hour = mails;
        self
    }

    /// The fewest characters a new password may have (default 8, at most
    /// [`PasswordRules::MAX_MIN_LENGTH`]); the refusal says `Password
    /// should be at least N characters`.
    pub fn password_min_length(mut self, min: usize) -> Self {
        self.password_rules.min_length = min;
        self
    }

    /// A password rule of your own, as FastAPI Users' `validate_password`:
    /// it runs after the built-in checks (length, not the address) on
    /// register, reset, `PATCH /users/me`, `PATCH /users/{id}` and when
    /// users are created in code. Call it again to add more; they run in
    /// order and the first refusal wins, its reason sent as is. A closure
    /// `Fn(&str, &PasswordOwner) -> Result<(), String>` is a validator:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis::PortcullisBuilder;
    /// use portcullis::domain::PasswordOwner;
    ///
    /// let service = PortcullisBuilder::new()
    ///     .token_secrets([1; 32], [2; 32], [3; 32])
    ///     .password_min_length(10)
    ///     .password_validator(Arc::new(|password: &str, _: &PasswordOwner<'_>| {
    ///         if password.chars().all(|c| c.is_ascii_lowercase()) {
    ///             Err("Password should not be only lowercase letters".to_owned())
    ///         } else {
    ///             Ok(())
    ///         }
    ///     }))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(service.password_rules().min_length, 10);
    /// ```
    pub fn password_validator(mut self, validator: Arc<dyn PasswordValidator>) -> Self {
        self.password_rules.validators.push(validator);
        self
    }

    /// The deployment's extra user fields: registration and the PATCH
    /// routes accept them, users are rendered with them, the OpenAPI
    /// document shows them. The store must be given the same fields (and
    /// migrated): `SqliteUserStore::open(url).await?.with_user_fields(fields)`.
    pub fn user_fields(mut self, fields: UserFields) -> Self {
        self.user_fields = Ok(fields);
        self
    }

    /// [`user_fields`](Self::user_fields) declared by a type of yours: see
    /// [`user_fields_of`](crate::user_fields_of); a type it cannot map is a
    /// [`BuildError::UserFields`] from [`build`](Self::build).
    pub fn user_fields_of<T>(mut self) -> Self
    where
        T: utoipa::ToSchema + serde::Serialize + Default,
    {
        self.user_fields = crate::user_fields_of::<T>();
        self
    }

    /// At most `n` `POST`s under `/auth/` (register, logins, forgot/reset
    /// password, request-verify-token, verify) per client address a minute
    /// (`RATE_LIMIT_AUTH_PER_MINUTE`, default 30): a burst of `n`, then one
    /// every `60/n` seconds; over it, `429 {"detail": "TOO_MANY_REQUESTS"}`
    /// with `Retry-After`. `0` turns it off. Counted in this process's
    /// memory, so each instance has its own budgets.
    pub fn auth_rate_limit_per_minute(mut self, n: u32) -> Self {
        self.auth_rate_limit = n;
        self
    }

    /// The reverse proxies in front of Portcullis (`TRUSTED_PROXIES`,
    /// default none): a request from one of them is from the client its
    /// `X-Forwarded-For` names (see
    /// [`client_address`](crate::http::client_address)).
    ///
    /// ```
    /// use portcullis::PortcullisBuilder;
    ///
    /// let service = PortcullisBuilder::new()
    ///     .token_secrets([1; 32], [2; 32], [3; 32])
    ///     .trusted_proxies("10.0.0.0/8, fd00::/8".parse().unwrap())
    ///     .auth_rate_limit_per_minute(10)
    ///     .build()
    ///     .unwrap();
    /// assert!(service.trusted_proxies().contains("10.1.2.3".parse().unwrap()));
    /// assert_eq!(service.auth_rate_limit().requests_per_minute(), 10);
    /// ```
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The name of the cookie transport's session cookie (`COOKIE_NAME`,
    /// default FastAPI Users' `fastapiusersauth`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Whether the session cookie is `Secure`, sent over HTTPS only
    /// (`COOKIE_SECURE`, default `true`; turn it off for plain-HTTP
    /// development only).
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }

    /// The session cookie's `Domain` (`COOKIE_DOMAIN`, default none: the
    /// host that set it, only).
    pub fn cookie_domain(mut self, domain: Option<String>) -> Self {
        self.cookie_domain = domain;
        self
    }

    /// Origins whose pages may call the API from a browser, credentials
    /// included (`CORS_ORIGINS`): the HTTP adapter answers their CORS
    /// preflights and grants their responses. They, and
    /// [`frontend_url`](Self::frontend_url)'s origin, may also send
    /// cookie-authenticated `POST`, `PATCH` and `DELETE` requests, besides
    /// the API's own origin, which always may.
    ///
    /// ```
    /// use portcullis::PortcullisBuilder;
    ///
    /// let service = PortcullisBuilder::new()
    ///     .token_secrets([1; 32], [2; 32], [3; 32])
    ///     .frontend_url("https://app.example.com/welcome")
    ///     .cors_origins("https://admin.example.com".parse().unwrap())
    ///     .cookie_name("sid")
    ///     .cookie_secure(false)
    ///     .build()
    ///     .unwrap();
    /// assert!(service.allowed_origins().allows("https://app.example.com"));
    /// assert!(service.allowed_origins().allows("https://admin.example.com"));
    /// assert!(!service.allowed_origins().allows("https://evil.example.com"));
    /// assert!(service.cors_origins().allows("https://admin.example.com"));
    /// assert!(!service.cors_origins().allows("https://app.example.com"));
    /// assert_eq!(service.session_cookie().name(), "sid");
    /// ```
    pub fn cors_origins(mut self, origins: AllowedOrigins) -> Self {
        self.cors_origins = origins;
        self
    }

    /// The assembled use cases.
    pub fn build(self) -> Result<UserService, BuildError> {
        let user_fields = self.user_fields?;
        if let Some(store) = &self.store
            && store
                .user_fields()
                .is_some_and(|store_fields| store_fields != user_fields)
        {
            return Err(BuildError::StoreFieldsDiffer);
        }
        let (access_secret, reset_secret, verify_secret) =
            self.secrets.ok_or(BuildError::MissingSecrets)?;
        if self.policy.login_lockout.is_on() && self.policy.login_lockout.window.is_zero() {
            return Err(BuildError::LoginLockoutWindow);
        }
        if !PasswordRules::valid_min_length(self.password_rules.min_length) {
            return Err(BuildError::PasswordMinLength(
                self.password_rules.min_length,
            ));
        }
        let session_cookie = SessionCookie::new(
            self.cookie_name,
            self.cookie_secure,
            self.cookie_domain,
            self.access_lifetime,
        )?;
        let cors_origins = self.cors_origins.clone();
        let allowed_origins = match origin_of(&self.frontend_url) {
            Ok(origin) => self.cors_origins.with(origin),
            Err(why) => {
                tracing::warn!(frontend_url = %self.frontend_url, "FRONTEND_URL has no origin ({why}): its pages may not send cookie-authenticated changes");
                self.cors_origins
            }
        };
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let settings = TokenSettings {
            access_secret,
            reset_secret,
            verify_secret,
            access_lifetime_secs: secs(self.access_lifetime),
            reset_lifetime_secs: secs(self.reset_lifetime),
            verify_lifetime_secs: secs(self.verify_lifetime),
        };
        let tokens = JosekitTokenCodec::new(settings, Arc::clone(&self.clock))
            .map_err(|e| BuildError::Tokens(e.to_string()))?;
        let hasher = match self.hasher {
            Some(h) => h,
            None => {
                let hasher = PhcPasswordHasher::new(self.hasher_config)
                    .map_err(|e| BuildError::Hasher(e.to_string()))?;
                hasher.start_threads();
                Arc::new(hasher)
            }
        };
        let mut hooks = HookChain::new();
        if self.default_mails {
            let mailer = self.mailer.unwrap_or_else(|| Arc::new(LogMailer::new()));
            hooks = hooks.then(Arc::new(MailingUserEvents::new(mailer, self.frontend_url)));
        }
        for events in self.events {
            hooks = hooks.then(events);
        }
        let store: Arc<dyn Store> = self.store.unwrap_or_else(|| {
            Arc::new(MemoryUserStore::new().with_user_fields(user_fields.clone()))
        });
        #[cfg(feature = "oauth")]
        let oauth = self.oauth.build(&store, &self.clock)?;
        let (users, throttle, sessions) = store_parts(Some(store), self.throttle, &user_fields);
        let service = UserService::new(
            Ports {
                users,
                throttle,
                sessions,
                hasher,
                tokens: Arc::new(tokens),
                events: Arc::new(hooks),
                clock: self.clock,
            },
            Policy {
                access_token_lifetime: self.access_lifetime,
                ..self.policy
            },
        )
        .with_password_rules(self.password_rules)
        .with_user_fields(user_fields)
        .with_auth_rate_limit(AuthRateLimit::per_minute(self.auth_rate_limit))
        .with_trusted_proxies(self.trusted_proxies)
        .with_session_cookie(session_cookie)
        .with_allowed_origins(allowed_origins)
        .with_cors_origins(cors_origins);
        #[cfg(feature = "oauth")]
        let service = match oauth {
            Some(oauth) => service.with_oauth(oauth),
            None => service,
        };
        Ok(service)
    }
}

#[cfg(feature = "oauth")]
impl OAuthParts {
    /// Social login over `store`'s provider accounts (unless
    /// [`PortcullisBuilder::oauth_accounts`] gave others); `None` when no
    /// provider was added.
    fn build(
        self,
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<OAuth>, BuildError> {
        if self.providers.is_empty() {
            return Ok(None);
        }
        let secret = self.state_secret.ok_or_else(|| {
            BuildError::OAuth(
                "no state secret: call PortcullisBuilder::oauth_state_secret (OAUTH_STATE_SECRET)"
                    .into(),
            )
        })?;
        let state = JosekitOAuthStateCodec::new(&secret, Arc::clone(clock))
            .map_err(|e| BuildError::OAuth(e.to_string()))?;
        let accounts = self
            .accounts
            .unwrap_or_else(|| store.clone() as Arc<dyn OAuthAccountStore>);
        let mut oauth = OAuth::new(accounts, Arc::new(state), self.policy);
        for settings in self.providers {
            let name = settings.name.clone();
            let redirect_url = settings.redirect_url.clone();
            let provider = HttpOAuthProvider::new(settings)
                .map_err(|e| BuildError::OAuth(format!("provider {name}: {e}")))?;
            oauth = oauth.with_provider(Arc::new(provider), redirect_url);
        }
        Ok(Some(oauth))
    }
}

/// The users, the ledger and the sessions of a service: `store`'s (one new
/// [`MemoryUserStore`] with `fields` when none is given) for all three,
/// unless a ledger of its own is given. The sessions are always the
/// store's: the `accesstoken` table references the users (a user's
/// deletion deletes their tokens), so they live together.
fn store_parts(
    store: Option<Arc<dyn Store>>,
    ledger: Option<Arc<dyn ThrottleLedger>>,
    fields: &UserFields,
) -> (
    Arc<dyn UserRepository>,
    Arc<dyn ThrottleLedger>,
    Arc<dyn AccessTokenStore>,
) {
    let store: Arc<dyn Store> =
        store.unwrap_or_else(|| Arc::new(MemoryUserStore::new().with_user_fields(fields.clone())));
    let users: Arc<dyn UserRepository> = store.clone();
    let sessions: Arc<dyn AccessTokenStore> = store.clone();
    (users, ledger.unwrap_or(store), sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two handles are one object (their data pointers agree).
    fn same<A: ?Sized, B: ?Sized>(a: &Arc<A>, b: &Arc<B>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
    }

    #[test]
    fn the_store_keeps_the_users_the_counts_and_the_sessions() {
        let store: Arc<dyn Store> = Arc::new(MemoryUserStore::new());
        let (users, ledger, sessions) = store_parts(Some(store.clone()), None, &UserFields::none());
        assert!(same(&users, &store) && same(&ledger, &store) && same(&sessions, &store));

        let (users, ledger, sessions) = store_parts(None, None, &UserFields::none());
        assert!(
            same(&users, &ledger) && same(&users, &sessions),
            "the default memory store is one store for all three"
        );

        let own: Arc<dyn ThrottleLedger> = Arc::new(MemoryUserStore::new());
        let (users, ledger, sessions) =
            store_parts(Some(store.clone()), Some(own.clone()), &UserFields::none());
        assert!(same(&users, &store) && same(&ledger, &own) && !same(&ledger, &store));
        assert!(same(&sessions, &store), "the sessions stay with the users");
    }

    #[test]
    fn a_store_with_other_user_fields_is_refused() {
        let fields = crate::parse_user_fields(
            r#"{"nickname": {"type": "string", "nullable": true, "writable_by": "user"}}"#,
        )
        .unwrap();
        let builder = || {
            PortcullisBuilder::new().token_secrets(
                "an access token secret of 32+ bytes!",
                "a reset token secret of 32+ bytes!!!",
                "a verify token secret of 32+ bytes!!",
            )
        };
        let bare = builder()
            .store(Arc::new(MemoryUserStore::new()))
            .user_fields(fields.clone())
            .build();
        assert!(matches!(bare, Err(BuildError::StoreFieldsDiffer)));
        let same = builder()
            .store(Arc::new(
                MemoryUserStore::new().with_user_fields(fields.clone()),
            ))
            .user_fields(fields)
            .build();
        assert!(same.is_ok());
    }

    #[test]
    fn secrets_are_required_and_checked() {
        assert!(matches!(
            PortcullisBuilder::new().build(),
            Err(BuildError::MissingSecrets)
        ));
        let e = PortcullisBuilder::new()
            .token_secrets(
                "short",
                "a reset token secret of 32+ bytes!!!",
                "a verify token secret of 32+ bytes!!",
            )
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("access"), "{e}");
    }

    #[test]
    fn a_zero_lockout_window_is_refused_unless_the_lockout_is_off() {
        let with = |failures| {
            PortcullisBuilder::new()
                .token_secrets([1; 32], [2; 32], [3; 32])
                .login_lockout(failures, Duration::ZERO)
                .build()
        };
        assert!(matches!(with(3), Err(BuildError::LoginLockoutWindow)));
        assert!(!with(0).unwrap().policy().login_lockout.is_on());
    }

    #[test]
    fn the_password_minimum_is_checked() {
        let with_min = |min| {
            PortcullisBuilder::new()
                .token_secrets([1; 32], [2; 32], [3; 32])
                .password_min_length(min)
                .build()
        };
        for bad in [0, PasswordRules::MAX_MIN_LENGTH + 1] {
            assert!(
                matches!(with_min(bad), Err(BuildError::PasswordMinLength(m)) if m == bad),
                "{bad}"
            );
        }
        let service = with_min(PasswordRules::MAX_MIN_LENGTH).unwrap();
        assert_eq!(
            service.password_rules().min_length,
            PasswordRules::MAX_MIN_LENGTH
        );
    }
}
