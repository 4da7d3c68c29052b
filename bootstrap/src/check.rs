//! `portcullis check-config`: the configuration `serve` would run with,
//! shown with every secret masked, and checked — the use cases assemble, the
//! database answers and its schema is migrated, the mail server answers —
//! without changing anything: no migration, no user, no mail.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use portcullis_mail::{SmtpMailer, SmtpTls};
use portcullis_oauth_settings::{GOOGLE_ISSUER, ProviderKind};
use portcullis_store_memory::MemoryUserStore;
use secrecy::ExposeSecret as _;
use tracing::instrument::WithSubscriber as _;
use tracing::subscriber::NoSubscriber;

use crate::app::prepare_on;
use crate::config::Config;
use crate::store::{MASK, mask_url_password, schema_status};

/// How long each SMTP step (connect, TLS handshake, each command) may take
/// during the check.
pub const SMTP_CHECK_STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on each of the database and mail checks as a whole.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed; what was found.
    Ok(String),
    /// It passed, but a deployment should know: what to look at.
    Warning(String),
    /// It failed; why, and what to do when known.
    Failed(String),
}

/// One line of the report: what was checked and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `configuration`, `database`, `smtp`, or the
    /// variable a warning is about.
    pub subject: String,
    /// How it went.
    pub outcome: Outcome,
}

/// What [`check_config`] found: the settings `serve` would use (secrets
/// masked) and each check in order. Its `Display` is what `portcullis
/// check-config` prints.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Each variable and the value `serve` would use, secrets masked; empty
    /// when the configuration cannot be read.
    pub settings: Vec<(Cow<'static, str>, String)>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// A report of a configuration that cannot be read: `why` is the
    /// [`ConfigError`](crate::ConfigError), which names the variable.
    pub fn unreadable(why: impl fmt::Display) -> Self {
        let mut report = Self::default();
        report.push("configuration", Outcome::Failed(why.to_string()));
        report
    }

    /// Whether no check failed (warnings pass).
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    fn push(&mut self, subject: impl Into<String>, outcome: Outcome) {
        self.checks.push(Check {
            subject: subject.into(),
            outcome,
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.settings.is_empty() {
            writeln!(f, "Settings (secrets masked):")?;
            let width = self
                .settings
                .iter()
                .map(|(k, _)| k.len())
                .max()
                .unwrap_or(0);
            for (var, value) in &self.settings {
                writeln!(f, "  {var:<width$}  {value}")?;
            }
        }
        writeln!(f, "Checks:")?;
        for check in &self.checks {
            let (tag, text) = match &check.outcome {
                Outcome::Ok(t) => ("ok  ", t),
                Outcome::Warning(t) => ("warn", t),
                Outcome::Failed(t) => ("FAIL", t),
            };
            writeln!(f, "  {tag}  {}: {text}", check.subject)?;
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count();
        if failed == 0 {
            write!(f, "check-config: ok")
        } else {
            write!(f, "check-config: FAILED ({failed} failed)")
        }
    }
}

/// Checks `config` as `serve` would use it, changing nothing:
///
/// 1. the use cases assemble (token secrets, hasher, mail settings, cookie
///    and user field settings) and the first superuser's address and
///    password are accepted, as at start-up (on a throwaway memory store);
/// 2. warnings a deployment should heed (a generated secret, mail to the
///    log, plain-text SMTP, an insecure cookie or a memory store in
///    production);
/// 3. the database answers and its schema is migrated: a pending migration
///    **fails** the check (run `portcullis migrate`; `serve` would apply it
///    at start, but a deployment should not learn about a schema change
///    from its first start);
/// 4. the mail server answers (`SMTP_TLS` honoured, login tried with
///    credentials), each step within [`SMTP_CHECK_STEP_TIMEOUT`].
///
/// The database and mail checks are each bounded by [`CHECK_TIMEOUT`].
pub async fn check_config(config: &Config) -> CheckReport {
    let mut report = CheckReport {
        settings: settings(config),
        checks: Vec::new(),
    };
    // Everything `serve` does before listening, on a throwaway memory store:
    // the first superuser's address and password are checked by creating it
    // there. Its log lines ("first superuser created", the warnings this
    // report repeats) would describe a server that does not exist: muted.
    let memory = MemoryUserStore::new().with_user_fields(config.user_fields.clone());
    let prepared = prepare_on(config, Arc::new(memory))
        .with_subscriber(NoSubscriber::default())
        .await;
    match prepared {
        Ok(_) => report.push(
            "configuration",
            Outcome::Ok(if config.production {
                "valid for production (PORTCULLIS_ENV=production)".into()
            } else {
                "valid (development: PORTCULLIS_ENV is not production)".into()
            }),
        ),
        Err(e) => report.push("configuration", Outcome::Failed(e.to_string())),
    }
    for (var, warning) in warnings(config) {
        report.push(var, Outcome::Warning(warning));
    }
    report.push("database", bounded(check_database(config)).await);
    report.push("smtp", bounded(check_smtp(config)).await);
    report
}

async fn bounded(check: impl Future<Output = Outcome>) -> Outcome {
    actix_web::rt::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Outcome::Failed(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))
        })
}

