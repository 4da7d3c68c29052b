//! Wiring: picks the adapters the configuration names, assembles the use
//! cases, creates the first superuser, and starts the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware};
use portcullis_application::UserService;
use portcullis_domain::{Mailer, Store};
use portcullis_mail::{BackgroundMailer, LogMailer, SmtpMailer};
use secrecy::ExposeSecret as _;

use crate::builder::{BuildError, PortcullisBuilder};
use crate::config::Config;
use crate::purge::{PURGE_INTERVAL, spawn_purge};
use crate::store::open_store_with_fields;
use crate::superuser::{SuperuserError, SuperuserOutcome, create_superuser, with_causes};

/// Why the server cannot start. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `DATABASE_URL` names no store compiled into this binary, or the store
    /// cannot be opened or migrated.
    #[error("DATABASE_URL: {0}")]
    Database(String),
    /// The password hasher refused its settings.
    #[error("password hasher: {0}")]
    Hasher(String),
    /// The token signer refused its settings (secrets, lifetimes).
    #[error("tokens: {0}")]
    Tokens(String),
    /// The SMTP settings cannot make a mailer.
    #[error("mail: {0}")]
    Mail(String),
    /// The first superuser could not be created: its address or password is
    /// refused, or the store failed.
    #[error("first superuser: {0}")]
    FirstSuperuser(String),
    /// The HTTP server cannot listen on the socket it was given.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The metrics endpoint cannot be served (a recorder is installed
    /// already, or its socket cannot be listened on).
    #[error("METRICS_ADDR: {0}")]
    Metrics(String),
    /// `OAUTH_PROVIDERS` names providers but this binary was built without
    /// social login (the `oauth` feature).
    #[error("OAUTH_PROVIDERS: {0}")]
    OAuth(String),
}

/// Refuses a configuration that needs what this build left out: social
/// login without the `oauth` feature (as a `DATABASE_URL` of a store not
/// built in is refused), before any store is opened.
fn refuse_features_not_built(config: &Config) -> Result<(), StartError> {
    if cfg!(feature = "oauth") || config.oauth.providers.is_empty() {
        return Ok(());
    }
    Err(oauth_not_built())
}

/// Social login asked of a build without it: how to build one that has it.
fn oauth_not_built() -> StartError {
    StartError::OAuth(
        "this portcullis was built without social login (OAuth) support; build it with \
         `cargo build --release -p portcullis --features oauth`, or leave OAUTH_PROVIDERS empty"
            .to_owned(),
    )
}

/// Assembles every use case over the adapters the configuration names.
pub async fn build_service(config: &Config) -> Result<UserService, StartError> {
    service_on(config, open_configured_store(config).await?).await
}

/// The store `DATABASE_URL` names, migrated, with the configured pool size
/// and user fields; its failures counted when metrics are recorded. A
/// configuration this build cannot serve is refused first, before the
/// store is touched.
async fn open_configured_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    refuse_features_not_built(config)?;
    let store = open_store_with_fields(
        &config.database_url,
        config.database_max_connections,
        &config.user_fields,
    )
    .await?;
    Ok(if crate::metrics_endpoint::enabled() {
        crate::metered_store::metered(store)
    } else {
        store
    })
}

