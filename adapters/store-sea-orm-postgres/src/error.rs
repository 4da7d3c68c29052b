use std::time::Duration;

use portcullis_domain::StoreError;
use sea_orm::{DbErr, SqlErr};
use tokio::time::error::Elapsed;

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

/// Why an operation of the port failed in PostgreSQL. `From<Failure> for
/// StoreError` is the one conversion to the port's error; the failure is
/// kept as its source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A statement failed: no connection within the acquire timeout, a
    /// connection lost, the server shutting down, a statement cancelled by
    /// `statement_timeout`, a unique index refusing the write, …
    #[error("PostgreSQL: {0}")]
    Db(#[source] DbErr),
    /// A read on the read lane failed (no connection in time, a
    /// connection lost twice, a statement cancelled, …).
    #[error("PostgreSQL: {0}")]
    Read(#[source] crate::read_lane::LaneError),
    /// The whole operation took longer than the operation timeout.
    #[error("PostgreSQL did not answer within {after:?}")]
    TimedOut {
        /// The operation timeout.
        after: Duration,
        /// Tokio's timer.
        #[source]
        source: Elapsed,
    },
}

impl From<DbErr> for Failure {
    fn from(error: DbErr) -> Self {
        Self::Db(error)
    }
}

impl From<crate::read_lane::LaneError> for Failure {
    fn from(error: crate::read_lane::LaneError) -> Self {
        Self::Read(error)
    }
}

/// A unique-index violation (SQLSTATE 23505, on the primary key,
/// `ix_user_email` or `ix_user_email_lower`) is a [`StoreError::Conflict`];
/// anything else means the store cannot answer now.
impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match &failure {
            Failure::Db(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                StoreError::Conflict
            }
            _ => StoreError::unavailable(failure),
        }
    }
}

/// The message of a migration's refusal, without SeaORM's prefix.
pub(crate) fn migration_reason(error: DbErr) -> String {
    match error {
        DbErr::Migration(reason) => reason,
        other => other.to_string(),
    }
}
