//! Wiring: picks the adapters the configuration names, assembles the use
//! cases, creates the first superuser, and starts the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware};
use portcullis_application::UserService;
use portcullis_domain::{Mailer, UserFields, UserRepository};
use portcullis_mail::{BackgroundMailer, LogMailer, SmtpMailer};
use portcullis_store_memory::MemoryUserStore;
use secrecy::ExposeSecret as _;

use crate::builder::{BuildError, PortcullisBuilder};
use crate::config::{Config, DEFAULT_DATABASE_MAX_CONNECTIONS};
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
}

/// The store `DATABASE_URL` names, opened, with its migrations applied.
pub async fn open_store(url: &str) -> Result<Arc<dyn UserRepository>, StartError> {
    open_store_with(url, DEFAULT_DATABASE_MAX_CONNECTIONS).await
}

/// [`open_store`] with a pool of at most `max_connections`
/// (`DATABASE_MAX_CONNECTIONS`; the PostgreSQL store's).
pub async fn open_store_with(
    url: &str,
    max_connections: u32,
) -> Result<Arc<dyn UserRepository>, StartError> {
    open_store_with_fields(url, max_connections, &UserFields::none()).await
}

/// [`open_store_with`] for a deployment with extra user fields
/// (`USER_FIELDS`): the store reads and writes their columns, and its
/// migration adds them, or adopts them when they exist (a column of another
/// type stops start-up).
pub async fn open_store_with_fields(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<Arc<dyn UserRepository>, StartError> {
    Ok(open_and_migrate(url, max_connections, fields).await?.0)
}

/// The schemes of the stores compiled in, for error messages.
fn supported_schemes() -> String {
    let mut schemes = Vec::new();
    if cfg!(feature = "sqlite") {
        schemes.push("sqlite://FILE");
    }
    if cfg!(feature = "postgres") {
        schemes.push("postgres://USER@HOST/DATABASE");
    }
    schemes.push("memory://");
    schemes.join(", ")
}

/// Opens the store `url` names among those compiled in and applies its
/// migrations; also says what the migrations did.
async fn open_and_migrate(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<(Arc<dyn UserRepository>, String), StartError> {
    let scheme = url
        .split_once(':')
        .map_or(url, |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "memory" => {
            tracing::warn!(
                "DATABASE_URL=memory://: users live in memory and are lost when the process stops"
            );
            let note = "memory store: nothing to migrate".to_owned();
            let store = MemoryUserStore::new().with_user_fields(fields.clone());
            Ok((Arc::new(store), note))
        }
        "sqlite" => open_sqlite(url, fields).await,
        "postgres" | "postgresql" => open_postgres(url, max_connections, fields).await,
        _ => Err(StartError::Database(format!(
            "unsupported DATABASE_URL {url:?}: expected {}",
            supported_schemes()
        ))),
    }
}

/// What a migration run did, logged and returned for `portcullis migrate`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn migration_note(location: &str, applied: &[String]) -> String {
    let note = if applied.is_empty() {
        format!("{location}: schema up to date")
    } else {
        format!("{location}: applied migrations {}", applied.join(", "))
    };
    tracing::info!("{note}");
    note
}

/// The SQLite store, migrated.
#[cfg(feature = "sqlite")]
async fn open_sqlite(
    url: &str,
    fields: &UserFields,
) -> Result<(Arc<dyn UserRepository>, String), StartError> {
    use portcullis_store_diesel_sqlite::SqliteUserStore;
    let store = SqliteUserStore::open(url)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?
        .with_user_fields(fields.clone());
    let applied = store
        .migrate()
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let note = migration_note(&store.location(), &applied);
    Ok((Arc::new(store), note))
}

/// Without the `sqlite` feature: say how to build a binary that has it.
#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(
    _url: &str,
    _fields: &UserFields,
) -> Result<(Arc<dyn UserRepository>, String), StartError> {
    Err(not_built("SQLite", "sqlite"))
}

/// The PostgreSQL store, its pool sized by `DATABASE_MAX_CONNECTIONS`,
/// migrated (under an advisory lock: safe when instances start together).
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<(Arc<dyn UserRepository>, String), StartError> {
    use portcullis_store_sea_orm_postgres::{PostgresStoreOptions, PostgresUserStore};
    let options = PostgresStoreOptions {
        max_connections,
        ..PostgresStoreOptions::default()
    };
    let store = PostgresUserStore::open_with(url, options)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?
        .with_user_fields(fields.clone());
    let applied = store
        .migrate()
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let note = migration_note(&store.location(), &applied);
    Ok((Arc::new(store), note))
}

