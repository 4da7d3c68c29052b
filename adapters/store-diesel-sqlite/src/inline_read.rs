//! Reads by id on the calling thread: [`UserRepository::get`], the one
//! store call every authenticated request makes, without the hop to
//! Tokio's blocking pool and back (two thread wake-ups, a task, a pooled
//! connection's mutex) that every other call takes.
//!
//! Each thread that reads gets one connection of its own to the file
//! (opened at its first read, read-only, `busy_timeout = 0`, reading the
//! file through a memory map of up to
//! [`read_mmap_size`](crate::SqliteStoreOptions::read_mmap_size) bytes), kept
//! while the store lives. A lookup by primary key on it takes microseconds, and a
//! reader never waits for a writer (WAL), so it cannot stall the async
//! worker behind a lock: should SQLite answer anything but rows (busy,
//! locked, I/O, a schema in flux), the connection is dropped and the read
//! goes through the pool on the blocking pool as every other call does,
//! whose answer (or error) is the caller's.
//!
//! Nothing is cached but the connection: every read sees the database as it
//! is (each autocommit `SELECT` is a new WAL read transaction).
//!
//! [`UserRepository::get`]: portcullis_domain::UserRepository::get

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::{Connection as _, SimpleConnection as _};
use diesel::sqlite::SqliteConnection;

use crate::connection::ConnectionSetup;

thread_local! {
    /// This thread's connection to each live store that read on it.
    static READERS: RefCell<Vec<Reader>> = const { RefCell::new(Vec::new()) };
}

struct Reader {
    store: Weak<Target>,
    conn: SqliteConnection,
}

/// What a reading connection opens, and the one fields expression it reads
/// with.
struct Target {
    /// [`Location::open_string`](crate::location::Location::open_string) of a file.
    path: String,
    /// The store's fields' JSON expression: the only one its readers'
    /// statements ever hold, so they may be cached by type
    /// ([`FieldsJsonOf<true>`](crate::store::FieldsJsonOf)).
    fields_json: Arc<str>,
    /// `PRAGMA mmap_size` of each reading connection.
    mmap_size: u64,
}

/// A store's reads on the calling thread. Clones share the readers.
#[derive(Clone)]
pub(crate) struct InlineReads {
    target: Arc<Target>,
}

impl InlineReads {
    /// Reads of the database file at `path` (never `:memory:`: a private
    /// in-memory database is the pool's one connection), selecting the
    /// fields with `fields_json`, the file mapped up to `mmap_size` bytes.
    pub(crate) fn new(path: String, fields_json: Arc<str>, mmap_size: u64) -> Self {
        Self {
            target: Arc::new(Target {
                path,
                fields_json,
                mmap_size,
            }),
        }
    }

    /// Reads of the same file with another fields expression, on connections
    /// of their own.
    pub(crate) fn with_fields_json(&self, fields_json: Arc<str>) -> Self {
        Self::new(self.target.path.clone(), fields_json, self.target.mmap_size)
    }

    /// `read` on this thread's connection, given the fields expression to
    /// select; `None` when there is none to be had (it could not be opened,
    /// or this thread is inside another read) or `read` failed: the caller
    /// then reads through the pool.
    pub(crate) fn run<T>(
        &self,
        read: impl FnOnce(&mut SqliteConnection, &Arc<str>) -> diesel::QueryResult<T>,
    ) -> Option<T> {
        READERS
            .try_with(|readers| {
                let mut readers = readers.try_borrow_mut().ok()?;
                // Connections of stores dropped since go now.
                readers.retain(|r| r.store.strong_count() > 0);
                let at = match readers
                    .iter()
                    .position(|r| std::ptr::eq(r.store.as_ptr(), Arc::as_ptr(&self.target)))
                {
                    Some(at) => at,
                    None => {
                        readers.push(Reader {
                            store: Arc::downgrade(&self.target),
                            conn: self.open()?,
                        });
                        readers.len() - 1
                    }
                };
                match read(&mut readers[at].conn, &self.target.fields_json) {
                    Ok(value) => Some(value),
                    Err(_) => {
                        // Whatever state it is in stays out.
                        readers.swap_remove(at);
                        None
                    }
                }
            })
            .ok()
            .flatten()
    }

    fn open(&self) -> Option<SqliteConnection> {
        let mut conn = SqliteConnection::establish(&self.target.path).ok()?;
        ConnectionSetup {
            busy_timeout: Duration::ZERO,
        }
        .apply(&mut conn)
        .ok()?;
        conn.batch_execute(&format!(
            "PRAGMA query_only = 1; PRAGMA mmap_size = {};",
            self.target.mmap_size.min(i64::MAX as u64)
        ))
        .ok()?;
        Some(conn)
    }
}
