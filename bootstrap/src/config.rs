//! Configuration from the environment (and a `.env` file), per the table of
//! the HTTP contract.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use portcullis_application::{
    AllowedOrigins, AuthStrategy, DEFAULT_AUTH_REQUESTS_PER_MINUTE, DEFAULT_COOKIE_NAME,
    InvalidCookieSetting, LoginLockout, PasswordRules, Policy, SessionCookie, TrustedProxies,
};
use portcullis_domain::{Password, UserFields};
use portcullis_mail::{SmtpSettings, SmtpTls};
use portcullis_oauth_settings::{ProviderKind, ProviderSettings};
use portcullis_password::{Algorithm, ConfigError as HasherConfigError, HasherConfig};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};

use crate::log_format::LogFormat;

/// Why the configuration cannot be used. Each message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable (or the `.env` file) holds something unusable.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable, e.g. `PORT`.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A token secret is unset while `PORTCULLIS_ENV=production`.
    #[error(
        "{var} is not set and PORTCULLIS_ENV=production: set it to a random secret of at least 32 bytes (e.g. `openssl rand -hex 32`)"
    )]
    MissingSecret {
        /// The secret's variable, e.g. `JWT_SECRET_KEY`.
        var: &'static str,
    },
    /// A token secret is shorter than 32 bytes.
    #[error(
        "{var} is {len} bytes long; it must be at least 32 bytes (e.g. `openssl rand -hex 32`)"
    )]
    ShortSecret {
        /// The secret's variable, e.g. `JWT_SECRET_KEY`.
        var: &'static str,
        /// The secret's length, in bytes.
        len: usize,
    },
    /// Two token secrets hold the same value while
    /// `PORTCULLIS_ENV=production`: a token of one kind could then pass as
    /// another.
    #[error(
        "{first} and {second} hold the same value and PORTCULLIS_ENV=production: give each its own random secret (e.g. `openssl rand -hex 32`)"
    )]
    SameSecret {
        /// The first of the two variables, e.g. `JWT_SECRET_KEY`.
        first: &'static str,
        /// The second one, e.g. `AUTH_RESET_PASSWORD_TOKEN_SECRET`.
        second: &'static str,
    },
    /// `SMTP_HOST` is unset while `PORTCULLIS_ENV=production`: the log
    /// mailer would write reset and verification links, tokens included, to
    /// the log.
    #[error(
        "SMTP_HOST is not set and PORTCULLIS_ENV=production: mails would be written to the log, reset and verification links (tokens included) with them; set SMTP_HOST (and SMTP_PORT, SMTP_TLS, SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM)"
    )]
    NoMailServer,
    /// A social-login variable (`OAUTH_<NAME>_…`) holds something unusable
    /// or is missing.
    #[error("{var}: {reason}")]
    OAuth {
        /// The variable, e.g. `OAUTH_GITHUB_CLIENT_ID`.
        var: String,
        /// What is wrong.
        reason: String,
    },
}

/// Social login (`OAUTH_*`).
#[derive(Clone, Debug, Default)]
pub struct OAuthConfig {
    /// The providers of `OAUTH_PROVIDERS`, in order.
    pub providers: Vec<ProviderSettings>,
    /// `OAUTH_STATE_SECRET` (≥ 32 bytes); `None` when no provider is
    /// configured, or generated per process outside production.
    pub state_secret: Option<Secret>,
    /// `OAUTH_ASSOCIATE_BY_EMAIL` (default `false`).
    pub associate_by_email: bool,
    /// `OAUTH_VERIFIED_BY_DEFAULT` (default `false`).
    pub verified_by_default: bool,
}

/// A signing secret and whether it was generated for this process only.
///
/// The value is a [`SecretString`]: zeroed when dropped, and `Debug` never
/// shows it.
#[derive(Clone, Debug)]
pub struct Secret {
    /// The secret itself.
    pub value: SecretString,
    /// Whether the variable was unset and this secret made up at random for
    /// this process: its tokens then die with the process and work on no
    /// other instance.
    pub generated: bool,
}

/// Everything `portcullis serve` needs. `Debug` shows none of its secrets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: the store, `sqlite://FILE`, `postgres://…` or
    /// `memory://`.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: the PostgreSQL store's pool size.
    pub database_max_connections: u32,
    /// `HOST`: the address to listen on.
    pub host: String,
    /// `PORT`: the port to listen on.
    pub port: u16,
    /// `API_PREFIX`: where the routes of the contract are mounted.
    pub api_prefix: String,
    /// `LOGIN_REQUIRES_VERIFICATION`: refuse login to users who have not
    /// verified their address.
    pub login_requires_verification: bool,
    /// `LOGIN_LOCKOUT_FAILURES`: failed logins for one address that lock it
    /// (default 10; `0`: no lockout).
    pub login_lockout_failures: u32,
    /// `LOGIN_LOCKOUT_MINUTES`: the window failed logins are counted in,
    /// and the longest a lock lasts (1 to 1440, default 15).
    pub login_lockout_minutes: u32,
    /// `MAIL_PER_ADDRESS_PER_HOUR`: the most reset and verification mails
    /// sent to one address per hour (default 3; `0`: no cap).
    pub mail_per_address_per_hour: u32,
    /// `JWT_SECRET_KEY`: signs access tokens.
    pub jwt_secret: Secret,
    /// `AUTH_RESET_PASSWORD_TOKEN_SECRET`: signs reset-password tokens.
    pub reset_secret: Secret,
    /// `AUTH_VERIFICATION_TOKEN_SECRET`: signs verify-e-mail tokens.
    pub verify_secret: Secret,
    /// `JWT_ACCESS_TOKEN_EXPIRE_MINUTES`: how long an access token lives.
    pub access_token_minutes: i64,
    /// `AUTH_STRATEGY`: `jwt` (default) or `database`, what an access token is.
    pub auth_strategy: AuthStrategy,
    /// `PASSWORD_HASHER` and `ARGON2_*`: how new password hashes are made.
    pub hasher: HasherConfig,
    /// `PASSWORD_MIN_LENGTH`: the fewest characters a new password may have
    /// (1 to 4096, default 8).
    pub password_min_length: usize,
    /// `USER_FIELDS`: the deployment's extra user fields (JSON, see
    /// [`parse_user_fields`](crate::parse_user_fields)); none by default.
    pub user_fields: UserFields,
    /// `SMTP_*` and `MAIL_FROM`; `None` when `SMTP_HOST` is unset, and mails
    /// then go to the log.
    pub smtp: Option<SmtpSettings>,
    /// `FRONTEND_URL`, without a trailing slash: the base of the links in
    /// mails.
    pub frontend_url: String,
    /// `FIRST_SUPERUSER_EMAIL` and `FIRST_SUPERUSER_PASSWORD`, when set: the
    /// superuser created at start if no user has that address.
    pub first_superuser: Option<(String, SecretString)>,
    /// `PORTCULLIS_ENV=production`: an unset token secret, two equal token
    /// secrets and an unset `SMTP_HOST` (the log mailer) are refused.
    pub production: bool,
    /// `TRUSTED_PROXIES`: the peers (IPs and CIDRs, comma-separated) whose
    /// `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// `RATE_LIMIT_AUTH_PER_MINUTE`: `POST`s under `/auth/` a client address
    /// may send a minute (a burst of that many, then one every `60/n` s);
    /// `0` is off. Default 30.
    pub rate_limit_auth_per_minute: u32,
    /// `COOKIE_NAME`: the cookie transport's session cookie (default
    /// FastAPI Users' `fastapiusersauth`).
    pub cookie_name: String,
    /// `COOKIE_SECURE`: whether the session cookie is `Secure` (default
    /// `true`).
    pub cookie_secure: bool,
    /// `COOKIE_DOMAIN`: the session cookie's `Domain`; unset by default.
    pub cookie_domain: Option<String>,
    /// `CORS_ORIGINS`: origins (comma-separated) allowed to call the API
    /// from a browser, credentials included (CORS); they may also send
    /// cookie-authenticated `POST`/`PATCH`/`DELETE` requests, as the API's
    /// own and `FRONTEND_URL`'s may. None by default: no CORS.
    pub cors_origins: AllowedOrigins,
    /// `METRICS_ADDR`: `HOST:PORT` where Prometheus metrics are served at
    /// `/metrics`, never the API's address; `None` (unset): no metrics.
    pub metrics_addr: Option<String>,
    /// `LOG_FORMAT`: `text` (the default) or `json`, one object a line.
    pub log_format: LogFormat,
    /// Social login: `OAUTH_PROVIDERS` and the `OAUTH_*` settings.
    pub oauth: OAuthConfig,
}

