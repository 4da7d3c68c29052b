//! Reads on the calling thread: [`UserRepository::get`], the one store call
//! every authenticated request makes, and `get_by_email` for an ASCII
//! address (every login, one probe of the unique index) and
//! `get_access_token` (every request a database session authenticates),
//! without the hop to
//! Tokio's blocking pool and back (two thread wake-ups, a task, a pooled
//! connection's mutex, and under a burst of logins new blocking threads,
//! each with a fresh stack) that every other call takes.
//!
//! Each thread that reads gets one connection of its own to the file
//! (opened at its first read, read-only, `busy_timeout = 0`, reading the
//! file through a memory map of up to
//! [`read_mmap_size`](crate::SqliteStoreOptions::read_mmap_size) bytes), kept
//! while the store lives. A lookup by primary key on it takes microseconds, and a
//! reader never waits for a writer (WAL), so it cannot stall the async
//! worker behind a lock: should SQLite answer anything but rows (busy,
//! locked, I/O, a schema in flux), the connection is dropped (the thread
//! opens a new one at its next read, keeping its [`RowidHints`]) and the
//! read goes through the pool on the blocking pool as every other call does,
//! whose answer (or error) is the caller's.
//!
//! Nothing is cached but the connection and, beside it, where recently read
//! rows lie ([`RowidHints`]): every read sees the database as it is (each
//! autocommit `SELECT` is a new WAL read transaction).
//!
//! [`UserRepository::get`]: portcullis_domain::UserRepository::get

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::{Connection as _, SimpleConnection as _};
use diesel::sqlite::SqliteConnection;
use uuid::Uuid;

use crate::connection::ConnectionSetup;

thread_local! {
    /// This thread's connection to each live store that read on it.
    static READERS: RefCell<Vec<Reader>> = const { RefCell::new(Vec::new()) };
}

struct Reader {
    store: Weak<Target>,
    /// `None` after a failed read, until the next read opens another.
    conn: Option<SqliteConnection>,
    /// Kept when the connection is dropped: every hint is checked at each
    /// read anyway, so a new connection may start from them (and a failure
    /// does not cost the next reads the index's descent, or a fresh
    /// 1.5 MiB table).
    hints: RowidHints,
}

/// Where the rows this thread's reader found lie: each user id's `rowid`,
/// for the most recent ones read (a fixed table of [`RowidHints::CAPACITY`]
/// hints, 24 bytes each: 1.5 MiB per thread that reads, allocated zeroed
/// when its reader opens).
///
/// A hint is a guess, never an answer. The row is read again at each
/// request, by its rowid **and** its id (`WHERE rowid = ? AND id = ?`), so a
/// hint that is wrong (the user deleted, the rowid taken by another user, the
/// table renumbered by `VACUUM`, another instance's writes) finds no row, and
/// the read then looks the id up as before. What it saves is the descent of
/// the id's index: at a million users, a random id's index leaf is not in
/// the CPU's caches, and this search is most of what a lookup costs beyond
/// a small table's.
pub(crate) struct RowidHints {
    /// `1 << SET_BITS` sets of `WAYS` hints, each `[id's high half, its low half,
    /// rowid]`; all zeros is empty (the nil UUID is never hinted).
    slots: Vec<[u64; 3]>,
}

impl RowidHints {
    const WAYS: usize = 2;
    const SET_BITS: u32 = 15;
    /// How many hints a reader holds at most: 65,536 (1.5 MiB).
    pub(crate) const CAPACITY: usize = Self::WAYS << Self::SET_BITS;

    pub(crate) fn new() -> Self {
        Self {
            slots: vec![[0; 3]; Self::CAPACITY],
        }
    }

