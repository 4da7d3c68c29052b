//! Fresh PostgreSQL databases for tests, in the cluster that
//! `PORTCULLIS_TEST_POSTGRES_URL` names (`scripts/with-postgres` starts a
//! throwaway one and sets it; `scripts/test` runs every test through it).
//!
//! A test that asked for PostgreSQL fails loudly when the variable is
//! missing: it never skips silently.

use std::time::Duration;

use portcullis_store_sea_orm_postgres::sea_orm::{ConnectOptions, ConnectionTrait, Database};

/// The variable that names the server: a URL of any database on it that
/// the tests may connect to as a user allowed to create databases.
pub const URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";

/// The server's URL.
///
/// # Panics
/// When [`URL_VAR`] is not set, saying how to run the tests.
pub fn server_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set, and these tests need a PostgreSQL server. Run them through \
             scripts/with-postgres, which starts a throwaway cluster (scripts/test does): \
             scripts/with-postgres cargo test --workspace --features portcullis-tests/postgres"
        ),
    }
}

/// `url` with its database name replaced by `name` (query kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A database made for one test, dropped (with `FORCE`, whoever is still
/// connected) when this is dropped.
#[derive(Debug)]
pub struct PgDatabase {
    /// The URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    server: String,
}

impl PgDatabase {
    /// Creates an empty database with a random name. Blocking, callable
    /// from anywhere (it runs on a thread of its own).
    ///
    /// # Panics
    /// When [`URL_VAR`] is not set or the server refuses.
    pub fn create() -> Self {
        let server = server_url();
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        admin(&server, format!(r#"CREATE DATABASE "{name}""#))
            .unwrap_or_else(|e| panic!("cannot create database {name} via {URL_VAR}: {e}"));
        Self {
            url: with_database(&server, &name),
            name,
            server,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        if let Err(e) = admin(&self.server, sql) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Runs one statement on the server, on a thread with its own runtime (so
/// that it works in sync code, in `Drop`, and inside any async runtime).
pub fn admin(server: &str, sql: String) -> Result<(), String> {
    let server = server.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut options = ConnectOptions::new(server);
            options
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false);
            let db = Database::connect(options)
                .await
                .map_err(|e| e.to_string())?;
            let result = db.execute_unprepared(&sql).await.map(|_| ());
            let _ = db.close().await;
            result.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t3"), "postgres://h:1/t3");
    }
}