/// `DATABASE_URL` when not set: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://portcullis.db";
/// `DATABASE_MAX_CONNECTIONS` when not set.
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 10;
const MIN_SECRET_BYTES: usize = 32;
/// The longest `LOGIN_LOCKOUT_MINUTES`: a day.
const MAX_LOGIN_LOCKOUT_MINUTES: u32 = 24 * 60;

struct Vars(HashMap<String, String>);

impl Vars {
    /// A set, non-blank variable.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: format!("cannot read {raw:?}: {e}"),
            }),
        }
    }

    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        self.flag_or(var, false)
    }

    fn flag_or(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                var,
                reason: format!("expected true or false, got {other:?}"),
            }),
        }
    }

    fn secret(&self, var: &'static str, production: bool) -> Result<Secret, ConfigError> {
        match self.0.get(var).filter(|v| !v.is_empty()) {
            Some(value) if value.len() < MIN_SECRET_BYTES => Err(ConfigError::ShortSecret {
                var,
                len: value.len(),
            }),
            Some(value) => Ok(Secret {
                value: value.as_str().into(),
                generated: false,
            }),
            None if production => Err(ConfigError::MissingSecret { var }),
            None => Ok(Secret {
                value: random_secret().map_err(|reason| ConfigError::Invalid { var, reason })?,
                generated: true,
            }),
        }
    }
}

/// 32 random bytes in hex; neither the bytes nor the text outlive it
/// unzeroed.
fn random_secret() -> Result<SecretString, String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| format!("no randomness for a generated secret: {e}"))?;
    // Exactly as long as its capacity, so that no copy is left behind when
    // it moves into the secret.
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes.iter() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex.into())
}

