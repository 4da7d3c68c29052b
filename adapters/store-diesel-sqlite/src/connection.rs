//! Setting up each connection: pragmas and the e-mail key function.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::CustomizeConnection;
use diesel::sqlite::SqliteConnection;

use crate::schema::portcullis_email_key_utils;

/// Applied to every connection the pool opens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSetup {
    pub busy_timeout: Duration,
}

impl ConnectionSetup {
    /// `busy_timeout` first, so that switching to WAL waits for another
    /// connection's lock instead of failing; then WAL (readers never block
    /// the writer), `synchronous=NORMAL` (durable at checkpoints, safe with
    /// WAL), foreign keys on. The statement that switches to WAL is also the
    /// first to read the file, so a file that is not a database fails here.
    pub(crate) fn apply(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        let millis = self.busy_timeout.as_millis().min(i32::MAX as u128);
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {millis};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;"
        ))?;
        portcullis_email_key_utils::register_impl(conn, |email: String| email.to_lowercase())
    }
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        self.apply(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}