    /// Which set holds the hints of the id whose halves are `hi` and `lo`
    /// (a multiplicative hash of both: ids need not be random).
    fn set_index(hi: u64, lo: u64) -> usize {
        ((hi ^ lo).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::SET_BITS)) as usize
    }

    /// Where the set of `id`'s hints starts in `slots`, and `id` as stored;
    /// `None` for the nil id.
    fn locate(id: &Uuid) -> Option<(usize, [u64; 2])> {
        let (hi, lo) = id.as_u64_pair();
        (hi != 0 || lo != 0).then(|| (Self::set_index(hi, lo) * Self::WAYS, [hi, lo]))
    }

    /// The set of `id`'s hints, and `id` as stored.
    fn set(&mut self, id: &Uuid) -> Option<(&mut [[u64; 3]], [u64; 2])> {
        let (at, key) = Self::locate(id)?;
        Some((&mut self.slots[at..at + Self::WAYS], key))
    }

    /// Where `id`'s row was last found, if this reader remembers it.
    pub(crate) fn get(&self, id: &Uuid) -> Option<i64> {
        let (at, key) = Self::locate(id)?;
        self.slots[at..at + Self::WAYS]
            .iter()
            .find(|slot| slot[..2] == key)
            .map(|slot| slot[2] as i64)
    }

    /// `id`'s row is at `rowid`: the newest hint of its set, the oldest
    /// other one forgotten.
    pub(crate) fn put(&mut self, id: &Uuid, rowid: i64) {
        let Some((set, [hi, lo])) = self.set(id) else {
            return;
        };
        let at = set
            .iter()
            .position(|slot| slot[..2] == [hi, lo])
            .unwrap_or(set.len() - 1);
        set[..=at].rotate_right(1);
        set[0] = [hi, lo, rowid as u64];
    }

    /// `id`'s hint was wrong: forgets it.
    pub(crate) fn forget(&mut self, id: &Uuid) {
        if let Some((set, key)) = self.set(id) {
            for slot in set.iter_mut().filter(|slot| slot[..2] == key) {
                *slot = [0; 3];
            }
        }
    }
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

    /// `read` on this thread's connection, given its rowid hints and the
    /// fields expression to select; `None` when there is none to be had (it
    /// could not be opened, or this thread is inside another read) or `read`
    /// failed: the caller then reads through the pool.
    pub(crate) fn run<T>(
        &self,
        read: impl FnOnce(&mut SqliteConnection, &mut RowidHints, &Arc<str>) -> diesel::QueryResult<T>,
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
                            conn: Some(self.open()?),
                            hints: RowidHints::new(),
                        });
                        readers.len() - 1
                    }
                };
                let reader = &mut readers[at];
                let conn = match &mut reader.conn {
                    Some(conn) => conn,
                    none => none.insert(self.open()?),
                };
                match read(conn, &mut reader.hints, &self.target.fields_json) {
                    Ok(value) => Some(value),
                    Err(_) => {
                        // Whatever state it is in stays out.
                        reader.conn = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` ids whose hints share one set.
    fn colliding(count: usize) -> Vec<Uuid> {
        let set = RowidHints::set_index(0, 1);
        (1u128..)
            .map(Uuid::from_u128)
            .filter(|id| {
                let (hi, lo) = id.as_u64_pair();
                RowidHints::set_index(hi, lo) == set
            })
            .take(count)
            .collect()
    }

    #[test]
    fn a_hint_is_kept_updated_and_forgotten() {
        let mut hints = RowidHints::new();
        let ann = Uuid::from_u128(0x0f8f_ad5b_d9cb_469f_a165_7086_7728_950e);
        let bob = Uuid::from_u128(0x7c9e_6679_7425_40de_944b_e07f_c1f9_0ae7);
        assert_eq!(hints.get(&ann), None);
        hints.put(&ann, 42);
        hints.put(&bob, -7);
        assert_eq!((hints.get(&ann), hints.get(&bob)), (Some(42), Some(-7)));
        hints.put(&ann, 43);
        assert_eq!(hints.get(&ann), Some(43));
        hints.forget(&ann);
        assert_eq!((hints.get(&ann), hints.get(&bob)), (None, Some(-7)));
    }

    #[test]
    fn the_nil_id_is_never_hinted() {
        let mut hints = RowidHints::new();
        // An empty slot is all zeros: it must not read as the nil id at 0.
        assert_eq!(hints.get(&Uuid::nil()), None);
        hints.put(&Uuid::nil(), 5);
        assert_eq!(hints.get(&Uuid::nil()), None);
    }

    #[test]
    fn a_full_set_forgets_its_least_recently_put_hint() {
        let mut hints = RowidHints::new();
        let ids = colliding(3);
        hints.put(&ids[0], 1);
        hints.put(&ids[1], 2);
        // Put again: the newest of the set, so ids[1] is now the oldest.
        hints.put(&ids[0], 10);
        hints.put(&ids[2], 3);
        assert_eq!(
            ids.iter().map(|id| hints.get(id)).collect::<Vec<_>>(),
            [Some(10), None, Some(3)]
        );
        // The other sets were not touched.
        assert_eq!(
            hints.slots.iter().filter(|slot| **slot != [0; 3]).count(),
            RowidHints::WAYS
        );
    }
}