/// Without the `postgres` feature: say how to build a binary that has it.
#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _max_connections: u32,
    _fields: &UserFields,
) -> Result<(Arc<dyn UserRepository>, String), StartError> {
    Err(not_built("PostgreSQL", "postgres"))
}

/// A store this binary was built without: how to build one that has it.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(store: &str, feature: &str) -> StartError {
    StartError::Database(format!(
        "this portcullis was built without {store} support; build it with \
         `cargo build --release -p portcullis --features {feature}`, or use {}",
        supported_schemes()
    ))
}

/// Applies the migrations of the store `url` names; says what it did.
pub async fn migrate(url: &str) -> Result<String, StartError> {
    migrate_with_fields(url, &UserFields::none()).await
}

/// [`migrate`], adding (or adopting) the columns of extra user fields.
pub async fn migrate_with_fields(url: &str, fields: &UserFields) -> Result<String, StartError> {
    Ok(
        open_and_migrate(url, DEFAULT_DATABASE_MAX_CONNECTIONS, fields)
            .await?
            .1,
    )
}

/// Assembles every use case over the adapters the configuration names.
pub async fn build_service(config: &Config) -> Result<UserService, StartError> {
    let users = open_store_with_fields(
        &config.database_url,
        config.database_max_connections,
        &config.user_fields,
    )
    .await?;
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
    PortcullisBuilder::new()
        .store(users)
        .hasher_config(config.hasher)
        .token_secrets(
            config.jwt_secret.value.expose_secret(),
            config.reset_secret.value.expose_secret(),
            config.verify_secret.value.expose_secret(),
        )
        .access_token_lifetime(Duration::from_secs(
            u64::try_from(config.access_token_minutes).unwrap_or(60) * 60,
        ))
        .mailer(mailer)
        .frontend_url(config.frontend_url.clone())
        .login_requires_verification(config.login_requires_verification)
        .password_min_length(config.password_min_length)
        .user_fields(config.user_fields.clone())
        .build()
        .map_err(|e| match e {
            BuildError::Hasher(m) => StartError::Hasher(m),
            other => StartError::Tokens(other.to_string()),
        })
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
    let service = build_service(config).await?;
    if let Some((email, password)) = &config.first_superuser {
        ensure_first_superuser(&service, email, password.expose_secret()).await?;
    }
    Ok(service)
}

/// Starts serving `service` on `listener`. The returned server runs when
/// awaited (or spawned) and stops cleanly on SIGTERM/SIGINT.
pub fn serve(
    service: UserService,
    api_prefix: &str,
    listener: TcpListener,
) -> Result<Server, StartError> {
    let prefix = api_prefix.to_owned();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::Logger::new("%a \"%r\" %s %b %Dms"))
            .configure(portcullis_http_actix::configure(service.clone(), &prefix))
    })
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}

/// [`prepare`], then [`serve`] on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Server, StartError> {
    let service = prepare(&config).await?;
    serve(service, &config.api_prefix, listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(all(feature = "sqlite", feature = "postgres")))]
    #[test]
    fn a_store_not_built_in_names_the_feature_to_build_with() {
        let message = not_built("PostgreSQL", "postgres").to_string();
        assert!(
            message.contains("--features postgres") && message.starts_with("DATABASE_URL: "),
            "{message}"
        );
        assert!(message.ends_with(&supported_schemes()), "{message}");
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn both_postgres_schemes_select_the_postgres_store() {
        let runtime = actix_web::rt::System::new();
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db",
            "PostgreSQL://u@h/db",
        ] {
            let message = runtime.block_on(migrate(url)).unwrap_err().to_string();
            assert_eq!(
                message,
                not_built("PostgreSQL", "postgres").to_string(),
                "{url}"
            );
        }
    }

    #[cfg(not(feature = "sqlite"))]
    #[test]
    fn a_sqlite_url_without_the_feature_names_the_feature_to_build_with() {
        let runtime = actix_web::rt::System::new();
        let message = runtime
            .block_on(migrate("sqlite://portcullis.db"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("--features sqlite"), "{message}");
    }

    #[test]
    fn the_supported_schemes_are_those_compiled_in() {
        let schemes = supported_schemes();
        assert_eq!(schemes.contains("sqlite://"), cfg!(feature = "sqlite"));
        assert_eq!(schemes.contains("postgres://"), cfg!(feature = "postgres"));
        assert!(schemes.ends_with("memory://"));
    }
}
