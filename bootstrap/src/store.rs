//! The stores compiled in, and opening the one `DATABASE_URL` names: memory
//! always, SQLite with the `sqlite` feature, PostgreSQL with `postgres`.
//! Adding a store is adding it here (its re-export and its URL scheme),
//! as a dependency and feature in `Cargo.toml`, and a run of the store
//! contract suite in `tests/`.

use std::sync::Arc;

use portcullis_domain::{Store, UserFields};
use portcullis_store_memory::MemoryUserStore as Memory;

use crate::app::StartError;
use crate::config::DEFAULT_DATABASE_MAX_CONNECTIONS;

#[cfg(feature = "sqlite")]
#[doc(inline)]
pub use portcullis_store_diesel_sqlite::{SqliteStoreError, SqliteStoreOptions, SqliteUserStore};
#[doc(inline)]
pub use portcullis_store_memory::MemoryUserStore;
#[cfg(feature = "postgres")]
#[doc(inline)]
pub use portcullis_store_sea_orm_postgres::{
    PostgresStoreError, PostgresStoreOptions, PostgresUserStore,
};

/// The store `DATABASE_URL` names, opened, with its migrations applied: the
/// users and the failed-login and mail counts (`portcullis_throttle` in an
/// SQL database), for [`PortcullisBuilder::store`](crate::PortcullisBuilder::store).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StartError> {
    open_store_with(url, DEFAULT_DATABASE_MAX_CONNECTIONS).await
}

/// [`open_store`] with a pool of at most `max_connections`
/// (`DATABASE_MAX_CONNECTIONS`; the PostgreSQL store's).
pub async fn open_store_with(
    url: &str,
    max_connections: u32,
) -> Result<Arc<dyn Store>, StartError> {
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
) -> Result<Arc<dyn Store>, StartError> {
    Ok(open_and_migrate(url, max_connections, fields).await?.0)
}

/// What a masked secret shows.
pub(crate) const MASK: &str = "********";

/// `url` with the password of its user part (`scheme://user:PASSWORD@host`)
/// and any `password=` query parameter replaced by `********`.
pub(crate) fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |i| rest.split_at(i));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:{MASK}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}={MASK}")
                    }
                    _ => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
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
) -> Result<(Arc<dyn Store>, String), StartError> {
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
            let store = Memory::new().with_user_fields(fields.clone());
            Ok((Arc::new(store), note))
        }
        "sqlite" => open_sqlite(url, fields).await,
        "postgres" | "postgresql" => open_postgres(url, max_connections, fields).await,
        _ => Err(StartError::Database(format!(
            "unsupported DATABASE_URL {:?}: expected {}",
            mask_url_password(url),
            supported_schemes()
        ))),
    }
}

/// A store that cannot be opened or migrated stops start-up.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn database(e: impl std::fmt::Display) -> StartError {
    StartError::Database(e.to_string())
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
) -> Result<(Arc<dyn Store>, String), StartError> {
    use portcullis_store_diesel_sqlite::SqliteUserStore;
    let store = SqliteUserStore::open(url)
        .await
        .map_err(database)?
        .with_user_fields(fields.clone());
    let applied = store.migrate().await.map_err(database)?;
    let note = migration_note(&store.location(), &applied);
    Ok((Arc::new(store), note))
}

/// Without the `sqlite` feature: say how to build a binary that has it.
#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(
    _url: &str,
    _fields: &UserFields,
) -> Result<(Arc<dyn Store>, String), StartError> {
    Err(not_built("SQLite", "sqlite"))
}

/// The PostgreSQL store, its pool sized by `DATABASE_MAX_CONNECTIONS`,
/// migrated (under an advisory lock: safe when instances start together).
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<(Arc<dyn Store>, String), StartError> {
    use portcullis_store_sea_orm_postgres::{PostgresStoreOptions, PostgresUserStore};
    let options = PostgresStoreOptions {
        max_connections,
        ..PostgresStoreOptions::default()
    };
    let store = PostgresUserStore::open_with(url, options)
        .await
        .map_err(database)?
        .with_user_fields(fields.clone());
    let applied = store.migrate().await.map_err(database)?;
    let note = migration_note(&store.location(), &applied);
    Ok((Arc::new(store), note))
}

/// Without the `postgres` feature: say how to build a binary that has it.
#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _max_connections: u32,
    _fields: &UserFields,
) -> Result<(Arc<dyn Store>, String), StartError> {
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

/// Where a database is and what its schema lacks: [`schema_status`]'s
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The database, as logs name it: a path, `user@host:port/database`
    /// (never a password) or `memory://`.
    pub location: String,
    /// What `migrate` would apply, in order: migration names, then
    /// `column NAME (user field)`. Empty when the schema is up to date.
    pub pending: Vec<String>,
}

/// Connects to the store `url` names and says which migrations it lacks,
/// changing nothing: an SQLite file that does not exist is an error, not
/// created; PostgreSQL is asked within its connect timeout. For
/// `portcullis check-config`.
pub async fn schema_status(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<SchemaStatus, StartError> {
    let scheme = url
        .split_once(':')
        .map_or(url, |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "memory" => Ok(SchemaStatus {
            location: "memory://".into(),
            pending: Vec::new(),
        }),
        "sqlite" => sqlite_schema_status(url, fields).await,
        "postgres" | "postgresql" => postgres_schema_status(url, max_connections, fields).await,
        _ => Err(StartError::Database(format!(
            "unsupported DATABASE_URL {:?}: expected {}",
            mask_url_password(url),
            supported_schemes()
        ))),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_schema_status(url: &str, fields: &UserFields) -> Result<SchemaStatus, StartError> {
    use portcullis_store_diesel_sqlite::{SqliteStoreOptions, SqliteUserStore};
    let store = SqliteUserStore::open_existing(url, SqliteStoreOptions::default())
        .await
        .map_err(database)?
        .with_user_fields(fields.clone());
    Ok(SchemaStatus {
        location: store.location(),
        pending: store.pending_migrations().await.map_err(database)?,
    })
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_schema_status(
    _url: &str,
    _fields: &UserFields,
) -> Result<SchemaStatus, StartError> {
    Err(not_built("SQLite", "sqlite"))
}

#[cfg(feature = "postgres")]
async fn postgres_schema_status(
    url: &str,
    max_connections: u32,
    fields: &UserFields,
) -> Result<SchemaStatus, StartError> {
    use portcullis_store_sea_orm_postgres::{PostgresStoreOptions, PostgresUserStore};
    let options = PostgresStoreOptions {
        max_connections: max_connections.min(2),
        ..PostgresStoreOptions::default()
    };
    let store = PostgresUserStore::open_with(url, options)
        .await
        .map_err(database)?
        .with_user_fields(fields.clone());
    Ok(SchemaStatus {
        location: store.location(),
        pending: store.pending_migrations().await.map_err(database)?,
    })
}

#[cfg(not(feature = "postgres"))]
async fn postgres_schema_status(
    _url: &str,
    _max_connections: u32,
    _fields: &UserFields,
) -> Result<SchemaStatus, StartError> {
    Err(not_built("PostgreSQL", "postgres"))
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
