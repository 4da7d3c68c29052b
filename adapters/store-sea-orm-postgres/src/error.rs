use portcullis_domain::StoreError;
use sea_orm::{DbErr, SqlErr};

/// Why the store could not be opened or migrated. Each message names the
/// database (never its password) and says what is wrong in words an
/// operator can act on.
///
/// Failures of ordinary operations are [`StoreError`]s instead, as the
/// [`UserRepository`](portcullis_domain::UserRepository) port says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostgresStoreError {
    /// The URL is not a PostgreSQL connection URL.
    #[error("invalid PostgreSQL database URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL database {location}: {reason}")]
    Connect {
        /// `user@host:port/database`.
        location: String,
        /// What the driver or the server said.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate PostgreSQL database {location}: {reason}")]
    Migration {
        /// `user@host:port/database`.
        location: String,
        /// What went wrong, and what to do about it when known.
        reason: String,
    },
}

/// Turns a SeaORM error into the port's error: a unique-index violation
/// (SQLSTATE 23505, on the primary key, `ix_user_email` or
/// `ix_user_email_lower`) is a [`StoreError::Conflict`]; anything else (no
/// connection within the acquire timeout, a connection lost, the server
/// shutting down, a statement cancelled by `statement_timeout`, …) means the
/// store cannot answer now.
pub(crate) fn store_error(error: DbErr) -> StoreError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict,
        _ => StoreError::Unavailable(format!("PostgreSQL: {error}")),
    }
}

/// The message of a migration's refusal, without SeaORM's prefix.
pub(crate) fn migration_reason(error: DbErr) -> String {
    match error {
        DbErr::Migration(reason) => reason,
        other => other.to_string(),
    }
}