async fn check_database(config: &Config) -> Outcome {
    let status = match schema_status(
        &config.database_url,
        config.database_max_connections,
        &config.user_fields,
    )
    .await
    {
        Ok(status) => status,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if status.location == "memory://" {
        return Outcome::Ok("memory://: nothing to reach or migrate".into());
    }
    if status.pending.is_empty() {
        Outcome::Ok(format!("{}: reachable, schema up to date", status.location))
    } else {
        Outcome::Failed(format!(
            "{}: reachable, but {} migration(s) pending: {}; run `portcullis migrate`",
            status.location,
            status.pending.len(),
            status.pending.join(", ")
        ))
    }
}

async fn check_smtp(config: &Config) -> Outcome {
    let Some(settings) = &config.smtp else {
        // The SMTP_HOST warning says what that means.
        return Outcome::Ok("not configured (SMTP_HOST is not set): nothing to reach".into());
    };
    let mailer = match SmtpMailer::new(settings.clone()) {
        Ok(m) => m.with_timeout(SMTP_CHECK_STEP_TIMEOUT),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let login = if settings.username.as_deref().is_some_and(|u| !u.is_empty()) {
        ", login accepted"
    } else {
        ""
    };
    match mailer.test_connection().await {
        Ok(()) => Outcome::Ok(format!(
            "{}:{} ({}): the server answered{login}",
            settings.host, settings.port, settings.tls
        )),
        Err(e) => Outcome::Failed(e.0),
    }
}

/// What a deployment should know about `config` without it being wrong.
fn warnings(config: &Config) -> Vec<(&'static str, String)> {
    let mut warnings = Vec::new();
    for (var, secret) in config.secrets() {
        if secret.generated {
            warnings.push((
                var,
                "not set: a random secret for this process only (tokens die with it)".to_owned(),
            ));
        }
    }
    match &config.smtp {
        None => warnings.push((
            "SMTP_HOST",
            "not set: mails, reset and verification links with their tokens, are written to \
             the log (development only)"
                .to_owned(),
        )),
        Some(smtp) if smtp.tls == SmtpTls::None => warnings.push((
            "SMTP_TLS",
            "none: mails and the SMTP password travel in plain text".to_owned(),
        )),
        Some(_) => {}
    }
    if config.production && !config.cookie_secure {
        warnings.push((
            "COOKIE_SECURE",
            "false in production: the session cookie is also sent over plain HTTP".to_owned(),
        ));
    }
    if config.production
        && config
            .database_url
            .to_ascii_lowercase()
            .starts_with("memory:")
    {
        warnings.push((
            "DATABASE_URL",
            "memory:// in production: users are lost when the process stops".to_owned(),
        ));
    }
    warnings
}

/// Each variable and the value `serve` would use; secrets and passwords
/// masked.
fn settings(config: &Config) -> Vec<(Cow<'static, str>, String)> {
    let on_off = |b: bool| b.to_string();
    let or_unset = |v: Option<&str>| v.map_or_else(|| "(unset)".to_owned(), str::to_owned);
    let listed = |text: String| {
        if text.is_empty() {
            "(none)".to_owned()
        } else {
            text
        }
    };
    let mut shown = vec![
        (
            "PORTCULLIS_ENV",
            if config.production {
                "production"
            } else {
                "development"
            }
            .to_owned(),
        ),
        ("DATABASE_URL", mask_url_password(&config.database_url)),
        (
            "DATABASE_MAX_CONNECTIONS",
            config.database_max_connections.to_string(),
        ),
        ("HOST", config.host.clone()),
        ("PORT", config.port.to_string()),
        ("API_PREFIX", config.api_prefix.clone()),
    ];
    for (var, secret) in config.secrets() {
        let value = if secret.generated {
            "(unset: random for this process only)".to_owned()
        } else {
            format!("{MASK} (set)")
        };
        shown.push((var, value));
    }
    let hasher = &config.hasher;
    shown.extend([
        (
            "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
            config.access_token_minutes.to_string(),
        ),
        ("AUTH_STRATEGY", config.auth_strategy.to_string()),
        ("PASSWORD_HASHER", hasher.algorithm.to_string()),
        ("ARGON2_MEMORY_KIB", hasher.argon2_memory_kib.to_string()),
        ("ARGON2_ITERATIONS", hasher.argon2_iterations.to_string()),
        ("ARGON2_PARALLELISM", hasher.argon2_parallelism.to_string()),
        ("HASH_QUEUE_MAX", hasher.queue_max.to_string()),
        (
            "HASH_QUEUE_TIMEOUT_MS",
            hasher.queue_timeout.as_millis().to_string(),
        ),
        (
            "PASSWORD_MIN_LENGTH",
            config.password_min_length.to_string(),
        ),
        (
            "USER_FIELDS",
            listed(
                config
                    .user_fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ),
        (
            "LOGIN_REQUIRES_VERIFICATION",
            on_off(config.login_requires_verification),
        ),
        (
            "LOGIN_LOCKOUT_FAILURES",
            config.login_lockout_failures.to_string(),
        ),
        (
            "LOGIN_LOCKOUT_MINUTES",
            config.login_lockout_minutes.to_string(),
        ),
        (
            "MAIL_PER_ADDRESS_PER_HOUR",
            config.mail_per_address_per_hour.to_string(),
        ),
        (
            "RATE_LIMIT_AUTH_PER_MINUTE",
            config.rate_limit_auth_per_minute.to_string(),
        ),
        (
            "TRUSTED_PROXIES",
            listed(config.trusted_proxies.to_string()),
        ),
        ("COOKIE_NAME", config.cookie_name.clone()),
        ("COOKIE_SECURE", on_off(config.cookie_secure)),
        ("COOKIE_DOMAIN", or_unset(config.cookie_domain.as_deref())),
        ("CORS_ORIGINS", listed(config.cors_origins.to_string())),
        ("FRONTEND_URL", config.frontend_url.clone()),
        ("LOG_FORMAT", config.log_format.to_string()),
        (
            "METRICS_ADDR",
            config
                .metrics_addr
                .clone()
                .unwrap_or_else(|| "(unset: no metrics)".to_owned()),
        ),
    ]);
    match &config.smtp {
        None => shown.push(("SMTP_HOST", "(unset: mails go to the log)".to_owned())),
        Some(smtp) => shown.extend([
            ("SMTP_HOST", smtp.host.clone()),
            ("SMTP_PORT", smtp.port.to_string()),
            ("SMTP_TLS", smtp.tls.to_string()),
            ("SMTP_USERNAME", or_unset(smtp.username.as_deref())),
            (
                "SMTP_PASSWORD",
                match &smtp.password {
                    Some(p) if !p.expose_secret().is_empty() => format!("{MASK} (set)"),
                    _ => "(unset)".to_owned(),
                },
            ),
            (
                "SMTP_CA_FILE",
                if smtp.root_certificate.is_some() {
                    "(set: a private CA is trusted)".to_owned()
                } else {
                    "(unset)".to_owned()
                },
            ),
            ("MAIL_FROM", smtp.from.clone()),
        ]),
    }
    match &config.first_superuser {
        None => shown.push(("FIRST_SUPERUSER_EMAIL", "(unset)".to_owned())),
        Some((email, _)) => shown.extend([
            ("FIRST_SUPERUSER_EMAIL", email.clone()),
            ("FIRST_SUPERUSER_PASSWORD", format!("{MASK} (set)")),
        ]),
    }
    let mut shown: Vec<(Cow<'static, str>, String)> = shown
        .into_iter()
        .map(|(var, value)| (Cow::Borrowed(var), value))
        .collect();
    shown.extend(oauth_settings(config));
    shown
}

/// The social-login settings: `OAUTH_PROVIDERS`, the state secret
/// (masked), the two switches, and each provider's variables (its client
/// secret masked).
fn oauth_settings(config: &Config) -> Vec<(Cow<'static, str>, String)> {
    let oauth = &config.oauth;
    let names: Vec<&str> = oauth.providers.iter().map(|p| p.name.as_str()).collect();
    let mut shown: Vec<(Cow<'static, str>, String)> = vec![(
        "OAUTH_PROVIDERS".into(),
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        },
    )];
    if oauth.providers.is_empty() {
        return shown;
    }
    shown.push((
        "OAUTH_STATE_SECRET".into(),
        match &oauth.state_secret {
            Some(s) if !s.generated => format!("{MASK} (set)"),
            _ => "(unset: random for this process only)".to_owned(),
        },
    ));
    shown.push((
        "OAUTH_ASSOCIATE_BY_EMAIL".into(),
        oauth.associate_by_email.to_string(),
    ));
    shown.push((
        "OAUTH_VERIFIED_BY_DEFAULT".into(),
        oauth.verified_by_default.to_string(),
    ));
    for provider in &oauth.providers {
        let var = |suffix: &str| -> Cow<'static, str> {
            crate::config::oauth_var(&provider.name, suffix).into()
        };
        let (kind, urls): (&str, Vec<(&str, String)>) = match &provider.kind {
            ProviderKind::GitHub { .. } => ("github", Vec::new()),
            ProviderKind::Oidc { issuer } if issuer == GOOGLE_ISSUER => ("google", Vec::new()),
            ProviderKind::Oidc { issuer } => ("oidc", vec![("ISSUER", issuer.clone())]),
            ProviderKind::OAuth2 {
                authorize_url,
                token_url,
                userinfo_url,
            } => (
                "oauth2",
                vec![
                    ("AUTHORIZE_URL", authorize_url.clone()),
                    ("TOKEN_URL", token_url.clone()),
                    ("USERINFO_URL", userinfo_url.clone()),
                ],
            ),
        };
        shown.push((var("KIND"), kind.to_owned()));
        for (suffix, value) in urls {
            shown.push((var(suffix), value));
        }
        shown.push((var("CLIENT_ID"), provider.client_id.clone()));
        shown.push((
            var("CLIENT_SECRET"),
            if provider.client_secret.is_empty() {
                "(unset: a public client)".to_owned()
            } else {
                format!("{MASK} (set)")
            },
        ));
        shown.push((var("SCOPES"), provider.effective_scopes().join(" ")));
        shown.push((
            var("REDIRECT_URL"),
            provider
                .redirect_url
                .clone()
                .unwrap_or_else(|| "(unset: the callback route's own URL)".to_owned()),
        ));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_and_the_rest_kept() {
        for (url, shown) in [
            (
                "postgres://portcullis:hunter2@db:5432/users",
                "postgres://portcullis:********@db:5432/users",
            ),
            (
                "postgresql://u:p@ss:w@rd@db/users?sslmode=require",
                "postgresql://u:********@db/users?sslmode=require",
            ),
            (
                "postgres://db/users?user=u&password=hunter2&sslmode=require",
                "postgres://db/users?user=u&password=********&sslmode=require",
            ),
            ("postgres://u@db/users", "postgres://u@db/users"),
            ("sqlite://portcullis.db", "sqlite://portcullis.db"),
            (
                "sqlite:///var/lib/p/users.db",
                "sqlite:///var/lib/p/users.db",
            ),
            ("memory://", "memory://"),
        ] {
            assert_eq!(mask_url_password(url), shown, "{url}");
        }
    }

    #[test]
    fn settings_show_every_secret_masked() {
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
            ("DATABASE_URL", "postgres://u:db-password-hunter4@db/users"),
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_USERNAME", "mailer"),
            ("FIRST_SUPERUSER_EMAIL", "root@example.com"),
        ];
        vars.extend(secrets);
        vars.extend([
            ("OAUTH_PROVIDERS", "github,acme"),
            ("OAUTH_GITHUB_CLIENT_ID", "gh-client"),
            ("OAUTH_ACME_KIND", "oidc"),
            ("OAUTH_ACME_ISSUER", "https://id.acme.test"),
            ("OAUTH_ACME_CLIENT_ID", "acme-client"),
        ]);
        let secrets = [
            secrets[0],
            secrets[1],
            secrets[2],
            secrets[3],
            secrets[4],
            ("OAUTH_STATE_SECRET", "oauth-state-secret-0123456789abcdef"),
            ("OAUTH_GITHUB_CLIENT_SECRET", "github-client-secret-hunter5"),
        ];
        vars.extend(&secrets[5..]);
        let config = Config::from_vars(vars).unwrap();
        let report = CheckReport {
            settings: settings(&config),
            checks: Vec::new(),
        };
        let shown = report.to_string();
        for (var, secret) in secrets {
            assert!(!shown.contains(secret), "{var} in {shown}");
            assert!(
                shown
                    .lines()
                    .any(|l| l.trim_start().starts_with(var) && l.ends_with("******** (set)")),
                "{var} in {shown}"
            );
        }
        assert!(!shown.contains("hunter4"), "{shown}");
        for line in [
            "SMTP_TLS",
            "SMTP_USERNAME",
            "FIRST_SUPERUSER_EMAIL",
            "DATABASE_URL",
        ] {
            assert!(shown.contains(line), "{line} in {shown}");
        }
        for (var, value) in [
            ("OAUTH_PROVIDERS", "github, acme"),
            ("OAUTH_GITHUB_KIND", "github"),
            ("OAUTH_GITHUB_SCOPES", "user:email"),
            ("OAUTH_ACME_KIND", "oidc"),
            ("OAUTH_ACME_ISSUER", "https://id.acme.test"),
            ("OAUTH_ACME_CLIENT_ID", "acme-client"),
            ("OAUTH_ACME_CLIENT_SECRET", "(unset: a public client)"),
            ("OAUTH_ASSOCIATE_BY_EMAIL", "false"),
        ] {
            assert!(
                shown.lines().any(|l| {
                    let l = l.trim_start();
                    l.starts_with(&format!("{var} "))
                        && l.trim_end().ends_with(&format!(" {value}"))
                }),
                "{var} = {value} in {shown}"
            );
        }
        assert!(shown.contains("starttls"), "{shown}");
    }

    #[test]
    fn a_report_fails_when_one_check_fails_and_says_how_many() {
        let mut report = CheckReport::default();
        report.push("database", Outcome::Ok("fine".into()));
        report.push("SMTP_TLS", Outcome::Warning("none".into()));
        assert!(report.passed());
        assert!(report.to_string().ends_with("check-config: ok"));
        report.push("smtp", Outcome::Failed("refused".into()));
        assert!(!report.passed());
        let shown = report.to_string();
        assert!(shown.contains("  FAIL  smtp: refused\n"), "{shown}");
        assert!(
            shown.ends_with("check-config: FAILED (1 failed)"),
            "{shown}"
        );
        let unreadable = CheckReport::unreadable("PORT: cannot read \"x\"");
        assert!(!unreadable.passed());
        assert!(
            unreadable
                .to_string()
                .contains("FAIL  configuration: PORT: cannot read"),
            "{unreadable}"
        );
    }
}
