//! The default user store: [`SqliteUserStore`], a
//! [`UserRepository`](portcullis_domain::UserRepository),
//! [`ThrottleLedger`](portcullis_domain::ThrottleLedger) and
//! [`AccessTokenStore`](portcullis_domain::AccessTokenStore) (and
//! [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore)) in an SQLite
//! database through Diesel 2 and an r2d2 connection pool, with embedded
//! migrations.
//!
//! ```no_run
//! # async fn start() -> Result<(), portcullis_store_diesel_sqlite::SqliteStoreError> {
//! use std::sync::Arc;
//! use portcullis_domain::Store;
//! use portcullis_store_diesel_sqlite::SqliteUserStore;
//!
//! let store = SqliteUserStore::open("sqlite://portcullis.db").await?;
//! store.migrate().await?; // harmless when already up to date
//! let store: Arc<dyn Store> = Arc::new(store);
//! # Ok(()) }
//! ```
//!
//! # Threads
//!
//! Diesel is synchronous: every call, including taking a connection from the
//! pool, runs on Tokio's blocking pool (`spawn_blocking`), never on the async
//! executor — but three lookups, on a file database: by id
//! (`UserRepository::get`, made by every authenticated request), by an
//! ASCII address (`get_by_email`, made by every login; an address that needs
//! Unicode case matching goes through the pool), and of a database session's
//! token (`get_access_token`). They run on the calling thread, on
//! that thread's own read-only connection with `busy_timeout = 0`, which
//! reads the file through a memory map
//! ([`SqliteStoreOptions::read_mmap_size`], 1 GiB by default) and, for an
//! id one of the store's readers has read before, goes first to the row's
//! last `rowid` (one table of hints per store, shared by the threads)
//! (`WHERE rowid = ? AND id = ?`, skipping the id's index; a stale hint finds
//! nothing and the index answers), and falls
//! back to the pool should SQLite answer anything but rows (a lock, I/O).
//! The lookups by id and of a token asked by one thread's tasks within two
//! turns of them go in one read transaction (a batch: one lock of the WAL
//! index for them all, see `inline_read`);
//! WAL readers never wait for the writer, so it cannot stall the executor
//! behind a write. Each connection is set up with `PRAGMA busy_timeout` (5000 ms by
//! default), `journal_mode=WAL`, `synchronous=NORMAL` and `foreign_keys=ON`.
//! Only the first connection, made when the store is opened, creates a
//! missing file; every later one (the pool's, each thread's reader) opens
//! the file's absolute path as a `file:` URI with `mode=rw`, so a database
//! removed or moved under a running server makes its calls
//! `Unavailable` instead of being replaced by an empty file.
//!
//! # Schema
//!
//! FastAPI Users' own, so a database a FastAPI Users service created can be
//! adopted in place (and read back by FastAPI Users):
//!
//! ```sql
//! CREATE TABLE user (
//!     id CHAR(36) NOT NULL,                 -- UUID text, hyphenated lowercase
//!     email VARCHAR(320) NOT NULL,
//!     hashed_password VARCHAR(1024) NOT NULL,
//!     is_active BOOLEAN NOT NULL,
//!     is_superuser BOOLEAN NOT NULL,
//!     is_verified BOOLEAN NOT NULL,
//!     role VARCHAR(20) NOT NULL DEFAULT 'student',
//!     portcullis_session_stamp BIGINT NOT NULL DEFAULT 0,  -- Portcullis' (FastAPI Users ignores it)
//!     PRIMARY KEY (id)
//! );
//! CREATE UNIQUE INDEX ix_user_email ON user (email);               -- FastAPI Users'
//! CREATE UNIQUE INDEX ix_user_email_lower ON user (lower(email));  -- Portcullis'
//! ```
//!
//! Sessions (the [`AccessTokenStore`](portcullis_domain::AccessTokenStore)):
//! FastAPI Users' own `accesstoken` table, as its SQLAlchemy adapter creates
//! it (an existing one is kept with its rows), and the session stamp column
//! above, raised in the same `UPDATE` (to `max(stamp + 1, now in ms)`) by a patch with `end_sessions`.
//! `created_at` is UTC as the text SQLAlchemy writes,
//! `2026-12-01 23:00:52.440530`; the cascade needs `foreign_keys=ON`, which
//! every connection sets:
//!
//! ```sql
//! CREATE TABLE accesstoken (
//!     user_id CHAR(36) NOT NULL, token VARCHAR(43) NOT NULL,
//!     created_at TIMESTAMP NOT NULL,
//!     PRIMARY KEY (token),
//!     FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
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
//!     id CHAR(36) NOT NULL, user_id CHAR(36) NOT NULL,
//!     oauth_name VARCHAR(100) NOT NULL, access_token VARCHAR(1024) NOT NULL,
//!     expires_at INTEGER, refresh_token VARCHAR(1024),
//!     account_id VARCHAR(320) NOT NULL, account_email VARCHAR(320) NOT NULL,
//!     PRIMARY KEY (id),
//!     FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
//! );
//! CREATE INDEX ix_oauth_account_account_id ON oauth_account (account_id);  -- FastAPI Users'
//! CREATE INDEX ix_oauth_account_oauth_name ON oauth_account (oauth_name);  -- FastAPI Users'
//! CREATE UNIQUE INDEX ix_oauth_account_oauth_name_account_id
//!     ON oauth_account (oauth_name, account_id);                           -- Portcullis'
//! ```
//!
//! Beside it, Portcullis' own table of failed-login and mail windows (the
//! [`ThrottleLedger`](portcullis_domain::ThrottleLedger), shared by every
//! process on the file; FastAPI Users ignores it), whose statements live in
//! `portcullis_store_sql_common::throttle`:
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
//! [`SqliteUserStore::migrate`] creates what is missing and keeps what
//! exists: on a FastAPI Users database it adds `role` (existing users become
//! students), `portcullis_session_stamp` (0 for them), `accesstoken` and
//! `oauth_account` if missing, `ix_portcullis_accesstoken_user_id`,
//! `ix_user_email_lower` and `ix_oauth_account_oauth_name_account_id`.
//! Diesel records applied migrations in
//! `__diesel_schema_migrations`.
//!
//! # Extra user fields
//!
//! [`SqliteUserStore::with_user_fields`] gives the store the deployment's
//! own fields; each is a column of `user` (`VARCHAR(n)`/`TEXT`, `INTEGER`,
//! `BOOLEAN`), which [`SqliteUserStore::migrate`] adds, or adopts when a
//! FastAPI Users database has it already. A lookup reads them in the same
//! query, as one extra column `json_object('first_name', "first_name", …)`;
//! `create` and `patch` write them in the same `INSERT`/`UPDATE` as the
//! other columns, values bound.
//!
//! # Case-insensitive e-mail addresses
//!
//! Two addresses are one account when their
//! [`EmailAddress::key`](portcullis_domain::EmailAddress::key)s (the whole
//! address, lowercased with full Unicode rules) are equal. SQLite's `lower()`
//! folds only ASCII letters, and an index on a custom function would make the
//! table unwritable for every program that does not register it (FastAPI
//! Users, the `sqlite3` shell), so:
//!
//! - the unique index on `lower(email)` makes the database itself refuse two
//!   addresses differing only in the case of ASCII letters (`Ann@…` and
//!   `ANN@…`), whoever writes; an all-ASCII address is looked up with one
//!   probe of that index;
//! - an address with non-ASCII characters (`Jöhn@…` and `JÖHN@…`, which that
//!   index sees as different) is matched by its full key with a function
//!   this crate registers on its own connections, over a few ranges of the
//!   same index: one per way `lower()` can spell the key's first letters
//!   (`jöhn@…`/`jÖhn@…`), at most 16. Creating or updating such an address
//!   checks for a clash and writes in one `BEGIN IMMEDIATE` transaction,
//!   which holds SQLite's single write lock, so of concurrent creates exactly
//!   one wins;
//! - an ASCII address never shares a key with a non-ASCII one, given that
//!   addresses are stored in Unicode NFC (as `EmailAddress::parse` and Python's
//!   `email-validator` store them); `email_key.rs` has the argument.
//!
//! Limits: programs other than Portcullis writing the table are held to
//! ASCII case-insensitivity only (as FastAPI Users itself is on SQLite): the
//! database refuses `ANN@…` beside `Ann@…`, but not `JÖHN@…` beside `Jöhn@…`
//! ([`SqliteUserStore::migrate`] refuses to adopt a table holding such a pair).
//! A key starting with `i` + U+0307 (the lowercase of `İ`) allows no index
//! range and is matched by a scan of the table.
//!
//! # Errors
//!
//! Opening and migrating fail with a [`SqliteStoreError`] that names the
//! database and the reason. The port's operations answer
//! [`StoreError`](portcullis_domain::StoreError): a unique-index violation is
//! `Conflict`, an unknown id in `patch` or `delete` is `NotFound`, and
//! anything else (busy past the timeout, locked, I/O, a corrupt row) is
//! `Unavailable`; nothing panics.
#![warn(missing_docs)]

mod access_token;
mod connection;
mod email_key;
mod error;
mod inline_read;
mod location;
mod migrate;
mod oauth_account;
mod schema;
mod store;
#[cfg(test)]
mod tests;
mod throttle;

pub use error::SqliteStoreError;
pub use store::{SqliteStoreOptions, SqliteUserStore};
