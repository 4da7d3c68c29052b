//! The read lane: [`UserRepository::get`](portcullis_domain::UserRepository::get),
//! the one call every authenticated request makes, and
//! [`AccessTokenStore::get_access_token`](portcullis_domain::AccessTokenStore::get_access_token),
//! the one a database session's request makes before it, on connections of
//! their own, one round trip per batch of reads.
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
//! Each statement reads a list of keys (`WHERE "id" = ANY($1)`,
//! `WHERE token = ANY($1)`). A read joins the list of reads waiting for a
//! connection; whoever gets a connection takes every read waiting at that
//! moment (at most [`MAX_BATCH`]) and sends them as one query per statement
//! (users, tokens), then hands each read its row. Both kinds share the
//! list and the connections, so neither can starve the other and the lane
//! never opens more connections than its slots. Alone, a read is a
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

use portcullis_store_sql_common::sessions::{TokenRow, get_access_tokens_any_sql};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _, Row as _};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::entity::Stored;

/// Most reads one batch carries; more waiting reads go in the next batch.
pub(crate) const MAX_BATCH: usize = 128;

/// What a read gets: the row for its key, if any.
type Answer<T> = Result<Option<T>, LaneError>;

/// One read: its key, the statement that finds it, where its answer goes.
enum Ask {
    /// A user by id, with the store's statement (which selects its extra
    /// fields: stores with other fields may share the lane).
    User {
        sql: Arc<str>,
        id: Uuid,
        answer: oneshot::Sender<Answer<Stored>>,
    },
    /// A database session's token, with [`get_access_tokens_any_sql`].
    Token {
        token: String,
        answer: oneshot::Sender<Answer<TokenRow>>,
    },
}

/// A read's key and where its answer goes.
type Read<K, T> = (K, oneshot::Sender<Answer<T>>);

/// Reads of users with one statement.
type UserReads = (Arc<str>, Vec<Read<Uuid, Stored>>);

/// A read waiting for a connection.
struct Waiting {
    /// Tells it from the other reads of the list.
    ticket: u64,
    ask: Ask,
}

