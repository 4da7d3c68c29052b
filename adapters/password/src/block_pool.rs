//! Argon2's working memory, reused between jobs while hashing is busy and
//! given back to the system once it has been idle a while.
//!
//! An argon2 hash fills `m` KiB of 1 KiB blocks (19 MiB at the default
//! cost, 64 MiB at FastAPI Users'). Left to the `argon2` crate, each job
//! allocates that much afresh and frees it at the end; glibc then serves
//! such sizes from per-thread arenas that keep the freed memory, and a
//! login flood spread over many blocking threads grows the process by
//! gigabytes. Here each job borrows one of at most `capacity` buffers (one
//! per permit of the [`BlockingLimiter`](crate::blocking_limiter::BlockingLimiter)),
//! made on first need: hashing memory stays at most `capacity × m` KiB, and
//! a busy server allocates nothing per hash.
//!
//! A buffer nobody has borrowed for [`KEEP_IDLE`] is freed (by a short-lived
//! thread that exists only while idle buffers wait for their time), so a
//! quiet server holds no hashing memory: the last job's buffer goes a few
//! seconds after it, while under load the buffers are lent again long
//! before. The most recently returned buffer is lent first, so when fewer
//! jobs run than before, the buffers no longer needed are the ones that age.
//! Each buffer reserves at least [`MIN_RESERVATION_BYTES`] (of which only
//! the `m` KiB used are ever touched, hence resident): glibc serves an
//! allocation that large with its own `mmap` and unmaps it when freed,
//! whereas smaller ones (below its dynamic mmap threshold, at most 32 MiB)
//! may come from an arena that keeps the memory after the free.
//!
//! A stored hash asking for more memory than a pooled buffer holds (pwdlib's
//! `m=65536`, say, under the default 19 MiB configuration) gets a temporary
//! buffer of its own for that one job, freed when it ends: the pool is not
//! grown for it, so the steady state stays what the configuration says. Such
//! a job still holds a permit, and the stored cost is capped by
//! [`MAX_ARGON2_MEMORY_KIB`](crate::MAX_ARGON2_MEMORY_KIB).
//!
//! Every computation runs on the [`LanePool`], where argon2's lanes run in
//! parallel when its threads are free.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use argon2::{Argon2, Block};

use crate::lanes::LanePool;

/// How long a buffer may stay unborrowed before it is freed.
pub(crate) const KEEP_IDLE: Duration = Duration::from_secs(10);

/// The least a buffer reserves, in bytes: above glibc's largest dynamic
/// mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit systems),
/// so that every buffer is a mapping of its own, returned to the system
/// when freed. Pages beyond the blocks in use are never touched, so they
/// cost address space, not memory.
pub(crate) const MIN_RESERVATION_BYTES: usize = 32 * 1024 * 1024 + 4096;

/// At most `capacity` argon2 block buffers of `blocks` blocks each, lent to
/// one job at a time and freed after [`KEEP_IDLE`] unborrowed.
pub(crate) struct BlockPool {
    blocks: usize,
    capacity: usize,
    keep_idle: Duration,
    lanes: Arc<LanePool>,
    /// This pool, for the thread that frees idle buffers (which must not
    /// keep a dropped pool alive).
    me: Weak<BlockPool>,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// Buffers not lent right now, the most recently returned last.
    idle: Vec<IdleBuffer>,
    /// Buffers made so far and not freed, idle or lent; never more than
    /// `capacity`.
    made: usize,
    /// Whether a thread is waiting to free idle buffers.
    releasing: bool,
}

struct IdleBuffer {
    buffer: Buffer,
    /// When it was returned.
    since: Instant,
}

/// A block buffer: `len` blocks in use, the capacity reserved.
type Buffer = Vec<Block>;

impl BlockPool {
    /// A pool lending buffers of `blocks` blocks, at most one per thread of
    /// `lanes` (one per job that may run at once), each freed after
    /// [`KEEP_IDLE`] unborrowed; its jobs' lanes run on `lanes`. Nothing is
    /// allocated until a job needs it.
    pub(crate) fn on_lanes(blocks: usize, lanes: Arc<LanePool>) -> Arc<Self> {
        Self::with_keep_idle(blocks, lanes, KEEP_IDLE)
    }

