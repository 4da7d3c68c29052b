use portcullis_domain::StoreError;
use portcullis_store_sql_common::CorruptRow;

/// Why the store could not be opened or migrated. Each message names the
/// database and says what is wrong in words an operator can act on.
///
/// Failures of ordinary operations are [`StoreError`]s instead, as the
/// [`UserRepository`](portcullis_domain::UserRepository) port says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqliteStoreError {
    /// The URL is not one this store understands.
    #[error("invalid SQLite database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database cannot be opened: missing folder, not a database file,
    /// unreadable, read-only, …
    #[error("cannot open SQLite database {location}: {reason}")]
    Open {
        /// The path (or `:memory:`).
        location: String,
        /// What SQLite or the file system said.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate SQLite database {location}: {reason}")]
    Migration {
        /// The path (or `:memory:`).
        location: String,
        /// What went wrong, and what to do about it when known.
        reason: String,
    },
}

/// Why an operation of the port failed inside this store: the port's own
/// answer, decided here (which rolls a transaction back), or SQLite, the
/// pool or the blocking pool failing. `From<Failure> for StoreError` is the
/// one conversion to the port's error; the failure is kept as its source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// `NotFound` or `Conflict`, decided by this store.
    #[error(transparent)]
    Answer(#[from] StoreError),
    /// A statement failed (busy past the timeout, locked, I/O, a full disk,
    /// a unique index refusing the write, …).
    #[error("SQLite: {0}")]
    Db(#[from] diesel::result::Error),
    /// No pooled connection within the timeout.
    #[error("no SQLite connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Called outside a Tokio runtime: there is no blocking pool to run on.
    #[error("the SQLite store must be used from within a Tokio runtime")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// The task on the blocking pool panicked or was cancelled.
    #[error("SQLite task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A stored row is no user.
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
}

/// A unique-index violation is a [`StoreError::Conflict`]; a corrupt row,
/// and anything else (busy, locked, I/O, corruption, a full disk, no
/// connection, …), means the store cannot answer now.
impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match failure {
            Failure::Answer(answer) => answer,
            Failure::Db(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                StoreError::Conflict
            }
            Failure::Corrupt(row) => row.into(),
            other => StoreError::unavailable(other),
        }
    }
}