/// Every use case over `store` and the other adapters the configuration
/// names.
pub(crate) async fn service_on(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<UserService, StartError> {
    refuse_features_not_built(config)?;
    for (var, secret) in [
        ("JWT_SECRET_KEY", &config.jwt_secret),
        ("AUTH_RESET_PASSWORD_TOKEN_SECRET", &config.reset_secret),
        ("AUTH_VERIFICATION_TOKEN_SECRET", &config.verify_secret),
    ] {
        if secret.generated {
            tracing::warn!(
                "!!! {var} is not set: using a random secret for this process only. Tokens will not \
                 survive a restart nor work across instances. Set it (at least 32 bytes) for any real use."
            );
        }
    }
    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(smtp) => {
            let smtp =
                SmtpMailer::new(smtp.clone()).map_err(|e| StartError::Mail(e.to_string()))?;
            Arc::new(BackgroundMailer::new(Arc::new(smtp)))
        }
        None => {
            tracing::warn!("SMTP_HOST is not set: mails are written to the log (development only)");
            Arc::new(LogMailer::new())
        }
    };
    if config
        .oauth
        .state_secret
        .as_ref()
        .is_some_and(|s| s.generated)
    {
        tracing::warn!(
            "!!! OAUTH_STATE_SECRET is not set: using a random secret for this process only. A social \
             login begun on another instance (or before a restart) fails. Set it (at least 32 bytes)."
        );
    }
    with_oauth(PortcullisBuilder::new(), config)
        .store(store)
        .hasher_config(config.hasher)
        .token_secrets(
            config.jwt_secret.value.expose_secret(),
            config.reset_secret.value.expose_secret(),
            config.verify_secret.value.expose_secret(),
        )
        .access_token_lifetime(access_token_lifetime(config))
        .mailer(mailer)
        .frontend_url(config.frontend_url.clone())
        .login_requires_verification(config.login_requires_verification)
        .login_lockout(
            config.login_lockout_failures,
            Duration::from_secs(u64::from(config.login_lockout_minutes) * 60),
        )
        .mail_per_address_per_hour(config.mail_per_address_per_hour)
        .auth_strategy(config.auth_strategy)
        .password_min_length(config.password_min_length)
        .user_fields(config.user_fields.clone())
        .auth_rate_limit_per_minute(config.rate_limit_auth_per_minute)
        .trusted_proxies(config.trusted_proxies.clone())
        .cookie_name(config.cookie_name.clone())
        .cookie_secure(config.cookie_secure)
        .cookie_domain(config.cookie_domain.clone())
        .cors_origins(config.cors_origins.clone())
        .build()
        .map_err(|e| match e {
            BuildError::Hasher(m) => StartError::Hasher(m),
            other => StartError::Tokens(other.to_string()),
        })
}

/// `builder` with the configured social login.
#[cfg(feature = "oauth")]
fn with_oauth(builder: PortcullisBuilder, config: &Config) -> PortcullisBuilder {
    let mut builder = builder
        .oauth_associate_by_email(config.oauth.associate_by_email)
        .oauth_verified_by_default(config.oauth.verified_by_default);
    if let Some(secret) = &config.oauth.state_secret {
        builder = builder.oauth_state_secret(secret.value.expose_secret());
    }
    for provider in &config.oauth.providers {
        builder = builder.oauth_provider(provider.clone());
    }
    builder
}

/// Without the `oauth` feature there is no social login to configure
/// ([`refuse_features_not_built`] has refused providers).
#[cfg(not(feature = "oauth"))]
fn with_oauth(builder: PortcullisBuilder, _config: &Config) -> PortcullisBuilder {
    builder
}

/// Creates the first superuser (active, superuser, verified, role student)
/// if no user has its address. Safe to race: a lost race is a no-op.
pub async fn ensure_first_superuser(
    service: &UserService,
    email: &str,
    password: &str,
) -> Result<(), StartError> {
    let bad = StartError::FirstSuperuser;
    match create_superuser(service, email, Some(password), false).await {
        Ok(outcome) => {
            if let SuperuserOutcome::Created(user) = outcome {
                tracing::info!(email = %user.email, "first superuser created");
            }
            Ok(())
        }
        // Present already, or created by an instance starting alongside.
        Err(SuperuserError::Exists(_)) => Ok(()),
        Err(SuperuserError::InvalidEmail(m)) => Err(bad(format!("FIRST_SUPERUSER_EMAIL: {m}"))),
        Err(SuperuserError::InvalidPassword(m)) => {
            Err(bad(format!("FIRST_SUPERUSER_PASSWORD: {m}")))
        }
        Err(e @ SuperuserError::Store(_)) => Err(bad(with_causes(&e))),
    }
}

/// Everything `serve` does before listening: the service, with the first
/// superuser in place.
pub async fn prepare(config: &Config) -> Result<UserService, StartError> {
    prepare_on(config, open_configured_store(config).await?).await
}

