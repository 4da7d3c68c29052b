//! The store for several instances on one database:
//! [`PostgresUserStore`], a [`UserRepository`](portcullis_domain::UserRepository),
//! [`ThrottleLedger`](portcullis_domain::ThrottleLedger) and
//! [`AccessTokenStore`](portcullis_domain::AccessTokenStore) (and
//! [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore)) in PostgreSQL
//! through SeaORM 2 (sqlx, Tokio, rustls), fully async, with a connection
//! pool and `sea-orm-migration` migrations.
//!
//! ```no_run
//! # async fn start() -> Result<(), portcullis_store_sea_orm_postgres::PostgresStoreError> {
//! use std::sync::Arc;
//! use portcullis_domain::Store;
//! use portcullis_store_sea_orm_postgres::{PostgresStoreOptions, PostgresUserStore};
//!
//! let options = PostgresStoreOptions { max_connections: 20, ..Default::default() };
//! let store = PostgresUserStore::open_with("postgres://portcullis@db/portcullis", options).await?;
//! store.migrate().await?; // harmless when up to date, safe to race
//! let store: Arc<dyn Store> = Arc::new(store);
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! FastAPI Users' own on PostgreSQL, so that a database a FastAPI Users
//! service created is adopted in place (and FastAPI Users can read
//! Portcullis' back):
//!
//! ```sql
//! CREATE TABLE "user" (
//!     id UUID NOT NULL,
//!     email VARCHAR(320) NOT NULL,
//!     hashed_password VARCHAR(1024) NOT NULL,
//!     is_active BOOLEAN NOT NULL,
//!     is_superuser BOOLEAN NOT NULL,
//!     is_verified BOOLEAN NOT NULL,
//!     role VARCHAR(20) NOT NULL DEFAULT 'student',
//!     portcullis_session_stamp BIGINT NOT NULL DEFAULT 0,  -- Portcullis' (FastAPI Users ignores it)
//!     PRIMARY KEY (id)
//! );
//! CREATE UNIQUE INDEX ix_user_email ON "user" (email);   -- FastAPI Users'
//! CREATE UNIQUE INDEX ix_user_email_lower                -- Portcullis'
//!     ON "user" (lower(email COLLATE "und-x-icu"));
//! ```
//!
//! Sessions (the [`AccessTokenStore`](portcullis_domain::AccessTokenStore)):
//! FastAPI Users' own `accesstoken` table, as its SQLAlchemy adapter creates
//! it (an existing one is kept with its rows), and the session stamp column
//! above, raised in the same `UPDATE` (to `max(stamp + 1, now in ms)`) by a patch with `end_sessions`:
//!
//! ```sql
//! CREATE TABLE accesstoken (
//!     user_id UUID NOT NULL, token VARCHAR(43) NOT NULL,
//!     created_at TIMESTAMP WITH TIME ZONE NOT NULL,
//!     PRIMARY KEY (token),
//!     FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
//! );
//! CREATE INDEX ix_accesstoken_created_at ON accesstoken (created_at);
//! ```
//!
//! plus Portcullis' own index on its user, which FastAPI Users' table lacks
//! (ending a user's sessions and the cascade of a user's deletion find the
//! user's tokens through it instead of reading them all):
//! `CREATE INDEX ix_portcullis_accesstoken_user_id ON accesstoken (user_id)`.
//!
//! Social login (the [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore)):
//! FastAPI Users' own `oauth_account` table, as its SQLAlchemy adapter
//! creates it (an existing one is kept with its rows), and Portcullis'
//! unique index on the provider account (the migration refuses, naming
//! them, a table that links one account twice):
//!
//! ```sql
//! CREATE TABLE oauth_account (
//!     id UUID NOT NULL, user_id UUID NOT NULL,
//!     oauth_name VARCHAR(100) NOT NULL, access_token VARCHAR(1024) NOT NULL,
//!     expires_at INTEGER, refresh_token VARCHAR(1024),
//!     account_id VARCHAR(320) NOT NULL, account_email VARCHAR(320) NOT NULL,
//!     PRIMARY KEY (id),
//!     FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
//! );
//! CREATE INDEX ix_oauth_account_oauth_name ON oauth_account (oauth_name);  -- FastAPI Users'
//! CREATE INDEX ix_oauth_account_account_id ON oauth_account (account_id);  -- FastAPI Users'
//! CREATE UNIQUE INDEX ix_oauth_account_oauth_name_account_id
//!     ON oauth_account (oauth_name, account_id);                           -- Portcullis'
//! ```
//!
//! Beside it, Portcullis' own table of failed-login and mail windows (the
//! [`ThrottleLedger`](portcullis_domain::ThrottleLedger), shared by every
//! instance on the database; FastAPI Users ignores it), whose statements
//! live in `portcullis_store_sql_common::throttle`:
//!
//! ```sql
//! CREATE TABLE portcullis_throttle (
//!     kind VARCHAR(32) NOT NULL, key VARCHAR(320) NOT NULL,
//!     window_start BIGINT NOT NULL,         -- unix milliseconds
//!     count INTEGER NOT NULL,
//!     PRIMARY KEY (kind, key)
//! );
//! CREATE INDEX ix_portcullis_throttle_kind_window_start ON portcullis_throttle (kind, window_start);
//! ```
//!
//! A hit is one `INSERT … ON CONFLICT (kind, key) DO UPDATE … RETURNING`,
//! so concurrent hits from every instance are all counted.
//!
//! [`PostgresUserStore::migrate`] creates what is missing and keeps what
//! exists: on a FastAPI Users database it adds `role` (existing users become
//! students), `portcullis_session_stamp` (0 for them), `accesstoken` and
//! `oauth_account` if missing, `ix_portcullis_accesstoken_user_id`,
//! `ix_user_email_lower`, after checking that
//! no two stored addresses are the same account (it names them if some
//! are), and `ix_oauth_account_oauth_name_account_id`, after checking that
//! no provider account is linked twice (likewise). Applied
//! migrations are recorded in SeaORM's `seaql_migrations` table.
//!
//! # Extra user fields
//!
//! [`PostgresUserStore::with_user_fields`] gives the store the deployment's
//! own fields; each is a column of `user` (`VARCHAR(n)`/`TEXT`, `INTEGER`,
//! `BOOLEAN`), which [`PostgresUserStore::migrate`] adds under the migration
//! lock, or adopts when a FastAPI Users database has it already. A lookup
//! reads them in the same query, as one extra column
//! `jsonb_build_object('first_name', "first_name", …)::text`; `create` and
//! `patch` write them in the same `INSERT`/`UPDATE … RETURNING` as the other
//! columns, values bound.
//!
//! # Case-insensitive e-mail addresses
//!
//! Two addresses are one account when their
//! [`EmailAddress::key`](portcullis_domain::EmailAddress::key)s (the whole
//! address lowercased with Unicode's full mappings) are equal. PostgreSQL
//! decides it, for every writer, with the unique index on
//! `lower(email COLLATE "und-x-icu")`: ICU's root-locale lowercase is the same
//! full mapping (`İpek` → `i̇pek`, `ΣΩΚΡΆΤΗΣ` → `σωκράτης`), where the libc
//! ctype of a `C.UTF-8` or `en_US.UTF-8` database maps one character at a
//! time (`İ` → `i`, every `Σ` → `σ`) and would part or join accounts the
//! domain does not. Lookups compare the same expression, so they probe that
//! index. The database must be UTF8 and PostgreSQL built with ICU (Debian's,
//! the official images' and most distributions' are); migrating says so
//! otherwise.
//!
//! # Several instances, outages
//!
//! - Migrations run in one transaction holding the advisory lock
//!   [`MIGRATION_LOCK_KEY`]: instances starting together take turns and the
//!   schema is changed once. Creating a user is a plain `INSERT` decided by
//!   the unique indexes, so of racing creates of one address exactly one
//!   succeeds and the others get `Conflict` (which is how racing instances
//!   all create "the" first superuser without failing).
//! - Every operation is bounded ([`PostgresStoreOptions`]): while PostgreSQL
//!   is away, operations answer [`StoreError::Unavailable`] after
//!   `acquire_timeout` (3 s by default) instead of hanging; each connection
//!   is pinged as it leaves the pool, so once PostgreSQL is back, dead
//!   connections are replaced and the store works again without a restart.
//!   Lookups by id (`UserRepository::get`, made by every authenticated
//!   request) and of a database session's token (`get_access_token`) have
//!   half of the connections to themselves (from a pool of 2 on): one round
//!   trip per batch of the lookups waiting together, no pings; a reused
//!   connection found dead is dropped with the idle ones and the read tried
//!   once on a new one.
//!
//! # Errors
//!
//! Opening and migrating fail with a [`PostgresStoreError`] that names the
//! database (`user@host:port/database`, never the password) and the reason.
//! The port's operations answer [`StoreError`]: a unique-index violation
//! (SQLSTATE 23505) is `Conflict`, an unknown id in `patch` or `delete` is
//! `NotFound`, and anything else is `Unavailable`; nothing panics.
//!
//! [`StoreError`]: portcullis_domain::StoreError
//! [`StoreError::Unavailable`]: portcullis_domain::StoreError::Unavailable
#![warn(missing_docs)]

mod access_token;
mod entity;
mod error;
mod migration;
mod oauth_account;
mod read_lane;
mod store;
mod throttle;

pub use error::PostgresStoreError;
pub use migration::{MIGRATION_LOCK_KEY, Migrator};
/// The SeaORM this store is built on (for tests and tools that talk to the
/// same database).
pub use sea_orm;
#[doc(hidden)]
pub use store::get_by_email_statement;
pub use store::{PostgresStoreOptions, PostgresUserStore};
