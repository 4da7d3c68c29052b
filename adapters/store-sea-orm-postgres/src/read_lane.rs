//! The read lane: [`UserRepository::get`](portcullis_domain::UserRepository::get),
//! the one call every authenticated request makes, on connections of its
//! own, one round trip each.
//!
//! Through SeaORM's sqlx pool a lookup by id costs three round trips to the
//! server: the ping sqlx sends as the connection leaves the pool
//! (`test_before_acquire`), the query, and the ping sqlx always sends as it
//! goes back (`return_to_pool`, in a task of its own) — plus the query
//! built by SeaORM and sea-query each time. Here the statement is written
//! once, prepared once per connection (sqlx's per-connection statement
//! cache), and sent alone: Bind, Execute, Sync, one answer.
//!
//! Nothing is cached but connections: every call reads the row as it is in
//! the database now.
//!
//! Dead connections (a PostgreSQL restart, a failover, an administrator's
//! `pg_terminate_backend`) are not pinged for: a reused connection that
//! fails as only a lost connection does (I/O, protocol, SQLSTATE classes
//! `08` and `57P`) is dropped with every idle one (they share its server's
//! fate), and the read is tried once more on a new connection; a new
//! connection's failure is the caller's error. So the first request after a
//! restart is served, and while the server is away a read fails at once
//! (the new connection is refused) or within `connect_timeout`.

use std::sync::Mutex;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Connections for reads by id, at most `slots` of them open.
pub(crate) struct ReadLane {
    connect: PgConnectOptions,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    /// Open connections not in use, the most recently used last.
    idle: Mutex<Vec<PgConnection>>,
    /// One permit per connection the lane may have open.
    slots: Semaphore,
}

/// Why a read on the lane failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaneError {
    /// Every connection stayed busy for the acquire timeout.
    #[error("no connection for a read within {0:?}")]
    Busy(Duration),
    /// Opening a connection took longer than the connect timeout.
    #[error("no new connection within {0:?}")]
    ConnectTimedOut(Duration),
    /// The driver's or the server's error.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl ReadLane {
    /// A lane of at most `slots` connections opened with `connect`.
    pub(crate) fn new(
        connect: PgConnectOptions,
        slots: usize,
        connect_timeout: Duration,
        acquire_timeout: Duration,
    ) -> Self {
        Self {
            connect,
            connect_timeout,
            acquire_timeout,
            idle: Mutex::new(Vec::with_capacity(slots)),
            slots: Semaphore::new(slots),
        }
    }

    /// The row `sql` (one `$1`, a UUID) selects for `id`, if any.
    pub(crate) async fn fetch_by_id(
        &self,
        sql: &str,
        id: Uuid,
    ) -> Result<Option<PgRow>, LaneError> {
        let _slot = tokio::time::timeout(self.acquire_timeout, self.slots.acquire())
            .await
            .map_err(|_| LaneError::Busy(self.acquire_timeout))?
            .map_err(|_| LaneError::Busy(self.acquire_timeout))?;
        let reused = self.take_idle();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.open().await?,
        };
        match fetch(&mut conn, sql, id).await {
            Ok(row) => {
                self.give_back(conn);
                Ok(row)
            }
            Err(error) if !fresh && connection_lost(&error) => {
                drop(conn);
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
                let mut conn = self.open().await?;
                let row = fetch(&mut conn, sql, id).await?;
                self.give_back(conn);
                Ok(row)
            }
            // The connection is dropped: whatever state it is in stays out.
            Err(error) => Err(error.into()),
        }
    }

    fn take_idle(&self) -> Option<PgConnection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, conn: PgConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    async fn open(&self) -> Result<PgConnection, LaneError> {
        tokio::time::timeout(
            self.connect_timeout,
            PgConnection::connect_with(&self.connect),
        )
        .await
        .map_err(|_| LaneError::ConnectTimedOut(self.connect_timeout))?
        .map_err(LaneError::from)
    }
}

async fn fetch(conn: &mut PgConnection, sql: &str, id: Uuid) -> Result<Option<PgRow>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Whether `error` is what a connection the server (or the network) ended
/// gives: worth one more try on a new connection.
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
