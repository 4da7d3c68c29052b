use portcullis_domain::StoreError;

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

/// Turns a Diesel error into the port's error: a unique-index violation is a
/// [`StoreError::Conflict`]; anything else (busy, locked, I/O, corruption, a
/// full disk, …) means the store cannot answer now.
pub(crate) fn store_error(error: diesel::result::Error) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
        other => StoreError::Unavailable(format!("SQLite: {other}")),
    }
}

/// An error inside a Diesel transaction: either the port's answer (which
/// rolls the transaction back) or a database failure.
#[derive(Debug)]
pub(crate) enum TxError {
    Store(StoreError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e,
            TxError::Db(e) => store_error(e),
        }
    }
}