    /// [`BlockPool::on_lanes`] on a [`LanePool`] of its own, of `capacity`
    /// threads (none started until a job needs them).
    #[cfg(test)]
    pub(crate) fn new(blocks: usize, capacity: usize) -> Arc<Self> {
        Self::on_lanes(blocks, Arc::new(LanePool::new(capacity)))
    }

    /// [`BlockPool::on_lanes`] with buffers freed after `keep_idle` unborrowed.
    pub(crate) fn with_keep_idle(
        blocks: usize,
        lanes: Arc<LanePool>,
        keep_idle: Duration,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            blocks,
            capacity: lanes.threads(),
            keep_idle,
            lanes,
            me: me.clone(),
            state: Mutex::default(),
        })
    }

    /// Computes `argon2`'s hash of `secret` and `salt` into `out` on the
    /// lane threads, in a pooled buffer when the parameters fit one, else in
    /// a temporary buffer.
    ///
    /// # Errors
    /// Those of [`Argon2::hash_password_into_with_memory`], and
    /// [`argon2::Error::OutOfMemory`] when a buffer cannot be allocated.
    pub(crate) fn hash_into(
        &self,
        argon2: &Argon2<'_>,
        secret: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let needed = argon2.params().block_count();
        if needed <= self.blocks
            && let Some(mut buffer) = self.lend()?
        {
            // Only the first `block_count` blocks are used. No clearing is
            // needed: argon2's first pass overwrites every block it reads.
            return self
                .lanes
                .run(|| argon2.hash_password_into_with_memory(secret, salt, out, &mut *buffer));
        }
        // Bigger than a pooled buffer, or (never through the limiter, which
        // runs at most `capacity` jobs) every buffer is lent: a buffer for
        // this job alone, freed when done.
        let mut buffer = allocate(needed).ok_or(argon2::Error::OutOfMemory)?;
        self.lanes
            .run(|| argon2.hash_password_into_with_memory(secret, salt, out, &mut buffer))
    }

    /// An idle buffer (the most recently returned), or a new one while fewer
    /// than `capacity` exist; `None` when all are lent.
    fn lend(&self) -> argon2::Result<Option<Lease<'_>>> {
        let mut state = self.lock();
        if let Some(idle) = state.idle.pop() {
            return Ok(Some(Lease::new(self, idle.buffer)));
        }
        if state.made >= self.capacity {
            return Ok(None);
        }
        state.made += 1;
        drop(state);
        // Allocated outside the lock; the slot is already counted.
        match allocate(self.blocks) {
            Some(buffer) => Ok(Some(Lease::new(self, buffer))),
            None => {
                self.lock().made -= 1;
                Err(argon2::Error::OutOfMemory)
            }
        }
    }

    /// Takes `buffer` back, idle from `now`, and makes sure a thread will
    /// free it once it has been idle [`KEEP_IDLE`].
    fn give_back(&self, buffer: Buffer, now: Instant) {
        let mut state = self.lock();
        state.idle.push(IdleBuffer { buffer, since: now });
        if std::mem::replace(&mut state.releasing, true) {
            return; // the thread already waiting will see it
        }
        drop(state);
        let pool = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("argon2-release".to_owned())
            .spawn(move || release_when_idle(&pool));
        if let Err(error) = spawned {
            // Kept until a later return manages to start the thread.
            tracing::warn!(%error, "no thread to free idle argon2 buffers");
            self.lock().releasing = false;
        }
    }

    /// Frees the buffers idle since `now - keep_idle` or earlier; lent ones
    /// are never touched. Returns when the next idle buffer will be due, or
    /// `None` when none is left idle (then no thread is counted as
    /// releasing any more: the next return starts one).
    pub(crate) fn release_idle(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let keep_idle = self.keep_idle;
        let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|idle| now.saturating_duration_since(idle.since) >= keep_idle);
        state.idle = kept;
        state.made -= due.len();
        let next = state.idle.iter().map(|idle| idle.since + keep_idle).min();
        if next.is_none() {
            state.releasing = false;
        }
        drop(state);
        // Unmapped outside the lock.
        drop(due);
        next
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list, a count and a flag, consistent at every unlock.
        crate::lock(&self.state)
    }

    /// Blocks per pooled buffer.
    #[cfg(test)]
    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }

    /// The threads the computations run on.
    #[cfg(test)]
    pub(crate) fn lanes(&self) -> &LanePool {
        &self.lanes
    }

    /// Buffers made so far and not freed.
    #[cfg(test)]
    pub(crate) fn made(&self) -> usize {
        self.lock().made
    }

    /// Addresses of the idle buffers (all of them when no job runs), the
    /// most recently returned last.
    #[cfg(test)]
    pub(crate) fn idle_addresses(&self) -> Vec<usize> {
        let state = self.lock();
        state
            .idle
            .iter()
            .map(|idle| idle.buffer.as_ptr().addr())
            .collect()
    }
}

