//! The read lane: [`UserRepository::get`](portcullis_domain::UserRepository::get),
//! the one call every authenticated request makes, on connections of its
//! own, one round trip per batch of reads.
//!
//! Through SeaORM's sqlx pool a lookup by id costs three round trips to the
//! server: the ping sqlx sends as the connection leaves the pool
//! (`test_before_acquire`), the query, and the ping sqlx always sends as it
//! goes back (`return_to_pool`, in a task of its own) — plus the query
//! built by SeaORM and sea-query each time. Here the statement is written
//! once, prepared once per connection (sqlx's per-connection statement
//! cache), and sent alone: Bind, Execute, Sync, one answer.
//!
//! # Batches
//!
//! The statement reads a list of ids (`WHERE "id" = ANY($1)`). A read joins
//! the list of reads waiting for a connection; whoever gets a connection
//! takes every read waiting at that moment (at most [`MAX_BATCH`]) and sends
//! them as one query, then hands each read its row. Alone, a read is a
//! batch of one and goes at once; under load, the reads that arrive while
//! every connection is busy leave together on the next free one. The round
//! trip, the statement's execution in PostgreSQL and the system calls are
//! paid once per batch instead of once per request (group commit, for
//! reads). No timer: nothing waits for a batch to fill.
//!
//! Nothing is cached, not even within a batch: a read only ever joins a
//! query that has not been sent yet, so every answer is the row as the
//! database had it after the read was asked for — a user deactivated,
//! deleted or whose sessions were revoked before a request began is seen
//! so by that request, whatever the number of instances.
//!
//! A reader that is cancelled (its request's timeout, a client gone) while
//! it carries other reads drops their answers; each of them notices and
//! queues itself again.
//!
//! # Lost connections
//!
//! Dead connections (a PostgreSQL restart, a failover, an administrator's
//! `pg_terminate_backend`) are not pinged for: a reused connection that
//! fails as only a lost connection does (I/O, protocol, SQLSTATE classes
//! `08` and `57P`) is dropped with every idle one (they share its server's
//! fate), and the batch is tried once more on a new connection; a new
//! connection's failure is the error of every read of the batch. So the
//! first request after a restart is served, and while the server is away a
//! read fails at once (the new connection is refused) or within
//! `connect_timeout`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _, Row as _};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::entity::Stored;

/// Most ids one query carries; more waiting reads go in the next batch.
pub(crate) const MAX_BATCH: usize = 128;

/// What a read gets: the row for its id, if any.
type Answer = Result<Option<Stored>, LaneError>;

/// A read waiting for a connection.
struct Waiting {
    /// Tells it from the other reads of the list.
    ticket: u64,
    id: Uuid,
    answer: oneshot::Sender<Answer>,
}

/// Connections for reads by id, at most `slots` of them open.
pub(crate) struct ReadLane {
    connect: PgConnectOptions,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    /// Open connections not in use, the most recently used last.
    idle: Mutex<Vec<PgConnection>>,
    /// Most connections (so readers) the lane has at a time.
    slots: usize,
    /// Reads not yet taken into a batch, and the readers running.
    queue: Mutex<Queue>,
}

/// The reads waiting for a reader, and the readers taking them.
#[derive(Default)]
struct Queue {
    /// Reads not yet taken into a batch, oldest first.
    waiting: Vec<Waiting>,
    /// Readers running: each holds at most one connection.
    readers: usize,
    /// The next read's ticket.
    tickets: u64,
}

impl Queue {
    /// Up to [`MAX_BATCH`] waiting reads, the oldest; none when there are
    /// none, and then the reader stops (counted out under the same lock,
    /// so a read queued just after starts a new one).
    fn next_batch(&mut self) -> Vec<Waiting> {
        let rest = self.waiting.len().saturating_sub(MAX_BATCH);
        let mut batch = std::mem::take(&mut self.waiting);
        if rest > 0 {
            self.waiting = batch.split_off(MAX_BATCH);
        }
        batch
    }
}

/// A task that reads batches until no read waits; counted in
/// [`Queue::readers`] until it stops.
struct Reader {
    lane: Arc<ReadLane>,
    /// Still counted in `readers` (it stops counting itself under the lock
    /// it finds the list empty under).
    counted: bool,
}

impl Reader {
    async fn run(mut self, sql: &str) {
        loop {
            let batch = {
                let mut queue = lock(&self.lane.queue);
                let batch = queue.next_batch();
                if batch.is_empty() {
                    queue.readers -= 1;
                    self.counted = false;
                    return;
                }
                batch
            };
            self.lane.read(sql, batch).await;
        }
    }
}

/// A reader dropped before the list was empty (its runtime shut down, a
/// panic): the batch it held dropped its answers, and when it was the last
/// reader the reads still waiting are let go too, so that each of them
/// queues itself again and starts a reader.
impl Drop for Reader {
    fn drop(&mut self) {
        if self.counted {
            let mut queue = lock(&self.lane.queue);
            queue.readers -= 1;
            if queue.readers == 0 {
                queue.waiting.clear();
            }
        }
    }
}

