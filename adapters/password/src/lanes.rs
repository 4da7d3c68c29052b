//! The threads argon2's lanes run on.
//!
//! An argon2 hash with `p` lanes fills each of its 4 × `t` slices lane by
//! lane, and the lanes of one slice are independent: with the `argon2`
//! crate's `parallel` feature they are computed as a rayon parallel
//! iterator. Run inside [`LanePool::run`], that iterator uses this pool —
//! one thread per hashing slot, so hashing never keeps more threads busy
//! than there are slots — instead of rayon's global pool.
//!
//! At light load the lanes of the one running hash spread over the idle
//! threads. Under a flood every slot's job occupies one thread, computing its
//! own lanes one after the other, as without the feature: the throughput
//! stays what the slots allow. The job that holds the slot waits on its
//! blocking-pool thread meanwhile, using no CPU.
//!
//! The pool is built at the first argon2 job, not before (a hasher that
//! only ever checks PBKDF2 or bcrypt hashes starts no thread), and its
//! threads end when the hasher is dropped.

use std::fmt;
use std::sync::OnceLock;

/// A rayon thread pool of `threads` threads, built on first use.
pub(crate) struct LanePool {
    threads: usize,
    pool: OnceLock<Option<rayon::ThreadPool>>,
}

impl LanePool {
    /// A pool of `threads` threads (at least one), none started yet.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            pool: OnceLock::new(),
        }
    }

    /// Runs `job` on one of the pool's threads, waiting for it: the rayon
    /// parallel iterators inside it (argon2's lanes) use this pool. If the
    /// threads cannot be started (the process is out of threads), `job`
    /// runs here, on the caller's thread, and the lanes on rayon's global
    /// pool.
    pub(crate) fn run<R: Send>(&self, job: impl FnOnce() -> R + Send) -> R {
        match self.pool() {
            Some(pool) => pool.install(job),
            None => job(),
        }
    }

    /// Starts the threads now rather than at the first job (no-op once
    /// started).
    pub(crate) fn start(&self) {
        self.pool();
    }

    fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("argon2-lane-{i}"))
                    .build()
                    .inspect_err(|error| {
                        tracing::warn!(%error, "no threads for argon2's lanes; hashing on the caller's");
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Threads the pool has (or will have).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Whether the threads were started (by a first job, or [`Self::start`]).
    #[cfg(test)]
    pub(crate) fn started(&self) -> bool {
        self.pool.get().is_some_and(Option::is_some)
    }
}

impl fmt::Debug for LanePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanePool")
            .field("threads", &self.threads)
            .field("started", &self.pool.get().is_some_and(Option::is_some))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::iter::{IntoParallelIterator, ParallelIterator};
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier, Mutex};

    #[test]
    fn nothing_starts_before_the_first_job() {
        let lanes = LanePool::new(2);
        assert!(!lanes.started());
        assert_eq!(lanes.run(|| 7), 7);
        assert!(lanes.started());
        assert_eq!(lanes.threads(), 2);
        assert_eq!(LanePool::new(0).threads(), 1, "at least one thread");
    }

    #[test]
    fn parallel_iterators_inside_a_job_use_the_pool_threads_side_by_side() {
        let lanes = LanePool::new(2);
        let names = Mutex::new(HashSet::new());
        // Both items wait for each other: only two threads side by side get
        // past the barrier (one thread would wait forever; the test would
        // hang rather than pass).
        let barrier = Barrier::new(2);
        lanes.run(|| {
            (0..2).into_par_iter().for_each(|_| {
                barrier.wait();
                let name = std::thread::current().name().map(str::to_owned);
                names.lock().expect("lock").insert(name);
            });
        });
        let names = names.into_inner().expect("lock");
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().all(|name| name
                .as_deref()
                .is_some_and(|n| n.starts_with("argon2-lane-"))),
            "{names:?}"
        );
    }

    #[test]
    fn jobs_from_several_threads_share_the_pool() {
        let lanes = Arc::new(LanePool::new(2));
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let lanes = Arc::clone(&lanes);
                std::thread::spawn(move || {
                    lanes.run(|| (0..100u64).into_par_iter().map(|n| n * i).sum::<u64>())
                })
            })
            .collect();
        for (i, worker) in (0..4u64).zip(workers) {
            assert_eq!(worker.join().expect("thread"), 4950 * i);
        }
    }
}