/// The release thread: frees idle buffers as they fall due, sleeping in
/// between, until none is left idle or the pool is gone.
fn release_when_idle(pool: &Weak<BlockPool>) {
    loop {
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        let Some(next) = pool.release_idle(now) else {
            return;
        };
        drop(pool);
        std::thread::sleep(next.saturating_duration_since(now));
    }
}

impl fmt::Debug for BlockPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("BlockPool")
            .field("blocks", &self.blocks)
            .field("capacity", &self.capacity)
            .field("keep_idle", &self.keep_idle)
            .field("made", &state.made)
            .field("idle", &state.idle.len())
            .field("releasing", &state.releasing)
            .field("lanes", &self.lanes)
            .finish()
    }
}

/// `blocks` zeroed blocks in a reservation of at least
/// [`MIN_RESERVATION_BYTES`], or `None` when the memory is not available
/// (instead of aborting the process, as an infallible allocation would).
fn allocate(blocks: usize) -> Option<Buffer> {
    let reserved = blocks.max(MIN_RESERVATION_BYTES.div_ceil(size_of::<Block>()));
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(reserved).ok()?;
    buffer.resize(blocks, Block::new());
    Some(buffer)
}

/// A lent buffer, back in the pool when dropped, even by a panicking job.
struct Lease<'a> {
    pool: &'a BlockPool,
    buffer: Option<Buffer>,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a BlockPool, buffer: Buffer) -> Self {
        Self {
            pool,
            buffer: Some(buffer),
        }
    }
}