/// [`prepare`] over `store`.
pub(crate) async fn prepare_on(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<UserService, StartError> {
    let service = service_on(config, store).await?;
    if let Some((email, password)) = &config.first_superuser {
        ensure_first_superuser(&service, email, password.expose_secret()).await?;
    }
    Ok(service)
}

/// Starts serving `service` on `listener`. The returned server runs when
/// awaited (or spawned) and stops cleanly on SIGTERM/SIGINT. It watches its
/// connections ([`on_connect`](portcullis_http_actix::on_connect)), so a
/// request whose client has gone leaves the hashing queue. Every request is
/// logged ([`RequestLog`](portcullis_http_actix::RequestLog): one line,
/// and its id echoed as `X-Request-Id`).
pub fn serve(
    service: UserService,
    api_prefix: &str,
    listener: TcpListener,
) -> Result<Server, StartError> {
    let prefix = api_prefix.to_owned();
    let server = HttpServer::new(move || {
        App::new()
            // Security headers on every answer, /health and 404s included.
            .wrap(portcullis_http_actix::SecurityHeaders::for_prefix(&prefix))
            .configure(portcullis_http_actix::configure(service.clone(), &prefix))
            .wrap(middleware::Condition::new(
                crate::metrics_endpoint::enabled(),
                middleware::from_fn(portcullis_http_actix::record_request_metrics),
            ))
            // Outermost: one line per request, X-Request-Id on every answer.
            .wrap(portcullis_http_actix::RequestLog)
    })
    .on_connect(portcullis_http_actix::on_connect)
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}

/// `JWT_ACCESS_TOKEN_EXPIRE_MINUTES` as a duration.
fn access_token_lifetime(config: &Config) -> Duration {
    Duration::from_secs(u64::try_from(config.access_token_minutes).unwrap_or(60) * 60)
}

/// [`prepare`], then [`serve`] on `listener`; meanwhile closed failed-login
/// and mail windows and expired access tokens (older than
/// `JWT_ACCESS_TOKEN_EXPIRE_MINUTES`) are purged from the store every
/// [`PURGE_INTERVAL`] ([`spawn_purge`]), until the server has stopped and
/// let go of the store.
pub async fn start(config: Config, listener: TcpListener) -> Result<Server, StartError> {
    let store = open_configured_store(&config).await?;
    let service = prepare_on(&config, Arc::clone(&store)).await?;
    let server = serve(service, &config.api_prefix, listener)?;
    spawn_purge(&store, access_token_lifetime(&config), PURGE_INTERVAL);
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oauth_refusal_names_the_variable_and_the_feature_to_build_with() {
        let message = oauth_not_built().to_string();
        assert!(
            message.starts_with("OAUTH_PROVIDERS: ")
                && message.contains("`cargo build --release -p portcullis --features oauth`"),
            "{message}"
        );
    }

    #[test]
    fn no_provider_starts_with_or_without_the_oauth_feature() {
        let config = Config::from_vars([("DATABASE_URL", "memory://")]).unwrap();
        assert!(config.oauth.providers.is_empty());
        actix_web::rt::System::new()
            .block_on(build_service(&config))
            .unwrap();
    }

    /// Social login compiled in: the configured provider is served.
    #[cfg(feature = "oauth")]
    #[test]
    fn providers_start_with_the_oauth_feature() {
        let config = Config::from_vars([
            ("DATABASE_URL", "memory://"),
            ("OAUTH_PROVIDERS", "github"),
            ("OAUTH_GITHUB_CLIENT_ID", "gh"),
            ("OAUTH_STATE_SECRET", "oauth-state-secret-0123456789abcdef"),
        ])
        .unwrap();
        assert!(refuse_features_not_built(&config).is_ok());
        let service = actix_web::rt::System::new()
            .block_on(build_service(&config))
            .unwrap();
        assert_eq!(service.oauth_provider_names(), ["github"]);
    }

    /// Without `oauth`, providers refuse `build_service`, `prepare`,
    /// `start` (what `serve` runs) and `check-config`, with the same message,
    /// before any store is opened (the SQLite file is never created).
    #[cfg(not(feature = "oauth"))]
    #[test]
    fn providers_without_the_oauth_feature_refuse_to_start() {
        let database =
            std::env::temp_dir().join(format!("portcullis-no-oauth-{}.db", std::process::id()));
        let config = Config::from_vars([
            ("DATABASE_URL", format!("sqlite://{}", database.display())),
            ("OAUTH_PROVIDERS", "github".into()),
            ("OAUTH_GITHUB_CLIENT_ID", "gh".into()),
            (
                "OAUTH_STATE_SECRET",
                "oauth-state-secret-0123456789abcdef".into(),
            ),
        ])
        .unwrap();
        let expected = oauth_not_built().to_string();
        let runtime = actix_web::rt::System::new();
        let refusals = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let report = crate::check_config(&config).await;
            [
                build_service(&config).await.map(drop),
                prepare(&config).await.map(drop),
                start(config.clone(), listener).await.map(drop),
            ]
            .map(|r| r.unwrap_err().to_string())
            .into_iter()
            .chain(report.checks.iter().find_map(|c| match &c.outcome {
                crate::Outcome::Failed(why) if c.subject == "configuration" => Some(why.clone()),
                _ => None,
            }))
            .collect::<Vec<_>>()
        });
        let created = database.exists();
        let _ = std::fs::remove_file(&database);
        assert_eq!(refusals, vec![expected; 4]);
        assert!(!created, "{} was created", database.display());
    }
}
