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
//! opens a new one at its next read) and the read goes through the pool on
//! the blocking pool as every other call does, whose answer (or error) is
//! the caller's.
//!
//! # Batches
//!
//! The lookups by id and of a token go in batches
//! ([`InlineReads::batched`]): a read joins its thread's list of waiting
//! reads and its task lets two turns of the thread's tasks pass; the first
//! of their askers to come back runs every read of the list, one alone as
//! an autocommit `SELECT`, more in one `BEGIN` … `COMMIT`, and each asker
//! takes its answer. A WAL read transaction's start and end take and drop
//! the process' shared lock on the WAL index, each a `fcntl()` under a
//! mutex that every thread's reader of the file shares, and a batch pays
//! them once (what that saves is measured in `bench/throughput.sh`'s
//! header). No timer: a read alone waits two turns of an idle thread, and
//! only reads asked before the batch ran are in it.
//!
//! Nothing is cached but the connection and, shared by the store's readers,
//! where recently read rows lie ([`RowidHints`]): every read sees the
//! database as it is after it was asked for (each batch, and each
//! autocommit `SELECT`, is a new WAL read transaction, ended before its
//! askers go on).
//!
//! [`UserRepository::get`]: portcullis_domain::UserRepository::get

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use diesel::RunQueryDsl as _;
use diesel::connection::{Connection as _, SimpleConnection as _};
use diesel::sqlite::{Sqlite, SqliteConnection};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::connection::ConnectionSetup;

thread_local! {
    /// This thread's connection to each live store that read on it.
    static READERS: RefCell<Vec<Reader>> = const { RefCell::new(Vec::new()) };
}

struct Reader {
    store: Weak<Target>,
    conn: SqliteConnection,
    /// Reads asked on this thread since its last batch ([`InlineReads::batched`]).
    waiting: Vec<Ask>,
    /// Batches of more than one read run on this connection.
    #[cfg(test)]
    shared_transactions: usize,
}

/// A read waiting for its thread's next batch: it answers its asker itself
/// (and reads nothing if the asker is gone).
type Ask =
    Box<dyn FnOnce(&mut SqliteConnection, &RowidHints, &Arc<str>) -> diesel::QueryResult<()>>;

/// `BEGIN` and `COMMIT` of a batch's read transaction: statements with a
/// type of their own, so that each connection prepares them once (Diesel's
/// cache, keyed by type) rather than parsing them at each batch as
/// `batch_execute` would.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct Begin;

#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct Commit;

macro_rules! fixed_statement {
    ($name:ident, $sql:literal) => {
        impl diesel::query_builder::QueryFragment<Sqlite> for $name {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
            ) -> diesel::QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl diesel::RunQueryDsl<SqliteConnection> for $name {}
    };
}

fixed_statement!(Begin, "BEGIN");
fixed_statement!(Commit, "COMMIT");

/// Where the rows the store's readers found lie: each user id's `rowid`, for
/// up to [`RowidHints::CAPACITY`] ids, in one table of 512 KiB per store
/// that the readers of every thread share (a row one thread found spares
/// the others the search), allocated at the store's first inline read.
///
/// A hint is a guess, never an answer. The row is read again at each
/// request, by its rowid **and** its id (`WHERE rowid = ? AND id = ?`), so a
/// hint that is wrong (the user deleted, the rowid taken by another user, the
/// table renumbered by `VACUUM`, another instance's writes, two ids whose
/// hashes meet) finds no row, and the read then looks the id up as before.
/// What it saves is the descent of the id's index: at a million users, a
/// random id's index leaf is not in the CPU's caches, and this search is
/// most of what a lookup costs beyond a small table's.
///
/// Each hint is one atomic word, `tag << 40 | rowid` (the tag: 24 bits of
/// the id's hash; rowids from 1 to 2^40 - 1 are hinted, others never), in
/// sets of [`WAYS`](Self::WAYS) words that fill one cache line: a lookup
/// reads one line, and the whole table of a 20,000-user working set stays
/// in a core's L2 (a table per thread, as before, took 1.5 MiB each). Loads
/// and stores are `Relaxed`: threads putting and forgetting hints of one set
/// at once can at worst lose a hint, keep a stale one or hold one twice,
/// all of which the read checks.
pub(crate) struct RowidHints {
    sets: Box<[HintSet]>,
}