/// The name a provider's variables carry: `OAUTH_<NAME>_…` with `NAME`
/// upper-cased and `-` as `_`.
pub(crate) fn oauth_var(name: &str, suffix: &str) -> String {
    format!(
        "OAUTH_{}_{suffix}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `OAUTH_PROVIDERS` and every provider's `OAUTH_<NAME>_*`.
fn oauth_config(vars: &Vars, production: bool) -> Result<OAuthConfig, ConfigError> {
    let invalid = |var: String, reason: String| ConfigError::OAuth { var, reason };
    let mut providers: Vec<ProviderSettings> = Vec::new();
    for name in vars
        .get("OAUTH_PROVIDERS")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        // A path segment of the routes, and the `oauth_name` of accounts
        // (VARCHAR(100)); not the fixed segments next to it.
        if name.len() > 100
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            || matches!(name, "jwt" | "cookie" | "associate")
        {
            return Err(invalid(
                "OAUTH_PROVIDERS".into(),
                format!(
                    "{name:?}: a provider name is lower-case letters, digits, - and _ (at most 100), and not jwt, cookie or associate"
                ),
            ));
        }
        if providers.iter().any(|p| p.name == name) {
            return Err(invalid(
                "OAUTH_PROVIDERS".into(),
                format!("{name:?} is listed twice"),
            ));
        }
        let var = |suffix: &str| oauth_var(name, suffix);
        let get = |suffix: &str| vars.get(&var(suffix)).map(str::to_owned);
        let required = |suffix: &str| {
            get(suffix)
                .ok_or_else(|| invalid(var(suffix), format!("not set (needed by provider {name})")))
        };
        let url = |suffix: &str| -> Result<String, ConfigError> {
            let value = required(suffix)?;
            match url::Url::parse(&value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(value),
                _ => Err(invalid(
                    var(suffix),
                    format!("{value:?} is not an http(s) URL"),
                )),
            }
        };
        let kind_name = match get("KIND") {
            Some(kind) => kind.to_ascii_lowercase(),
            None if matches!(name, "github" | "google") => name.to_owned(),
            None => {
                return Err(invalid(
                    var("KIND"),
                    format!("not set (github, google, oidc or oauth2) for provider {name}"),
                ));
            }
        };
        let kind = match kind_name.as_str() {
            "github" => ProviderKind::github(),
            "google" => ProviderKind::google(),
            "oidc" => ProviderKind::Oidc {
                issuer: url("ISSUER")?,
            },
            "oauth2" => ProviderKind::OAuth2 {
                authorize_url: url("AUTHORIZE_URL")?,
                token_url: url("TOKEN_URL")?,
                userinfo_url: url("USERINFO_URL")?,
            },
            other => {
                return Err(invalid(
                    var("KIND"),
                    format!("expected github, google, oidc or oauth2, got {other:?}"),
                ));
            }
        };
        let mut settings = ProviderSettings::new(
            name,
            kind,
            required("CLIENT_ID")?,
            vars.0
                .get(&var("CLIENT_SECRET"))
                .cloned()
                .unwrap_or_default(),
        );
        settings.scopes = get("SCOPES")
            .map(|s| {
                s.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        settings.redirect_url = match get("REDIRECT_URL") {
            None => None,
            Some(_) => Some(url("REDIRECT_URL")?),
        };
        providers.push(settings);
    }
    let state_secret = if providers.is_empty() {
        None
    } else {
        Some(vars.secret("OAUTH_STATE_SECRET", production)?)
    };
    Ok(OAuthConfig {
        providers,
        state_secret,
        associate_by_email: vars.flag("OAUTH_ASSOCIATE_BY_EMAIL")?,
        verified_by_default: vars.flag("OAUTH_VERIFIED_BY_DEFAULT")?,
    })
}

impl Config {
    /// Reads `.env` (if any; the real environment wins; only with the
    /// `cli` feature, which brings `dotenvy`), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by dotenvy
        // as an error we surface.
        #[cfg(feature = "cli")]
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError::Invalid {
                var: ".env",
                reason: e.to_string(),
            });
        }
        Self::from_vars(std::env::vars())
    }

    /// Reads the configuration from these variables only (tests, embedding).
    ///
    /// ```
    /// use portcullis::Config;
    ///
    /// let config = Config::from_vars([("DATABASE_URL", "memory://"), ("PORT", "9000")]).unwrap();
    /// assert_eq!((config.database_url.as_str(), config.port), ("memory://", 9000));
    /// assert_eq!(config.api_prefix, "/api");
    /// // Outside production an unset secret is made up, for this process only.
    /// assert!(config.jwt_secret.generated);
    ///
    /// let production = [("PORTCULLIS_ENV", "production")];
    /// assert!(Config::from_vars(production).is_err());
    /// ```
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        let production = match vars.get("PORTCULLIS_ENV").map(str::to_ascii_lowercase) {
            None => false,
            Some(env) if env == "production" => true,
            Some(env) if env == "development" => false,
            // `prod` silently meaning "not production" would skip every
            // production check.
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "PORTCULLIS_ENV",
                    reason: format!("expected production or development, got {other:?}"),
                });
            }
        };

        let hasher = HasherConfig {
            algorithm: vars.parse::<Algorithm>("PASSWORD_HASHER", Algorithm::Argon2id)?,
            argon2_memory_kib: vars
                .parse("ARGON2_MEMORY_KIB", HasherConfig::DEFAULT_ARGON2_MEMORY_KIB)?,
            argon2_iterations: vars
                .parse("ARGON2_ITERATIONS", HasherConfig::DEFAULT_ARGON2_ITERATIONS)?,
            argon2_parallelism: vars.parse(
                "ARGON2_PARALLELISM",
                HasherConfig::DEFAULT_ARGON2_PARALLELISM,
            )?,
            pbkdf2_rounds: HasherConfig::DEFAULT_PBKDF2_ROUNDS,
            queue_max: vars.parse("HASH_QUEUE_MAX", HasherConfig::DEFAULT_QUEUE_MAX)?,
            queue_timeout: Duration::from_millis(vars.parse(
                "HASH_QUEUE_TIMEOUT_MS",
                u64::try_from(HasherConfig::DEFAULT_QUEUE_TIMEOUT.as_millis()).unwrap_or(5_000),
            )?),
        };
        hasher.validate().map_err(|e| ConfigError::Invalid {
            var: match e {
                HasherConfigError::QueueMax { .. } => "HASH_QUEUE_MAX",
                HasherConfigError::QueueTimeout { .. } => "HASH_QUEUE_TIMEOUT_MS",
                _ => "ARGON2_*",
            },
            reason: e.to_string(),
        })?;

        let access_token_minutes: i64 = vars.parse("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", 60)?;
        if !(1..=525_600 * 10).contains(&access_token_minutes) {
            return Err(ConfigError::Invalid {
                var: "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
                reason: "must be a positive number of minutes".into(),
            });
        }

        let password_min_length: usize = vars.parse("PASSWORD_MIN_LENGTH", Password::MIN_CHARS)?;
        if !PasswordRules::valid_min_length(password_min_length) {
            return Err(ConfigError::Invalid {
                var: "PASSWORD_MIN_LENGTH",
                reason: format!(
                    "must be between 1 and {} characters",
                    PasswordRules::MAX_MIN_LENGTH
                ),
            });
        }

        let login_lockout_failures: u32 =
            vars.parse("LOGIN_LOCKOUT_FAILURES", LoginLockout::DEFAULT_FAILURES)?;
        let login_lockout_minutes: u32 = vars.parse(
            "LOGIN_LOCKOUT_MINUTES",
            u32::try_from(LoginLockout::DEFAULT_WINDOW.as_secs() / 60).unwrap_or(15),
        )?;
        if !(1..=MAX_LOGIN_LOCKOUT_MINUTES).contains(&login_lockout_minutes) {
            return Err(ConfigError::Invalid {
                var: "LOGIN_LOCKOUT_MINUTES",
                reason: format!("must be between 1 and {MAX_LOGIN_LOCKOUT_MINUTES} minutes"),
            });
        }
        let mail_per_address_per_hour: u32 = vars.parse(
            "MAIL_PER_ADDRESS_PER_HOUR",
            Policy::DEFAULT_MAIL_PER_ADDRESS_PER_HOUR,
        )?;

        let user_fields = match vars.get("USER_FIELDS") {
            Some(json) if !json.trim().is_empty() => {
                crate::parse_user_fields(json).map_err(|e| ConfigError::Invalid {
                    var: "USER_FIELDS",
                    reason: e.to_string(),
                })?
            }
            _ => UserFields::none(),
        };

        let database_max_connections: u32 =
            vars.parse("DATABASE_MAX_CONNECTIONS", DEFAULT_DATABASE_MAX_CONNECTIONS)?;
        if !(1..=10_000).contains(&database_max_connections) {
            return Err(ConfigError::Invalid {
                var: "DATABASE_MAX_CONNECTIONS",
                reason: "must be between 1 and 10000".into(),
            });
        }

        let smtp = match vars.get("SMTP_HOST") {
            None => None,
            Some(host) => {
                // STARTTLS unless plain text is asked for by name.
                let tls: SmtpTls = vars.parse("SMTP_TLS", SmtpTls::StartTls)?;
                let port = match vars.get("SMTP_PORT") {
                    None => None,
                    Some(_) => Some(vars.parse::<u16>("SMTP_PORT", 0)?),
                };
                let from = vars.get("MAIL_FROM").unwrap_or("noreply@example.com");
                let mut settings = SmtpSettings::new(host, port, tls, from);
                if let Some(user) = vars.get("SMTP_USERNAME") {
                    settings =
                        settings.with_credentials(user, vars.get("SMTP_PASSWORD").unwrap_or(""));
                }
                // A private certificate authority the mail server's
                // certificate chains to (PEM), trusted besides the system's.
                if let Some(path) = vars.get("SMTP_CA_FILE").filter(|p| !p.trim().is_empty()) {
                    let pem =
                        std::fs::read_to_string(path.trim()).map_err(|e| ConfigError::Invalid {
                            var: "SMTP_CA_FILE",
                            reason: format!("cannot read {path:?}: {e}"),
                        })?;
                    settings = settings.with_root_certificate(pem);
                }
                Some(settings)
            }
        };

        let first_superuser = match (
            vars.get("FIRST_SUPERUSER_EMAIL"),
            vars.0.get("FIRST_SUPERUSER_PASSWORD"),
        ) {
            (Some(email), Some(password)) if !password.is_empty() => {
                Some((email.to_owned(), password.as_str().into()))
            }
            (None, None) => None,
            (Some(_), _) => {
                return Err(ConfigError::Invalid {
                    var: "FIRST_SUPERUSER_PASSWORD",
                    reason: "must be set when FIRST_SUPERUSER_EMAIL is".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    var: "FIRST_SUPERUSER_EMAIL",
                    reason: "must be set when FIRST_SUPERUSER_PASSWORD is".into(),
                });
            }
        };

        let cookie_name = vars.get("COOKIE_NAME").unwrap_or(DEFAULT_COOKIE_NAME);
        if !SessionCookie::is_valid_name(cookie_name) {
            return Err(ConfigError::Invalid {
                var: "COOKIE_NAME",
                reason: InvalidCookieSetting::Name(cookie_name.to_owned()).to_string(),
            });
        }
        let cookie_name = cookie_name.to_owned();
        let cookie_domain = vars.get("COOKIE_DOMAIN").map(str::to_owned);
        if let Some(domain) = cookie_domain.as_deref()
            && !SessionCookie::is_valid_domain(domain)
        {
            return Err(ConfigError::Invalid {
                var: "COOKIE_DOMAIN",
                reason: InvalidCookieSetting::Domain(domain.to_owned()).to_string(),
            });
        }

        let host = vars.get("HOST").unwrap_or("127.0.0.1").to_owned();
        let port = vars.parse("PORT", 8000)?;
        let metrics_addr = match vars.get("METRICS_ADDR") {
            None => None,
            Some(addr) => Some(metrics_addr(addr, &host, port)?),
        };

        let config = Self {
            database_url: vars
                .get("DATABASE_URL")
                .unwrap_or(DEFAULT_DATABASE_URL)
                .to_owned(),
            database_max_connections,
            host,
            port,
            api_prefix: vars.get("API_PREFIX").unwrap_or("/api").to_owned(),
            login_requires_verification: vars.flag("LOGIN_REQUIRES_VERIFICATION")?,
            login_lockout_failures,
            login_lockout_minutes,
            mail_per_address_per_hour,
            jwt_secret: vars.secret("JWT_SECRET_KEY", production)?,
            reset_secret: vars.secret("AUTH_RESET_PASSWORD_TOKEN_SECRET", production)?,
            verify_secret: vars.secret("AUTH_VERIFICATION_TOKEN_SECRET", production)?,
            access_token_minutes,
            auth_strategy: vars.parse("AUTH_STRATEGY", AuthStrategy::Jwt)?,
            hasher,
            password_min_length,
            user_fields,
            smtp,
            frontend_url: vars
                .get("FRONTEND_URL")
                .unwrap_or("http://localhost:3000")
                .trim_end_matches('/')
                .to_owned(),
            first_superuser,
            production,
            trusted_proxies: vars.parse("TRUSTED_PROXIES", TrustedProxies::none())?,
            rate_limit_auth_per_minute: vars.parse(
                "RATE_LIMIT_AUTH_PER_MINUTE",
                DEFAULT_AUTH_REQUESTS_PER_MINUTE,
            )?,
            cookie_name,
            cookie_secure: vars.flag_or("COOKIE_SECURE", true)?,
            cookie_domain,
            cors_origins: vars.parse("CORS_ORIGINS", AllowedOrigins::none())?,
            metrics_addr,
            log_format: vars.parse("LOG_FORMAT", LogFormat::Text)?,
            oauth: oauth_config(&vars, production)?,
        };
        if production {
            config.refuse_equal_secrets()?;
            if config.smtp.is_none() {
                return Err(ConfigError::NoMailServer);
            }
        }
        Ok(config)
    }

    /// The three token secrets with their variables.
    pub(crate) fn secrets(&self) -> [(&'static str, &Secret); 3] {
        [
            ("JWT_SECRET_KEY", &self.jwt_secret),
            ("AUTH_RESET_PASSWORD_TOKEN_SECRET", &self.reset_secret),
            ("AUTH_VERIFICATION_TOKEN_SECRET", &self.verify_secret),
        ]
    }

    /// [`ConfigError::SameSecret`] for the first two token secrets that are
    /// equal.
    fn refuse_equal_secrets(&self) -> Result<(), ConfigError> {
        let secrets = self.secrets();
        for (i, (first, a)) in secrets.iter().enumerate() {
            for (second, b) in &secrets[i + 1..] {
                if a.value.expose_secret() == b.value.expose_secret() {
                    return Err(ConfigError::SameSecret { first, second });
                }
            }
        }
        Ok(())
    }
}