/// Why a read on the lane failed. Cloned: one failure is the answer of
/// every read of its batch.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum LaneError {
    /// Opening a connection took longer than the connect timeout.
    #[error("no new connection within {0:?}")]
    ConnectTimedOut(Duration),
    /// The read waited for a connection (every one busy) longer than the
    /// acquire timeout.
    #[error("no connection for a read within {0:?}")]
    Busy(Duration),
    /// The driver's or the server's error.
    #[error(transparent)]
    Sqlx(Arc<sqlx::Error>),
}

impl From<sqlx::Error> for LaneError {
    fn from(error: sqlx::Error) -> Self {
        Self::Sqlx(Arc::new(error))
    }
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
            slots,
            queue: Mutex::new(Queue::default()),
        }
    }

    /// The row of user `id`, read with `sql`: a statement whose only
    /// parameter `$1` is an array of UUIDs and whose rows are
    /// [`Stored::from_row`]'s, the id first.
    ///
    /// The read waits in the lane's list; when fewer readers than slots are
    /// running, it starts one (a task of the caller's runtime, so a
    /// cancelled request never strands the reads it would have carried).
    pub(crate) async fn fetch_by_id(self: &Arc<Self>, sql: &Arc<str>, id: Uuid) -> Answer {
        loop {
            let (answer, mut answered) = oneshot::channel();
            let (ticket, start_reader) = {
                let mut queue = lock(&self.queue);
                let ticket = queue.tickets;
                queue.tickets = ticket.wrapping_add(1);
                queue.waiting.push(Waiting { ticket, id, answer });
                let start = queue.readers < self.slots;
                if start {
                    queue.readers += 1;
                }
                (ticket, start)
            };
            if start_reader {
                let reader = Reader {
                    lane: Arc::clone(self),
                    counted: true,
                };
                let sql = Arc::clone(sql);
                tokio::spawn(async move { reader.run(&sql).await });
            }
            let answer = match tokio::time::timeout(self.acquire_timeout, &mut answered).await {
                Ok(answer) => answer,
                // Not taken into a batch within the acquire timeout: every
                // connection stayed busy. Taken: its answer is coming.
                Err(_) if self.withdraw(ticket) => {
                    return Err(LaneError::Busy(self.acquire_timeout));
                }
                Err(_) => answered.await,
            };
            match answer {
                Ok(answer) => return answer,
                // Its reader ended without answering (its runtime is
                // shutting down): queue it again.
                Err(_) => continue,
            }
        }
    }

    /// Takes read `ticket` off the list; whether it was still there.
    fn withdraw(&self, ticket: u64) -> bool {
        let mut queue = lock(&self.queue);
        let before = queue.waiting.len();
        queue.waiting.retain(|w| w.ticket != ticket);
        queue.waiting.len() < before
    }

    /// Reads the rows of `batch` in one query and answers each of its reads.
    async fn read(&self, sql: &str, batch: Vec<Waiting>) {
        let mut ids: Vec<Uuid> = batch.iter().map(|w| w.id).collect();
        ids.sort_unstable();
        ids.dedup();
        tracing::debug!(reads = batch.len(), ids = ids.len(), "read lane batch");
        match self.query(sql, &ids).await {
            Ok(rows) => {
                for Waiting { id, answer, .. } in batch {
                    let row = rows
                        .iter()
                        .find(|(row_id, _)| *row_id == id)
                        .map(|(_, row)| row.clone());
                    // A read whose caller gave up has nobody to answer.
                    let _ = answer.send(row.transpose());
                }
            }
            Err(error) => {
                for Waiting { answer, .. } in batch {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }

    /// The rows of `ids`, each decoded (a row that does not decode is that
    /// read's error only).
    async fn query(
        &self,
        sql: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Result<Stored, LaneError>)>, LaneError> {
        let reused = self.take_idle();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let rows = match fetch(&mut conn, sql, ids).await {
            Ok(rows) => rows,
            Err(error) if !fresh && connection_lost(&error) => {
                drop(conn);
                lock(&self.idle).clear();
                conn = self.open().await?;
                fetch(&mut conn, sql, ids).await?
            }
            // The connection is dropped: whatever state it is in stays out.
            Err(error) => return Err(error.into()),
        };
        self.give_back(conn);
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, Stored::from_row(row))))
            .collect()
    }

    fn take_idle(&self) -> Option<PgConnection> {
        lock(&self.idle).pop()
    }

    fn give_back(&self, conn: PgConnection) {
        lock(&self.idle).push(conn);
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn fetch(
    conn: &mut PgConnection,
    sql: &str,
    ids: &[Uuid],
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(conn)
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
