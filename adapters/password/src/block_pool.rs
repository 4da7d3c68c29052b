//! Argon2's working memory, kept and reused between jobs instead of being
//! allocated and freed for every hash.
//!
//! An argon2 hash fills `m` KiB of 1 KiB blocks (19 MiB at the default cost).
//! Left to the `argon2` crate, each job allocates that much afresh and frees
//! it at the end; glibc then serves such sizes from per-thread arenas that
//! keep the freed memory, and a login flood spread over many blocking threads
//! grows the process by gigabytes. Here each job borrows one of at most
//! `capacity` buffers (one per permit of the
//! [`BlockingLimiter`](crate::blocking_limiter::BlockingLimiter)), made on
//! first need and then kept: hashing memory stays at `capacity × m` KiB, and
//! no hash allocates.
//!
//! A stored hash asking for more memory than a pooled buffer holds (pwdlib's
//! `m=65536`, say, under the default 19 MiB configuration) gets a temporary
//! buffer of its own for that one job, freed when it ends: the pool is not
//! grown for it, so the steady state stays what the configuration says. Such
//! a job still holds a permit, and the stored cost is capped by
//! [`MAX_ARGON2_MEMORY_KIB`](crate::MAX_ARGON2_MEMORY_KIB).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

use argon2::{Argon2, Block};

/// At most `capacity` argon2 block buffers of `blocks` blocks each, lent to
/// one job at a time.
pub(crate) struct BlockPool {
    blocks: usize,
    capacity: usize,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// Buffers not lent right now, the most recently returned last.
    idle: Vec<Box<[Block]>>,
    /// Buffers made so far, idle or lent; never more than `capacity`.
    made: usize,
}

impl BlockPool {
    /// A pool lending buffers of `blocks` blocks, at most `capacity` of them.
    /// Nothing is allocated until a job needs it.
    pub(crate) fn new(blocks: usize, capacity: usize) -> Self {
        Self {
            blocks,
            capacity,
            state: Mutex::default(),
        }
    }

    /// Computes `argon2`'s hash of `secret` and `salt` into `out`, in a pooled
    /// buffer when the parameters fit one, else in a temporary buffer.
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
        if argon2.params().block_count() <= self.blocks
            && let Some(mut buffer) = self.lend()?
        {
            // Only the first `block_count` blocks are used. No clearing is
            // needed: argon2's first pass overwrites every block it reads.
            return argon2.hash_password_into_with_memory(secret, salt, out, &mut *buffer);
        }
        // Bigger than a pooled buffer, or (never through the limiter, which
        // runs at most `capacity` jobs) every buffer is lent: the crate
        // allocates for this job alone, and frees it when done.
        argon2.hash_password_into(secret, salt, out)
    }

    /// An idle buffer, or a new one while fewer than `capacity` exist;
    /// `None` when all are lent.
    fn lend(&self) -> argon2::Result<Option<Lease<'_>>> {
        let mut state = self.lock();
        if let Some(buffer) = state.idle.pop() {
            return Ok(Some(Lease::new(self, buffer)));
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

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a count, consistent at every unlock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks per pooled buffer.
    #[cfg(test)]
    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }

    /// Buffers made so far.
    #[cfg(test)]
    pub(crate) fn made(&self) -> usize {
        self.lock().made
    }

    /// Addresses of the idle buffers (all of them when no job runs).
    #[cfg(test)]
    pub(crate) fn idle_addresses(&self) -> Vec<usize> {
        let state = self.lock();
        state
            .idle
            .iter()
            .map(|buffer| buffer.as_ptr().addr())
            .collect()
    }
}

impl fmt::Debug for BlockPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("BlockPool")
            .field("blocks", &self.blocks)
            .field("capacity", &self.capacity)
            .field("made", &state.made)
            .field("idle", &state.idle.len())
            .finish()
    }
}

/// `blocks` zeroed blocks, or `None` when the memory is not available
/// (instead of aborting the process, as an infallible allocation would).
fn allocate(blocks: usize) -> Option<Box<[Block]>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(blocks).ok()?;
    buffer.resize(blocks, Block::new());
    Some(buffer.into_boxed_slice())
}

/// A lent buffer, back in the pool when dropped, even by a panicking job.
struct Lease<'a> {
    pool: &'a BlockPool,
    buffer: Option<Box<[Block]>>,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a BlockPool, buffer: Box<[Block]>) -> Self {
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
            self.pool.lock().idle.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};

    const SALT: &[u8] = b"saltsaltsaltsalt";

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

    #[test]
    fn sequential_jobs_reuse_one_buffer_and_match_the_crate() {
        let argon2 = argon2(64, 1);
        let pool = BlockPool::new(argon2.params().block_count(), 4);
        assert_eq!(pool.made(), 0, "nothing is allocated up front");

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
        assert!(pool.idle_addresses().len() <= 2);
        assert_eq!(pool.blocks(), 64);
    }

    #[test]
    fn concurrent_jobs_never_make_more_buffers_than_the_capacity() {
        let argon2 = Arc::new(argon2(64, 1));
        let pool = Arc::new(BlockPool::new(argon2.params().block_count(), 3));
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
        let outcome = std::panic::catch_unwind(|| {
            let _lease = pool.lend().expect("memory").expect("a buffer");
            panic!("job failed");
        });
        assert!(outcome.is_err());
        assert_eq!((pool.made(), pool.idle_addresses().len()), (1, 1));
    }
}
