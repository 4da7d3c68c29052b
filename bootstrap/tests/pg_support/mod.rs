//! Shared by the PostgreSQL process tests: `portcullis` processes built
//! with the `postgres` feature, on fresh databases of the server
//! `PORTCULLIS_TEST_POSTGRES_URL` names (scripts/with-postgres).

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_store_sea_orm_postgres::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
pub const SUPERUSER_EMAIL: &str = "root@example.com";
pub const SUPERUSER_PASSWORD: &str = "root-password-123";

/// A variable the script that started the cluster sets.
///
/// # Panics
/// When it is missing: these tests never skip silently.
pub fn required_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set, and this test needs the throwaway PostgreSQL cluster that \
             scripts/with-postgres starts (scripts/test does): scripts/with-postgres cargo test \
             --workspace --features portcullis-tests/postgres"
        ),
    }
}

pub fn server_url() -> String {
    required_var("PORTCULLIS_TEST_POSTGRES_URL")
}

/// `url` with its database name replaced by `name`.
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

pub async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// A fresh, empty database; returns its name and URL. Drop it with
/// [`drop_database`].
pub async fn create_database() -> (String, String) {
    let server = server_url();
    let name = format!("portcullis_process_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(&server).await;
    admin
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .unwrap();
    let _ = admin.close().await;
    let url = with_database(&server, &name);
    (name, url)
}

pub async fn drop_database(name: &str) {
    let admin = connect(&server_url()).await;
    let _ = admin
        .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .await;
    let _ = admin.close().await;
}

/// One number from a query.
pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row")
        .try_get_by_index::<i64>(0)
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `portcullis serve`, its standard error going to a file; killed
/// when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts `portcullis` on `database_url` with a first superuser.
    pub fn spawn(database_url: &str) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("portcullis-pg-{}.log", uuid::Uuid::new_v4()));
        let child = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("DATABASE_MAX_CONNECTIONS", "4")
            .env("PORT", port.to_string())
            .env("JWT_SECRET_KEY", "process-test-jwt-secret-0123456789abcdef")
            .env(
                "AUTH_RESET_PASSWORD_TOKEN_SECRET",
                "process-test-reset-secret-0123456789abc",
            )
            .env(
                "AUTH_VERIFICATION_TOKEN_SECRET",
                "process-test-verify-secret-0123456789ab",
            )
            .env("FIRST_SUPERUSER_EMAIL", SUPERUSER_EMAIL)
            .env("FIRST_SUPERUSER_PASSWORD", SUPERUSER_PASSWORD)
            .env("ARGON2_MEMORY_KIB", "8192")
            .env("ARGON2_ITERATIONS", "1")
            // The instances are hit from one address, faster than any client.
            .env("RATE_LIMIT_AUTH_PER_MINUTE", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running (not exited, not restarted)?
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until `/health` answers 200; panics after `within`, with the
    /// server's log.
    pub async fn wait_healthy(&mut self, client: &awc::Client, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Ok(res) = client.get(format!("{}/health", self.base)).send().await
                && res.status() == 200
            {
                return started.elapsed();
            }
            assert!(
                self.running(),
                "portcullis exited: {:?}\n{}",
                self.child.try_wait(),
                self.stderr()
            );
            assert!(
                started.elapsed() < within,
                "/health not 200 within {within:?}\n{}",
                self.stderr()
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