/// One cache line of hints: `0` is empty.
#[repr(align(64))]
struct HintSet([AtomicU64; RowidHints::WAYS]);

impl RowidHints {
    const WAYS: usize = 8;
    const SET_BITS: u32 = 13;
    const TAG_BITS: u32 = 24;
    const ROWID_BITS: u32 = 40;
    const ROWID_MASK: u64 = (1 << Self::ROWID_BITS) - 1;
    /// How many hints a store holds at most: 65,536 (512 KiB).
    pub(crate) const CAPACITY: usize = Self::WAYS << Self::SET_BITS;

    pub(crate) fn new() -> Self {
        Self {
            sets: (0..Self::CAPACITY / Self::WAYS)
                .map(|_| HintSet(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// `id`'s set and its tag there: the top bits of a multiplicative hash
    /// of both halves pick the set (ids need not be random), the bits below
    /// them are the tag. `None` for the nil id.
    fn locate(&self, id: &Uuid) -> Option<(&HintSet, u64)> {
        let (hi, lo) = id.as_u64_pair();
        if hi == 0 && lo == 0 {
            return None;
        }
        let hash =
            (hi.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ lo).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let set = (hash >> (64 - Self::SET_BITS)) as usize;
        let tag = (hash >> (64 - Self::SET_BITS - Self::TAG_BITS)) & ((1 << Self::TAG_BITS) - 1);
        Some((&self.sets[set], tag))
    }

    /// Whether the word `hint` is a hint for `tag` (an empty word is not).
    fn is_for(hint: u64, tag: u64) -> bool {
        hint != 0 && hint >> Self::ROWID_BITS == tag
    }

    /// Where `id`'s row was last found, if a reader remembers it.
    pub(crate) fn get(&self, id: &Uuid) -> Option<i64> {
        let (set, tag) = self.locate(id)?;
        set.0
            .iter()
            .map(|word| word.load(Ordering::Relaxed))
            .find(|&hint| Self::is_for(hint, tag))
            .map(|hint| (hint & Self::ROWID_MASK) as i64)
    }

    /// `id`'s row is at `rowid`: replaces `id`'s hint, else takes an empty
    /// word of its set, else one picked by `rowid` (a full set forgets one
    /// of its other hints). A rowid outside 1 to 2^40 - 1 is not hinted.
    pub(crate) fn put(&self, id: &Uuid, rowid: i64) {
        let Some((set, tag)) = self.locate(id) else {
            return;
        };
        if !(1..=Self::ROWID_MASK as i64).contains(&rowid) {
            return;
        }
        let hint = tag << Self::ROWID_BITS | rowid as u64;
        let words = &set.0;
        let at = words
            .iter()
            .position(|word| Self::is_for(word.load(Ordering::Relaxed), tag))
            .or_else(|| {
                words
                    .iter()
                    .position(|word| word.load(Ordering::Relaxed) == 0)
            })
            .unwrap_or(rowid as usize % Self::WAYS);
        words[at].store(hint, Ordering::Relaxed);
    }

    /// `id`'s hint was wrong: forgets it (but not a hint another thread put
    /// in its word meanwhile).
    pub(crate) fn forget(&self, id: &Uuid) {
        if let Some((set, tag)) = self.locate(id) {
            for word in &set.0 {
                let hint = word.load(Ordering::Relaxed);
                if Self::is_for(hint, tag) {
                    let _ = word.compare_exchange(hint, 0, Ordering::Relaxed, Ordering::Relaxed);
                }
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
    /// The hints every reader of the file shares, whatever its fields
    /// (made at the first read).
    hints: Arc<OnceLock<RowidHints>>,
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
                hints: Arc::default(),
            }),
        }
    }

    /// Reads of the same file with another fields expression, on connections
    /// of their own (the rowid hints shared: the rows are the same).
    pub(crate) fn with_fields_json(&self, fields_json: Arc<str>) -> Self {
        Self {
            target: Arc::new(Target {
                path: self.target.path.clone(),
                fields_json,
                hints: self.target.hints.clone(),
                ..*self.target
            }),
        }
    }

    /// `read` on this thread's connection, given the store's rowid hints and
    /// the fields expression to select; `None` when there is none to be had (it
    /// could not be opened, or this thread is inside another read) or `read`
    /// failed: the caller then reads through the pool.
    pub(crate) fn run<T>(
        &self,
        read: impl FnOnce(&mut SqliteConnection, &RowidHints, &Arc<str>) -> diesel::QueryResult<T>,
    ) -> Option<T> {
        self.on_reader(|readers, at, hints| {
            match read(&mut readers[at].conn, hints, &self.target.fields_json) {
                Ok(value) => Some(value),
                Err(_) => {
                    // Whatever state it is in stays out (the hints are
                    // the store's, not the connection's).
                    readers.swap_remove(at);
                    None
                }
            }
        })
        .flatten()
    }

    /// How many turns of its thread's tasks an asker lets pass before it
    /// runs the batch itself. Tokio runs a yielded task again after its
    /// next look at the sockets, so each turn also takes in requests that
    /// arrived meanwhile. Measured (`bench/throughput.sh`'s header, SQLite
    /// `me` at 64 connections on 2 cores): with one turn every batch held
    /// one read, with two most held more than ten and a `me` took about a
    /// quarter less CPU; three and four were slower than two. Alone, a
    /// read waits two turns of an idle thread (two non-blocking polls of
    /// its sockets).
    const TURNS: usize = 2;

    /// `read` in this thread's next batch: every read asked on this thread
    /// before the batch runs (the other requests the worker has in hand, and
    /// those that arrive within [`TURNS`](Self::TURNS) turns of its tasks)
    /// goes in one read transaction, whoever of their askers runs it first.
    /// `None`, as for [`run`](Self::run), when there is no connection to be
    /// had or the batch failed, and when the asker's task came back on
    /// another thread (a multi-threaded runtime moved it): the caller then
    /// reads through the pool.
    ///
    /// What a batch saves is the read transaction's start and end, which
    /// take and drop the process' shared lock on the WAL index (a system
    /// call each, under a mutex that every thread's reader of the file
    /// shares). Only a read asked before the batch ran is in it, so its
    /// answer is the row as the database had it after the read was asked
    /// for, as when it ran alone; nothing outlives the batch's transaction.
    pub(crate) async fn batched<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut SqliteConnection, &RowidHints, &Arc<str>) -> diesel::QueryResult<T>
        + Send
        + 'static,
    ) -> Option<T> {
        let (answer, mut answered) = oneshot::channel();
        let ask: Ask = Box::new(move |conn, hints, fields_json| {
            if answer.is_closed() {
                // Its asker is gone (its request cancelled, or it moved).
                return Ok(());
            }
            let value = read(conn, hints, fields_json)?;
            let _ = answer.send(value);
            Ok(())
        });
        self.on_reader(|readers, at, _| readers[at].waiting.push(ask))?;
        // The thread's other tasks run meanwhile, and ask theirs; another
        // asker may run the batch first.
        for _ in 0..Self::TURNS {
            tokio::task::yield_now().await;
            match answered.try_recv() {
                Ok(value) => return Some(value),
                Err(oneshot::error::TryRecvError::Closed) => return None,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
        self.run_waiting();
        // Empty: asked on a thread this task no longer runs on (that
        // thread's next batch skips the read); closed: the batch failed.
        answered.try_recv().ok()
    }

    /// Runs the reads waiting on this thread's connection: one alone as
    /// autocommit `SELECT`, more in one `BEGIN` … `COMMIT`. A failure
    /// drops the connection and every read not yet answered: their askers
    /// read through the pool.
    fn run_waiting(&self) {
        self.on_reader(|readers, at, hints| {
            let reader = &mut readers[at];
            let asks = std::mem::take(&mut reader.waiting);
            let shared = asks.len() > 1;
            let conn = &mut reader.conn;
            let fields_json = &self.target.fields_json;
            let ran = (|| {
                if shared {
                    Begin.execute(conn)?;
                }
                for ask in asks {
                    ask(conn, hints, fields_json)?;
                }
                if shared {
                    Commit.execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(())
            })();
            match ran {
                Ok(()) => {
                    #[cfg(test)]
                    {
                        reader.shared_transactions += usize::from(shared);
                    }
                }
                Err(_) => {
                    readers.swap_remove(at);
                }
            }
        });
    }

    /// How many batches of more than one read this thread's connection ran.
    #[cfg(test)]
    pub(crate) fn shared_transactions(&self) -> usize {
        self.on_reader(|readers, at, _| readers[at].shared_transactions)
            .unwrap_or(0)
    }

    /// `f` with this thread's readers, the place of this store's (opened
    /// now if the thread has none) and the store's hints; `None` when the
    /// thread's readers are in use or gone, or the connection cannot be
    /// opened.
    fn on_reader<R>(&self, f: impl FnOnce(&mut Vec<Reader>, usize, &RowidHints) -> R) -> Option<R> {
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
                            waiting: Vec::new(),
                            #[cfg(test)]
                            shared_transactions: 0,
                        });
                        readers.len() - 1
                    }
                };
                let hints = self.target.hints.get_or_init(RowidHints::new);
                Some(f(&mut readers, at, hints))
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

    /// `count` ids whose hints share one set (with distinct tags).
    fn colliding(hints: &RowidHints, count: usize) -> Vec<Uuid> {
        let first = Uuid::from_u128(1);
        let (set, _) = hints.locate(&first).unwrap();
        let mut tags = std::collections::HashSet::new();
        (1u128..)
            .map(Uuid::from_u128)
            .filter(|id| {
                let (other, tag) = hints.locate(id).unwrap();
                std::ptr::eq(set, other) && tags.insert(tag)
            })
            .take(count)
            .collect()
    }

    fn filled(hints: &RowidHints) -> usize {
        let words = hints.sets.iter().flat_map(|set| &set.0);
        words
            .filter(|word| word.load(Ordering::Relaxed) != 0)
            .count()
    }

    #[test]
    fn a_hint_is_kept_updated_and_forgotten() {
        let hints = RowidHints::new();
        let ann = Uuid::from_u128(0x0f8f_ad5b_d9cb_469f_a165_7086_7728_950e);
        let bob = Uuid::from_u128(0x7c9e_6679_7425_40de_944b_e07f_c1f9_0ae7);
        assert_eq!(hints.get(&ann), None);
        hints.put(&ann, 42);
        hints.put(&bob, (1 << 40) - 1);
        assert_eq!(
            (hints.get(&ann), hints.get(&bob)),
            (Some(42), Some((1 << 40) - 1))
        );
        hints.put(&ann, 43);
        assert_eq!(hints.get(&ann), Some(43));
        assert_eq!(filled(&hints), 2, "replaced, not added");
        hints.forget(&ann);
        assert_eq!(
            (hints.get(&ann), hints.get(&bob)),
            (None, Some((1 << 40) - 1))
        );
    }

    #[test]
    fn rowids_a_word_cannot_hold_are_not_hinted() {
        let hints = RowidHints::new();
        let ann = Uuid::from_u128(0x0f8f_ad5b_d9cb_469f_a165_7086_7728_950e);
        for rowid in [0, -7, 1 << 40, i64::MAX, i64::MIN] {
            hints.put(&ann, rowid);
            assert_eq!(hints.get(&ann), None, "{rowid}");
        }
        hints.put(&ann, 5);
        // Not hintable: the hint it had stays as it was.
        hints.put(&ann, -5);
        assert_eq!(hints.get(&ann), Some(5));
    }

    #[test]
    fn the_nil_id_is_never_hinted() {
        let hints = RowidHints::new();
        // An empty word is all zeros: it must not read as the nil id at 0.
        assert_eq!(hints.get(&Uuid::nil()), None);
        hints.put(&Uuid::nil(), 5);
        assert_eq!(hints.get(&Uuid::nil()), None);
        assert_eq!(filled(&hints), 0);
    }

    #[test]
    fn a_full_set_forgets_one_of_its_other_hints() {
        let hints = RowidHints::new();
        let ids = colliding(&hints, RowidHints::WAYS + 1);
        for (rowid, id) in (1..).zip(&ids[..RowidHints::WAYS]) {
            hints.put(id, rowid);
        }
        assert!(
            (1..)
                .zip(&ids[..RowidHints::WAYS])
                .all(|(rowid, id)| hints.get(id) == Some(rowid)),
            "a set holds WAYS hints"
        );
        hints.put(&ids[RowidHints::WAYS], 100);
        assert_eq!(hints.get(&ids[RowidHints::WAYS]), Some(100));
        let kept = (1..)
            .zip(&ids[..RowidHints::WAYS])
            .filter(|&(rowid, id)| hints.get(id) == Some(rowid))
            .count();
        assert_eq!(kept, RowidHints::WAYS - 1, "one forgotten, none wrong");
        // The other sets were not touched.
        assert_eq!(filled(&hints), RowidHints::WAYS);
    }
}