impl Deref for Lease<'_> {
    type Target = [Block];

    fn deref(&self) -> &[Block] {
        self.buffer.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut [Block] {
        self.buffer.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Barrier;

    const SALT: &[u8] = b"saltsaltsaltsalt";
    const SECOND: Duration = Duration::from_secs(1);

    fn argon2(m_cost: u32, p_cost: u32) -> Argon2<'static> {
        let params = argon2::Params::new(m_cost, 1, p_cost, Some(32)).expect("params");
        Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
    }

    /// The hash the `argon2` crate computes with its own allocation.
    fn reference(argon2: &Argon2<'_>, secret: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        argon2
            .hash_password_into(secret, SALT, &mut out)
            .expect("hash");
        out
    }

    fn pooled(pool: &BlockPool, argon2: &Argon2<'_>, secret: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        pool.hash_into(argon2, secret, SALT, &mut out)
            .expect("hash");
        out
    }

    /// Takes a buffer out of the pool as a job would, and gives it back as
    /// idle from `since` (instead of the real time a lease's drop uses).
    fn lend_and_return_at(pool: &BlockPool, since: Instant) -> usize {
        let mut lease = pool.lend().expect("memory").expect("a buffer");
        let buffer = lease.buffer.take().expect("lent");
        let address = buffer.as_ptr().addr();
        pool.give_back(buffer, since);
        address
    }

    /// Polls `condition` for up to 10 s.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        condition()
    }

    #[test]
    fn sequential_jobs_reuse_one_buffer_and_match_the_crate() {
        let argon2 = argon2(64, 1);
        let pool = BlockPool::new(argon2.params().block_count(), 4);
        assert_eq!(pool.made(), 0, "nothing is allocated up front");
        assert!(!pool.lanes().started(), "no thread started up front");

        let first = pooled(&pool, &argon2, b"first");
        let buffer = pool.idle_addresses();
        assert_eq!(buffer.len(), 1);
        // Dirty buffer from the previous job: the result must not depend on it.
        for secret in [&b"second"[..], b"first", b""] {
            assert_eq!(pooled(&pool, &argon2, secret), reference(&argon2, secret));
            assert_eq!(pool.idle_addresses(), buffer, "the same buffer, again");
        }
        assert_eq!(first, reference(&argon2, b"first"));
        assert_eq!(pool.made(), 1);
    }

    #[test]
    fn lanes_run_on_the_pool_threads_and_match_the_crate() {
        let pool = BlockPool::new(argon2(256, 4).params().block_count(), 2);
        for argon2 in [argon2(256, 4), argon2(128, 2), argon2(64, 1)] {
            assert_eq!(pooled(&pool, &argon2, b"pw"), reference(&argon2, b"pw"));
        }
        assert!(pool.lanes().started());
        assert_eq!(pool.lanes().threads(), 2, "one thread per slot");
    }

    #[test]
    fn smaller_parameters_share_the_pooled_buffer() {
        let pool = BlockPool::new(argon2(64, 1).params().block_count(), 1);
        for argon2 in [argon2(64, 1), argon2(32, 2), argon2(8, 1)] {
            assert_eq!(pooled(&pool, &argon2, b"pw"), reference(&argon2, b"pw"));
        }
        assert_eq!(pool.made(), 1);
    }

    #[test]
    fn bigger_parameters_use_a_temporary_buffer_and_leave_the_pool_alone() {
        let pool = BlockPool::new(argon2(64, 1).params().block_count(), 2);
        pooled(&pool, &argon2(64, 1), b"pw");
        let buffers = pool.idle_addresses();

        let bigger = argon2(256, 4);
        assert_eq!(pooled(&pool, &bigger, b"pw"), reference(&bigger, b"pw"));
        assert_eq!(pool.made(), 1, "no pooled buffer made for it");
        assert_eq!(pool.idle_addresses(), buffers);
        assert_eq!(pool.blocks(), 64);
    }

    #[test]
    fn concurrent_jobs_never_make_more_buffers_than_the_capacity() {
        let argon2 = Arc::new(argon2(64, 1));
        let pool = BlockPool::new(argon2.params().block_count(), 3);
        let expected = reference(&argon2, b"pw");
        let threads = 8;
        let start = Arc::new(Barrier::new(threads));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (argon2, pool, start) = (argon2.clone(), pool.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..20).all(|_| pooled(&pool, &argon2, b"pw") == expected)
                })
            })
            .collect();
        for worker in workers {
            assert!(worker.join().expect("thread"), "a hash came out wrong");
        }
        // More threads than buffers: the surplus used temporary buffers.
        assert!((1..=3).contains(&pool.made()), "{pool:?}");
        let idle: HashSet<_> = pool.idle_addresses().into_iter().collect();
        assert_eq!(idle.len(), pool.made(), "every buffer made came back");
    }

    #[test]
    fn a_buffer_comes_back_when_its_job_panics() {
        let pool = BlockPool::new(8, 1);
        // The pool's state is consistent at every unlock (its lock is
        // poison-tolerant), which is what this test checks.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _lease = pool.lend().expect("memory").expect("a buffer");
            panic!("job failed");
        }));
        assert!(outcome.is_err());
        assert_eq!((pool.made(), pool.idle_addresses().len()), (1, 1));
    }

    #[test]
    fn every_buffer_reserves_enough_to_be_a_mapping_of_its_own() {
        let small = allocate(8).expect("memory");
        assert_eq!(small.len(), 8, "only the blocks asked for are in use");
        assert!(small.capacity() * size_of::<Block>() >= MIN_RESERVATION_BYTES);
        let big = allocate(65_536).expect("memory");
        assert_eq!((big.len(), big.capacity()), (65_536, 65_536));
    }

    #[test]
    fn a_buffer_idle_for_the_keep_time_is_freed_and_the_next_job_makes_one_again() {
        let argon2 = argon2(64, 1);
        let pool = BlockPool::new(argon2.params().block_count(), 2);
        let t0 = Instant::now();
        lend_and_return_at(&pool, t0);

        // Not yet due: kept, and when it will be says so.
        assert_eq!(pool.release_idle(t0), Some(t0 + KEEP_IDLE));
        assert_eq!(
            pool.release_idle(t0 + KEEP_IDLE - SECOND),
            Some(t0 + KEEP_IDLE)
        );
        assert_eq!((pool.made(), pool.idle_addresses().len()), (1, 1));

        // Due: freed, nothing left to wait for.
        assert_eq!(pool.release_idle(t0 + KEEP_IDLE), None);
        assert_eq!((pool.made(), pool.idle_addresses().len()), (0, 0));

        // The next job makes a buffer afresh, and hashes right.
        assert_eq!(pooled(&pool, &argon2, b"pw"), reference(&argon2, b"pw"));
        assert_eq!((pool.made(), pool.idle_addresses().len()), (1, 1));
    }

    #[test]
    fn a_lent_buffer_is_never_freed() {
        let pool = BlockPool::new(8, 2);
        let t0 = Instant::now();
        let lease = pool.lend().expect("memory").expect("a buffer");
        assert_eq!(pool.release_idle(t0 + 1000 * KEEP_IDLE), None);
        assert_eq!(pool.made(), 1, "the lent buffer still counts");
        drop(lease);
        assert_eq!(pool.idle_addresses().len(), 1, "and comes back");
    }

    #[test]
    fn buffers_in_use_are_kept_and_those_no_longer_needed_age_out() {
        let pool = BlockPool::new(8, 2);
        let t0 = Instant::now();
        // Two jobs at once, then fewer: `older` was last used at t0,
        // `newer` at t0 + 5 s.
        let (older, newer) = {
            let first = pool.lend().expect("memory").expect("a buffer");
            let second = pool.lend().expect("memory").expect("a buffer");
            let addresses = (first.as_ptr().addr(), second.as_ptr().addr());
            let mut leases = [first, second];
            for (lease, since) in leases.iter_mut().zip([t0, t0 + 5 * SECOND]) {
                pool.give_back(lease.buffer.take().expect("lent"), since);
            }
            addresses
        };
        assert_eq!(pool.idle_addresses(), [older, newer]);

        // One job a while: it always gets the most recently used buffer.
        for step in 1..=4 {
            let used = lend_and_return_at(&pool, t0 + (5 + step) * SECOND);
            assert_eq!(used, newer);
        }
        assert_eq!(
            pool.release_idle(t0 + KEEP_IDLE),
            Some(t0 + 9 * SECOND + KEEP_IDLE)
        );
        assert_eq!(pool.idle_addresses(), [newer], "the unused one went");
        assert_eq!(pool.made(), 1);
    }

    #[test]
    fn a_thread_frees_idle_buffers_by_itself_once_they_are_due() {
        let argon2 = argon2(64, 1);
        let keep_idle = Duration::from_millis(20);
        let pool = BlockPool::with_keep_idle(
            argon2.params().block_count(),
            Arc::new(LanePool::new(2)),
            keep_idle,
        );
        for round in 0..2 {
            pooled(&pool, &argon2, b"pw");
            assert!(
                eventually(|| pool.made() == 0),
                "round {round}: never freed: {pool:?}"
            );
            assert!(
                eventually(|| !pool.lock().releasing),
                "round {round}: the thread did not end: {pool:?}"
            );
        }
    }
}