/// Connections for reads by key, at most `slots` of them open.
pub(crate) struct ReadLane {
    connect: PgConnectOptions,
    /// [`get_access_tokens_any_sql`], written once.
    token_sql: Arc<str>,
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
    async fn run(mut self) {
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
            self.lane.read(batch).await;
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
            token_sql: get_access_tokens_any_sql().into(),
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
    pub(crate) async fn fetch_by_id(self: &Arc<Self>, sql: &Arc<str>, id: Uuid) -> Answer<Stored> {
        self.fetch(|answer| Ask::User {
            sql: Arc::clone(sql),
            id,
            answer,
        })
        .await
    }

    /// The row of `token` in `accesstoken`, whatever its age (the caller
    /// compares `created_at` with its bound).
    pub(crate) async fn fetch_token(self: &Arc<Self>, token: &str) -> Answer<TokenRow> {
        self.fetch(|answer| Ask::Token {
            token: token.to_owned(),
            answer,
        })
        .await
    }

    /// The answer of the read `ask` makes.
    ///
    /// The read waits in the lane's list; when fewer readers than slots are
    /// running, it starts one (a task of the caller's runtime, so a
    /// cancelled request never strands the reads it would have carried).
    async fn fetch<T>(
        self: &Arc<Self>,
        ask: impl Fn(oneshot::Sender<Answer<T>>) -> Ask,
    ) -> Answer<T> {
        loop {
            let (answer, mut answered) = oneshot::channel();
            let ask = ask(answer);
            let (ticket, start_reader) = {
                let mut queue = lock(&self.queue);
                let ticket = queue.tickets;
                queue.tickets = ticket.wrapping_add(1);
                queue.waiting.push(Waiting { ticket, ask });
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
                tokio::spawn(reader.run());
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

    /// Reads the rows of `batch`, one query per statement, and answers
    /// each of its reads.
    async fn read(&self, batch: Vec<Waiting>) {
        tracing::debug!(reads = batch.len(), "read lane batch");
        // Users grouped by statement (one group but while stores with other
        // fields share the lane), then tokens.
        let mut users: Vec<UserReads> = Vec::new();
        let mut tokens = Vec::new();
        for Waiting { ask, .. } in batch {
            match ask {
                Ask::User { sql, id, answer } => {
                    // One store's reads share its statement's `Arc`: a
                    // pointer compared, not the text, on this hot path.
                    let same = |group: &Arc<str>| Arc::ptr_eq(group, &sql) || *group == sql;
                    match users.iter_mut().find(|(group, _)| same(group)) {
                        Some((_, reads)) => reads.push((id, answer)),
                        None => users.push((sql, vec![(id, answer)])),
                    }
                }
                Ask::Token { token, answer } => tokens.push((token, answer)),
            }
        }
        for (sql, reads) in users {
            let ids = keys(&reads);
            let rows = self.query(&sql, Keys::Ids(&ids)).await;
            answer(reads, rows, |row| {
                Ok((row.try_get(0)?, Stored::from_row(row)))
            });
        }
        if !tokens.is_empty() {
            let keys = keys(&tokens);
            let rows = self.query(&self.token_sql, Keys::Texts(&keys)).await;
            answer(tokens, rows, |row| {
                let token = TokenRow {
                    user_id: row.try_get(0)?,
                    token: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                };
                Ok((token.token.clone(), Ok(token)))
            });
        }
    }

    /// The rows `sql` answers for `keys`.
    async fn query(&self, sql: &str, keys: Keys<'_>) -> Result<Vec<PgRow>, LaneError> {
        let reused = self.take_idle();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let rows = match fetch(&mut conn, sql, keys).await {
            Ok(rows) => rows,
            Err(error) if !fresh && connection_lost(&error) => {
                drop(conn);
                lock(&self.idle).clear();
                conn = self.open().await?;
                fetch(&mut conn, sql, keys).await?
            }
            // The connection is dropped: whatever state it is in stays out.
            Err(error) => return Err(error.into()),
        };
        self.give_back(conn);
        Ok(rows)
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

/// The distinct keys of `reads`, sorted.
fn keys<K: Ord + Clone, A>(reads: &[(K, A)]) -> Vec<K> {
    let mut keys: Vec<K> = reads.iter().map(|(key, _)| key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Hands each of `reads` the row of its key in `rows` (decoded by `decode`
/// into its key and its row: a row that does not decode is that read's
/// error only), or every read the query's error.
fn answer<K: PartialEq, T: Clone>(
    reads: Vec<Read<K, T>>,
    rows: Result<Vec<PgRow>, LaneError>,
    decode: impl Fn(&PgRow) -> Result<(K, Result<T, LaneError>), LaneError>,
) {
    let rows = rows.and_then(|rows| rows.iter().map(&decode).collect::<Result<Vec<_>, _>>());
    match rows {
        Ok(rows) => {
            for (key, answer) in reads {
                let row = rows
                    .iter()
                    .find(|(row_key, _)| *row_key == key)
                    .map(|(_, row)| row.clone());
                // A read whose caller gave up has nobody to answer.
                let _ = answer.send(row.transpose());
            }
        }
        Err(error) => {
            for (_, answer) in reads {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}

/// The keys a statement's `$1` carries.
#[derive(Clone, Copy)]
enum Keys<'a> {
    Ids(&'a [Uuid]),
    Texts(&'a [String]),
}

async fn fetch(
    conn: &mut PgConnection,
    sql: &str,
    keys: Keys<'_>,
) -> Result<Vec<PgRow>, sqlx::Error> {
    let query = sqlx::query(AssertSqlSafe(sql));
    let query = match keys {
        Keys::Ids(ids) => query.bind(ids),
        Keys::Texts(texts) => query.bind(texts),
    };
    query.fetch_all(conn).await
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