/// `METRICS_ADDR` checked: `HOST:PORT` (`[v6]:PORT` for an IPv6 address),
/// not the API's own `HOST:PORT`.
fn metrics_addr(addr: &str, host: &str, port: u16) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        var: "METRICS_ADDR",
        reason,
    };
    let (metrics_host, metrics_port) = addr
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| invalid(format!("expected HOST:PORT, got {addr:?}")))?;
    let metrics_port: u16 = metrics_port
        .parse()
        .map_err(|e| invalid(format!("cannot read the port of {addr:?}: {e}")))?;
    if metrics_port == port
        && metrics_host.trim_matches(['[', ']']) == host.trim_matches(['[', ']'])
    {
        return Err(invalid(format!(
            "{addr:?} is the API's own address (HOST:PORT): metrics are served on an address of their own"
        )));
    }
    Ok(addr.to_owned())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.api_prefix.as_str()),
            ("127.0.0.1", 8000, "/api")
        );
        assert_eq!(c.access_token_minutes, 60);
        assert_eq!(c.auth_strategy, AuthStrategy::Jwt);
        assert!(!c.login_requires_verification);
        assert!(c.jwt_secret.generated && c.reset_secret.generated && c.verify_secret.generated);
        assert_ne!(
            c.jwt_secret.value.expose_secret(),
            c.reset_secret.value.expose_secret()
        );
        assert_eq!(c.jwt_secret.value.expose_secret().len(), 64);
        assert_eq!(c.frontend_url, "http://localhost:3000");
        assert!(c.smtp.is_none());
        assert_eq!(c.hasher, HasherConfig::default());
        assert_eq!(c.database_max_connections, 10);
        assert_eq!(c.password_min_length, 8);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.rate_limit_auth_per_minute, 30);
        assert_eq!(
            (
                c.login_lockout_failures,
                c.login_lockout_minutes,
                c.mail_per_address_per_hour
            ),
            (10, 15, 3)
        );
        assert_eq!(c.cookie_name, "fastapiusersauth");
        assert!(c.cookie_secure);
        assert_eq!(c.cookie_domain, None);
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.metrics_addr, None);
    }

    #[test]
    fn metrics_addr_is_read_and_checked() {
        let c = Config::from_vars([("METRICS_ADDR", " 127.0.0.1:9100 ")]).unwrap();
        assert_eq!(c.metrics_addr.as_deref(), Some("127.0.0.1:9100"));
        let c = Config::from_vars([("METRICS_ADDR", "[::1]:9100")]).unwrap();
        assert_eq!(c.metrics_addr.as_deref(), Some("[::1]:9100"));
        for (vars, words) in [
            (vec![("METRICS_ADDR", "9100")], "expected HOST:PORT"),
            (vec![("METRICS_ADDR", ":9100")], "expected HOST:PORT"),
            (vec![("METRICS_ADDR", "localhost:metrics")], "port"),
            (vec![("METRICS_ADDR", "127.0.0.1:70000")], "port"),
            (
                vec![("METRICS_ADDR", "127.0.0.1:8000")],
                "the API's own address",
            ),
            (
                vec![
                    ("HOST", "0.0.0.0"),
                    ("PORT", "9000"),
                    ("METRICS_ADDR", "0.0.0.0:9000"),
                ],
                "the API's own address",
            ),
        ] {
            let e = Config::from_vars(vars.clone()).unwrap_err().to_string();
            assert!(
                e.starts_with("METRICS_ADDR: ") && e.contains(words),
                "{vars:?}: {e}"
            );
        }
    }

    #[test]
    fn cookie_settings_and_cors_origins_are_read_and_checked() {
        let c = Config::from_vars([
            ("COOKIE_NAME", "sid"),
            ("COOKIE_SECURE", "false"),
            ("COOKIE_DOMAIN", "example.com"),
            (
                "CORS_ORIGINS",
                "https://app.example.com, http://localhost:5173/",
            ),
        ])
        .unwrap();
        assert_eq!(c.cookie_name, "sid");
        assert!(!c.cookie_secure);
        assert_eq!(c.cookie_domain.as_deref(), Some("example.com"));
        assert_eq!(
            c.cors_origins.to_string(),
            "https://app.example.com, http://localhost:5173"
        );
        for (var, bad, words) in [
            ("COOKIE_NAME", "my cookie", "\"my cookie\""),
            ("COOKIE_NAME", "a;b", "\"a;b\""),
            ("COOKIE_SECURE", "maybe", "\"maybe\""),
            ("COOKIE_DOMAIN", "a;b", "\"a;b\""),
            (
                "CORS_ORIGINS",
                "https://ok.example.com, app.example.com",
                "\"app.example.com\"",
            ),
            ("CORS_ORIGINS", "https://app.example.com/login", "no path"),
        ] {
            let e = Config::from_vars([(var, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn trusted_proxies_and_the_auth_rate_limit_are_read_and_checked() {
        let c = Config::from_vars([
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7, fd00::/8"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "0"),
        ])
        .unwrap();
        assert_eq!(
            c.trusted_proxies.to_string(),
            "10.0.0.0/8,192.168.1.7/32,fd00::/8"
        );
        assert_eq!(c.rate_limit_auth_per_minute, 0);
        for (var, bad, words) in [
            (
                "TRUSTED_PROXIES",
                "10.0.0.0/8, 10.0.0.0/33",
                "\"10.0.0.0/33\"",
            ),
            ("TRUSTED_PROXIES", "proxy.internal", "\"proxy.internal\""),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "-1", "\"-1\""),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "thirty", "\"thirty\""),
        ] {
            let e = Config::from_vars([(var, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn lockout_and_mail_cap_are_read_and_checked() {
        let c = Config::from_vars([
            ("LOGIN_LOCKOUT_FAILURES", "0"),
            ("LOGIN_LOCKOUT_MINUTES", " 60 "),
            ("MAIL_PER_ADDRESS_PER_HOUR", "0"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.login_lockout_failures,
                c.login_lockout_minutes,
                c.mail_per_address_per_hour
            ),
            (0, 60, 0)
        );
        for (var, bad) in [
            ("LOGIN_LOCKOUT_FAILURES", "-1"),
            ("LOGIN_LOCKOUT_FAILURES", "ten"),
            ("LOGIN_LOCKOUT_MINUTES", "0"),
            ("LOGIN_LOCKOUT_MINUTES", "1441"),
            ("LOGIN_LOCKOUT_MINUTES", "x"),
            ("MAIL_PER_ADDRESS_PER_HOUR", "-3"),
            ("MAIL_PER_ADDRESS_PER_HOUR", "3.5"),
        ] {
            let e = Config::from_vars([(var, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{var}: ")), "{var}={bad}: {e}");
        }
    }

    #[test]
    fn user_fields_are_read_and_a_bad_declaration_names_the_field() {
        let c = Config::from_vars([(
            "USER_FIELDS",
            r#"{"first_name":{"type":"string","max_length":50,"nullable":true,"writable_by":"user"}}"#,
        )])
        .unwrap();
        assert!(c.user_fields.get("first_name").is_some());
        assert!(
            Config::from_vars([("USER_FIELDS", "")])
                .unwrap()
                .user_fields
                .is_empty()
        );
        for (json, words) in [
            ("{", "USER_FIELDS"),
            (
                r#"{"email": {"type": "string", "nullable": true}}"#,
                "\"email\"",
            ),
            (
                r#"{"age": {"type": "float", "default": 1}}"#,
                "unsupported type",
            ),
        ] {
            let e = Config::from_vars([("USER_FIELDS", json)])
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("USER_FIELDS") && e.contains(words),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn password_min_length_is_read_and_checked() {
        let c = Config::from_vars([("PASSWORD_MIN_LENGTH", " 12 ")]).unwrap();
        assert_eq!(c.password_min_length, 12);
        let c = Config::from_vars([("PASSWORD_MIN_LENGTH", "4096")]).unwrap();
        assert_eq!(c.password_min_length, 4096);
        for bad in ["0", "-1", "twelve", "4097", "99999999999999999999999"] {
            let e = Config::from_vars([("PASSWORD_MIN_LENGTH", bad)]).unwrap_err();
            assert!(
                e.to_string().starts_with("PASSWORD_MIN_LENGTH: "),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn database_max_connections_is_read_and_checked() {
        let c = Config::from_vars([("DATABASE_MAX_CONNECTIONS", "32")]).unwrap();
        assert_eq!(c.database_max_connections, 32);
        for bad in ["0", "many", "-1"] {
            let e = Config::from_vars([("DATABASE_MAX_CONNECTIONS", bad)]).unwrap_err();
            assert!(
                e.to_string().contains("DATABASE_MAX_CONNECTIONS"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_short_secret_is_always_refused_and_names_the_variable() {
        let e = Config::from_vars([("JWT_SECRET_KEY", "short")]).unwrap_err();
        assert!(
            e.to_string().contains("JWT_SECRET_KEY is 5 bytes long"),
            "{e}"
        );
    }

    /// A production environment that passes every production check.
    fn production() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PORTCULLIS_ENV", "production"),
            ("JWT_SECRET_KEY", "jwt-secret-0123456789abcdef-0123456"),
            (
                "AUTH_RESET_PASSWORD_TOKEN_SECRET",
                "reset-secret-0123456789abcdef-01234",
            ),
            (
                "AUTH_VERIFICATION_TOKEN_SECRET",
                "verify-secret-0123456789abcdef-0123",
            ),
            ("SMTP_HOST", "mail.example.com"),
        ]
    }

    fn without(
        vars: &[(&'static str, &'static str)],
        var: &str,
    ) -> Vec<(&'static str, &'static str)> {
        vars.iter().copied().filter(|(k, _)| *k != var).collect()
    }

    fn with(
        vars: &[(&'static str, &'static str)],
        var: &'static str,
        value: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut vars = without(vars, var);
        vars.push((var, value));
        vars
    }

    #[test]
    fn production_starts_with_distinct_secrets_and_a_mail_server() {
        let ok = Config::from_vars(production()).unwrap();
        assert!(ok.production);
        assert!(!ok.jwt_secret.generated);
        assert_eq!(
            ok.jwt_secret.value.expose_secret(),
            "jwt-secret-0123456789abcdef-0123456"
        );
        assert_eq!(ok.smtp.unwrap().tls, SmtpTls::StartTls);
        let dev = Config::from_vars([("PORTCULLIS_ENV", "Development")]).unwrap();
        assert!(!dev.production);
    }

    #[test]
    fn production_refuses_each_missing_secret_naming_it() {
        for var in [
            "JWT_SECRET_KEY",
            "AUTH_RESET_PASSWORD_TOKEN_SECRET",
            "AUTH_VERIFICATION_TOKEN_SECRET",
        ] {
            let e = Config::from_vars(without(&production(), var)).unwrap_err();
            assert!(
                matches!(e, ConfigError::MissingSecret { var: v } if v == var),
                "{var}: {e}"
            );
            assert!(
                e.to_string().starts_with(&format!("{var} is not set")),
                "{e}"
            );
            // Outside production the same environment starts.
            let dev = with(
                &without(&production(), var),
                "PORTCULLIS_ENV",
                "development",
            );
            assert!(Config::from_vars(dev).is_ok(), "{var}");
        }
    }

    #[test]
    fn production_refuses_two_equal_secrets_naming_both() {
        const SAME: &str = "the-same-secret-0123456789abcdef-01";
        for (first, second) in [
            ("JWT_SECRET_KEY", "AUTH_RESET_PASSWORD_TOKEN_SECRET"),
            ("JWT_SECRET_KEY", "AUTH_VERIFICATION_TOKEN_SECRET"),
            (
                "AUTH_RESET_PASSWORD_TOKEN_SECRET",
                "AUTH_VERIFICATION_TOKEN_SECRET",
            ),
        ] {
            let vars = with(&with(&production(), first, SAME), second, SAME);
            let e = Config::from_vars(vars.clone()).unwrap_err();
            assert!(
                matches!(e, ConfigError::SameSecret { first: f, second: s } if f == first && s == second),
                "{first}/{second}: {e}"
            );
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("{first} and {second} hold the same value")),
                "{shown}"
            );
            assert!(
                !shown.contains(SAME),
                "the secret itself is never shown: {shown}"
            );
            // Equal secrets are refused in production only.
            assert!(Config::from_vars(with(&vars, "PORTCULLIS_ENV", "development")).is_ok());
        }
    }

    #[test]
    fn production_refuses_the_log_mailer_naming_smtp_host() {
        let e = Config::from_vars(without(&production(), "SMTP_HOST")).unwrap_err();
        assert!(matches!(e, ConfigError::NoMailServer), "{e}");
        assert!(e.to_string().starts_with("SMTP_HOST is not set"), "{e}");
        assert!(
            Config::from_vars(with(&production(), "SMTP_HOST", "  ")).is_err(),
            "a blank SMTP_HOST is unset"
        );
    }

    #[test]
    fn an_unknown_portcullis_env_is_refused_rather_than_taken_for_development() {
        for value in ["prod", "staging", "production!"] {
            let e = Config::from_vars(with(&production(), "PORTCULLIS_ENV", value)).unwrap_err();
            assert!(
                e.to_string().starts_with("PORTCULLIS_ENV: "),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn smtp_tls_defaults_to_starttls_and_plain_text_must_be_named() {
        let smtp = |vars: &[(&'static str, &'static str)]| {
            Config::from_vars(vars.to_vec()).unwrap().smtp.unwrap()
        };
        let default = smtp(&[("SMTP_HOST", "mail.example.com")]);
        assert_eq!((default.tls, default.port), (SmtpTls::StartTls, 587));
        for (value, tls, port) in [
            ("starttls", SmtpTls::StartTls, 587),
            ("tls", SmtpTls::Tls, 465),
            ("none", SmtpTls::None, 25),
        ] {
            let s = smtp(&[("SMTP_HOST", "mail.example.com"), ("SMTP_TLS", value)]);
            assert_eq!((s.tls, s.port), (tls, port), "{value}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let secrets = [
            ("JWT_SECRET_KEY", "access-secret-0123456789abcdef-0123"),
            (
                "AUTH_RESET_PASSWORD_TOKEN_SECRET",
                "reset-secret-0123456789abcdef-01234",
            ),
            (
                "AUTH_VERIFICATION_TOKEN_SECRET",
                "verify-secret-0123456789abcdef-0123",
            ),
            ("SMTP_PASSWORD", "smtp-password-hunter2"),
            ("FIRST_SUPERUSER_PASSWORD", "superuser-password-hunter3"),
        ];
        let mut vars = vec![
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_USERNAME", "u"),
            ("FIRST_SUPERUSER_EMAIL", "root@example.com"),
        ];
        vars.extend(secrets);
        let c = Config::from_vars(vars).unwrap();
        let shown = format!("{c:?}");
        for (var, secret) in secrets {
            assert!(!shown.contains(secret), "{var} in {shown}");
        }
        let generated = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        let shown = format!("{generated:?}");
        for secret in [
            &generated.jwt_secret,
            &generated.reset_secret,
            &generated.verify_secret,
        ] {
            assert!(!shown.contains(secret.value.expose_secret()), "{shown}");
        }
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        for (var, value) in [
            ("PORT", "eighty"),
            ("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
            ("PASSWORD_HASHER", "md5"),
            ("LOGIN_REQUIRES_VERIFICATION", "maybe"),
            ("AUTH_STRATEGY", "cookie"),
            ("SMTP_TLS", "ssl"),
        ] {
            let mut vars = vec![(var, value)];
            if var == "SMTP_TLS" {
                vars.push(("SMTP_HOST", "localhost"));
            }
            let e = Config::from_vars(vars).unwrap_err();
            assert!(e.to_string().contains(var), "{var}: {e}");
        }
        let e = Config::from_vars([("ARGON2_MEMORY_KIB", "1")]).unwrap_err();
        assert!(e.to_string().contains("ARGON2"), "{e}");
    }

    #[test]
    fn the_hashing_queue_is_read_and_checked() {
        let c = Config::from_vars([("DATABASE_URL", "memory://")]).unwrap();
        assert_eq!(c.hasher.queue_max, 32);
        assert_eq!(c.hasher.queue_timeout, Duration::from_secs(5));
        let c =
            Config::from_vars([("HASH_QUEUE_MAX", "0"), ("HASH_QUEUE_TIMEOUT_MS", "250")]).unwrap();
        assert_eq!(c.hasher.queue_max, 0, "0 is allowed: never wait");
        assert_eq!(c.hasher.queue_timeout, Duration::from_millis(250));
        for (var, value) in [
            ("HASH_QUEUE_MAX", "-1"),
            ("HASH_QUEUE_MAX", "lots"),
            ("HASH_QUEUE_MAX", "100001"),
            ("HASH_QUEUE_TIMEOUT_MS", "0"),
            ("HASH_QUEUE_TIMEOUT_MS", "60001"),
            ("HASH_QUEUE_TIMEOUT_MS", "5s"),
        ] {
            let e = Config::from_vars([(var, value)]).unwrap_err();
            assert!(
                matches!(&e, ConfigError::Invalid { var: v, .. } if *v == var),
                "{var}={value}: {e}"
            );
            assert!(e.to_string().starts_with(var), "{var}={value}: {e}");
        }
    }

    #[test]
    fn the_auth_strategy_is_read() {
        let c = Config::from_vars([("AUTH_STRATEGY", "database")]).unwrap();
        assert_eq!(c.auth_strategy, AuthStrategy::Database);
        let c = Config::from_vars([("AUTH_STRATEGY", "JWT")]).unwrap();
        assert_eq!(c.auth_strategy, AuthStrategy::Jwt);
        let e = Config::from_vars([("AUTH_STRATEGY", "redis")]).unwrap_err();
        assert!(
            e.to_string().contains("AUTH_STRATEGY") && e.to_string().contains("jwt or database"),
            "{e}"
        );
    }

    #[test]
    fn smtp_and_first_superuser_are_read() {
        let c = Config::from_vars([
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_PORT", "2525"),
            ("SMTP_USERNAME", "u"),
            ("SMTP_PASSWORD", "p"),
            ("MAIL_FROM", "Portcullis <noreply@example.com>"),
            ("FIRST_SUPERUSER_EMAIL", "root@example.com"),
            ("FIRST_SUPERUSER_PASSWORD", "a long password"),
            ("FRONTEND_URL", "https://app.example.com/"),
        ])
        .unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.com", 2525));
        assert_eq!(smtp.username.as_deref(), Some("u"));
        let (email, password) = c.first_superuser.unwrap();
        assert_eq!(email, "root@example.com");
        assert_eq!(password.expose_secret(), "a long password");
        assert_eq!(smtp.password.as_ref().map(|p| p.expose_secret()), Some("p"));
        assert_eq!(c.frontend_url, "https://app.example.com");
        assert!(Config::from_vars([("FIRST_SUPERUSER_EMAIL", "root@example.com")]).is_err());
    }

    #[test]
    fn smtp_ca_file_is_read_and_an_unreadable_one_is_named() {
        let path = std::env::temp_dir().join(format!("portcullis-ca-{}.pem", std::process::id()));
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let path_text = path.display().to_string();
        let c = Config::from_vars([
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_CA_FILE", path_text.as_str()),
        ])
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            c.smtp
                .and_then(|s| s.root_certificate)
                .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----"))
        );
        let e = Config::from_vars([
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_CA_FILE", "/nonexistent/ca.pem"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("SMTP_CA_FILE: cannot read \"/nonexistent/ca.pem\""),
            "{e}"
        );
    }

    #[test]
    fn the_log_format_is_text_by_default_json_on_request_and_nothing_else() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.log_format, LogFormat::Text);
        let c = Config::from_vars([("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let c = Config::from_vars([("LOG_FORMAT", " Text ")]).unwrap();
        assert_eq!(c.log_format, LogFormat::Text);
        let e = Config::from_vars([("LOG_FORMAT", "yaml")])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "LOG_FORMAT: cannot read \"yaml\": expected text or json");
    }

    #[test]
    fn oauth_providers_are_read_with_their_presets_and_defaults() {
        let config = Config::from_vars([
            ("OAUTH_PROVIDERS", " github , corp-sso,plain "),
            ("OAUTH_GITHUB_CLIENT_ID", "gh"),
            ("OAUTH_GITHUB_CLIENT_SECRET", "gh-secret"),
            ("OAUTH_CORP_SSO_KIND", "OIDC"),
            ("OAUTH_CORP_SSO_ISSUER", "https://sso.corp.test/realm"),
            ("OAUTH_CORP_SSO_CLIENT_ID", "corp"),
            ("OAUTH_CORP_SSO_SCOPES", "openid email,groups"),
            ("OAUTH_CORP_SSO_REDIRECT_URL", "https://app.corp.test/cb"),
            ("OAUTH_PLAIN_KIND", "oauth2"),
            ("OAUTH_PLAIN_AUTHORIZE_URL", "https://p.test/a"),
            ("OAUTH_PLAIN_TOKEN_URL", "https://p.test/t"),
            ("OAUTH_PLAIN_USERINFO_URL", "https://p.test/u"),
            ("OAUTH_PLAIN_CLIENT_ID", "plain"),
            ("OAUTH_STATE_SECRET", "oauth-state-secret-0123456789abcdef"),
            ("OAUTH_ASSOCIATE_BY_EMAIL", "true"),
        ])
        .unwrap();
        let oauth = &config.oauth;
        assert!(oauth.associate_by_email && !oauth.verified_by_default);
        assert!(!oauth.state_secret.as_ref().unwrap().generated);
        let [github, corp, plain] = &oauth.providers[..] else {
            panic!("{:?}", oauth.providers)
        };
        assert_eq!(github.name, "github");
        assert_eq!(github.kind, ProviderKind::github());
        assert_eq!(github.client_secret, "gh-secret");
        assert_eq!(github.effective_scopes(), ["user:email"]);
        assert_eq!(github.redirect_url, None);
        assert_eq!(
            corp.kind,
            ProviderKind::Oidc {
                issuer: "https://sso.corp.test/realm".into()
            }
        );
        assert_eq!(corp.scopes, ["openid", "email", "groups"]);
        assert_eq!(
            corp.redirect_url.as_deref(),
            Some("https://app.corp.test/cb")
        );
        assert_eq!(
            plain.kind,
            ProviderKind::OAuth2 {
                authorize_url: "https://p.test/a".into(),
                token_url: "https://p.test/t".into(),
                userinfo_url: "https://p.test/u".into(),
            }
        );
        assert_eq!(plain.client_secret, "");
        // Google's preset by name.
        let config = Config::from_vars([
            ("OAUTH_PROVIDERS", "google"),
            ("OAUTH_GOOGLE_CLIENT_ID", "g"),
        ])
        .unwrap();
        assert_eq!(config.oauth.providers[0].kind, ProviderKind::google());
        assert!(
            config.oauth.state_secret.unwrap().generated,
            "made up outside production"
        );
        // No provider: nothing else is read.
        let config = Config::from_vars([("OAUTH_GITHUB_KIND", "nonsense")]).unwrap();
        assert!(config.oauth.providers.is_empty() && config.oauth.state_secret.is_none());
    }

    #[test]
    fn oauth_errors_name_the_variable() {
        let base = [
            ("OAUTH_PROVIDERS", "acme"),
            ("OAUTH_ACME_KIND", "oauth2"),
            ("OAUTH_ACME_CLIENT_ID", "c"),
            ("OAUTH_ACME_AUTHORIZE_URL", "https://p.test/a"),
            ("OAUTH_ACME_TOKEN_URL", "https://p.test/t"),
            ("OAUTH_ACME_USERINFO_URL", "https://p.test/u"),
        ];
        assert!(Config::from_vars(base).is_ok());
        for (vars, var) in [
            (
                without(&base, "OAUTH_ACME_CLIENT_ID"),
                "OAUTH_ACME_CLIENT_ID",
            ),
            (without(&base, "OAUTH_ACME_KIND"), "OAUTH_ACME_KIND"),
            (with(&base, "OAUTH_ACME_KIND", "saml"), "OAUTH_ACME_KIND"),
            (
                without(&base, "OAUTH_ACME_TOKEN_URL"),
                "OAUTH_ACME_TOKEN_URL",
            ),
            (
                with(&base, "OAUTH_ACME_USERINFO_URL", "ftp://x"),
                "OAUTH_ACME_USERINFO_URL",
            ),
            (
                with(&base, "OAUTH_ACME_REDIRECT_URL", "not a url"),
                "OAUTH_ACME_REDIRECT_URL",
            ),
            (
                with(&base, "OAUTH_PROVIDERS", "acme,acme"),
                "OAUTH_PROVIDERS",
            ),
            (with(&base, "OAUTH_PROVIDERS", "cookie"), "OAUTH_PROVIDERS"),
            (with(&base, "OAUTH_PROVIDERS", "Acme"), "OAUTH_PROVIDERS"),
            (
                with(&base, "OAUTH_STATE_SECRET", "short"),
                "OAUTH_STATE_SECRET",
            ),
            (
                with(&base, "OAUTH_ASSOCIATE_BY_EMAIL", "maybe"),
                "OAUTH_ASSOCIATE_BY_EMAIL",
            ),
            (
                with(&base, "OAUTH_VERIFIED_BY_DEFAULT", "2"),
                "OAUTH_VERIFIED_BY_DEFAULT",
            ),
        ] {
            let e = Config::from_vars(vars).unwrap_err().to_string();
            assert!(
                e.starts_with(var) || e.contains(&format!("{var} ")),
                "{var}: {e}"
            );
        }
        // Production: a provider needs a state secret.
        let mut prod = production();
        prod.extend(base);
        let e = Config::from_vars(prod.clone()).unwrap_err().to_string();
        assert!(e.contains("OAUTH_STATE_SECRET"), "{e}");
        prod.push(("OAUTH_STATE_SECRET", "oauth-state-secret-0123456789abcdef"));
        assert!(Config::from_vars(prod).is_ok());
    }
}
