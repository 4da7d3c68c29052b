//! The threads password hashing runs on.
//!
//! Every hashing job (argon2, PBKDF2, bcrypt) runs on these threads, started
//! by [`LanePool::spawn`]: the caller's task awaits the outcome without
//! holding a thread, and no thread of Tokio's blocking pool is involved. The
//! threads live as long as the hasher, so a login flood after a quiet spell
//! starts no thread (Tokio's blocking threads end after 10 s idle, and each
//! new one touches a fresh stack).
//!
//! An argon2 hash with `p` lanes fills each of its 4 × `t` slices lane by
//! lane, and the lanes of one slice are independent: with the `argon2`
//! crate's `parallel` feature they are computed as a rayon parallel
//! iterator, which runs on the rayon pool of the thread it is called on.
//!
//! - A job started while no other runs goes to the shared pool, one thread
//!   per hashing slot: its lanes spread over the idle cores, so a login at
//!   light load takes about the hash time over the cores (2 cores, p = 4:
//!   0.52 of the single-thread time, `bench/login_latency.sh`).
//! - A job started while another runs goes to a solo pool of one thread,
//!   one per slot: its lanes one after the other, as without the feature.
//!   On the shared pool, two jobs' lanes would be stolen back and forth
//!   and each job would wait at every slice's end for a lane another
//!   thread holds — measured under a login flood: ~2.5 % of two CPUs idle
//!   while logins were queued; none with the solo threads.
//!
//! At most as many jobs as slots are admitted (the limiter), so the cores
//! are never given more hashing than that, whichever threads compute it.
//!
//! The pools are built at the first job (or [`LanePool::start`]), not
//! before, and their threads end when the hasher is dropped. If they cannot
//! be built (the process is out of threads or memory), jobs run on Tokio's
//! blocking pool meanwhile, and a job at least [`RETRY_AFTER`] after the
//! failure tries again: a passing shortage does not leave hashing without
//! its threads for the process' life.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::lock;

/// How long after the threads failed to start no job tries again (each
/// attempt spawns threads; a process out of them would otherwise try at
/// every job).
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a job started by [`LanePool::spawn`] gave no outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The job panicked (the pool's thread survives).
    Panicked,
    /// The job was dropped before it ended: only on the fallback to Tokio's
    /// blocking pool, when the runtime shuts down.
    Cancelled,
}

/// The threads of password hashing, built on first use: a rayon pool of
/// `threads` threads that a job started alone spreads its lanes over, and
/// (with more than one thread) `threads` pools of one thread each, where a
/// job started while another runs computes its lanes one after the other.
pub(crate) struct LanePool {
    threads: usize,
    pools: OnceLock<Pools>,
    /// Held while the pools are built; when the last attempt failed.
    building: Mutex<Building>,
    /// Jobs started by [`LanePool::spawn`] and not yet ended, and the solo
    /// pools free.
    state: Arc<Mutex<State>>,
}

struct Pools {
    /// `threads` threads: the lanes of a job started alone side by side.
    shared: rayon::ThreadPool,
    /// One thread each: a job started while another runs, its lanes one
    /// after the other. None with one thread.
    solo: Vec<rayon::ThreadPool>,
}

struct Building {
    failed_at: Option<Instant>,
    retry_after: Duration,
    /// Attempts so far, and how many of the first ones fail on purpose
    /// (with a stack no thread can get: a real spawn failure).
    #[cfg(test)]
    attempts: usize,
    #[cfg(test)]
    failing: usize,
}

#[derive(Default)]
struct State {
    running: usize,
    /// Indexes into [`Pools::solo`] no job holds.
    free_solo: Vec<usize>,
}

/// A job of [`LanePool::spawn`] counted as running, holding a solo pool or
/// not; counted out (its pool freed) when dropped, after the job, panic or
/// not.
struct Running {
    state: Arc<Mutex<State>>,
    solo: Option<usize>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.running -= 1;
        if let Some(solo) = self.solo {
            state.free_solo.push(solo);
        }
    }
}

impl LanePool {
    /// A pool of `threads` threads (at least one), none started yet.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            pools: OnceLock::new(),
            building: Mutex::new(Building {
                failed_at: None,
                retry_after: RETRY_AFTER,
                #[cfg(test)]
                attempts: 0,
                #[cfg(test)]
                failing: 0,
            }),
            state: Arc::default(),
        }
    }

    /// Runs `job` on the hashing threads, waiting for it: the rayon
    /// parallel iterators inside it (argon2's lanes) use the pool it runs
    /// on. Called on one of the hashing threads (from a job of
    /// [`LanePool::spawn`]), `job` runs right there, its lanes where that
    /// job's are (side by side, or one after the other on a solo thread);
    /// called elsewhere, on the shared pool. While the threads cannot be
    /// started (the process is out of threads), `job` runs here, on the
    /// caller's thread, and the lanes on rayon's global pool.
    pub(crate) fn run<R: Send>(&self, job: impl FnOnce() -> R + Send) -> R {
        match self.pools() {
            Some(pools) if pools.on_one_of_them() => job(),
            Some(pools) => pools.shared.install(job),
            None => job(),
        }
    }

    /// Runs `job` on the hashing threads; the returned future waits for its
    /// outcome without blocking the thread that polls it. Dropping the
    /// future does not stop a job that started: it runs to its end (and
    /// drops whatever it owns there). A panic in `job` is caught and comes
    /// back as [`Lost::Panicked`].
    ///
    /// A job started while no other runs goes to the shared pool: its lanes
    /// spread over the idle cores. A job started while another runs goes to
    /// a solo thread of its own: its lanes one after the other, as the
    /// cores are taken anyway — on the shared pool, the lanes of jobs
    /// running side by side would wait for each other at the end of each
    /// argon2 slice (threads idle while work is queued; measured: ~3 % of
    /// two CPUs idle under a login flood, none with solo threads).
    ///
    /// `hold` is dropped once the job has ended and its thread is counted
    /// free, panic or not: what the caller's next job waits for (a hashing
    /// slot's permit), so that the next job finds this one's thread free.
    ///
    /// While the threads cannot be started (the process is out of threads;
    /// tried again [`RETRY_AFTER`] after each failure), `job` runs on
    /// `runtime`'s blocking pool instead.
    pub(crate) async fn spawn<R: Send + 'static, H: Send + 'static>(
        &self,
        runtime: &tokio::runtime::Handle,
        hold: H,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Lost> {
        let Some(pools) = self.pools() else {
            let job = move || {
                let _hold = hold;
                job()
            };
            return runtime.spawn_blocking(job).await.map_err(|error| {
                if error.is_panic() {
                    Lost::Panicked
                } else {
                    Lost::Cancelled
                }
            });
        };
        let running = {
            let mut state = lock(&self.state);
            state.running += 1;
            // Alone: the shared pool. Else a free solo thread; none free
            // (a job ending still holds its thread): the shared pool.
            let solo = if state.running > 1 {
                state.free_solo.pop()
            } else {
                None
            };
            Running {
                state: Arc::clone(&self.state),
                solo,
            }
        };
        let pool = running.solo.map_or(&pools.shared, |i| &pools.solo[i]);
        let (sender, outcome) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            // Caught here: rayon aborts the process on a panic that leaves
            // a spawned job. Nobody may be waiting any more (the caller went
            // away): the outcome is then dropped.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job));
            drop(running);
            drop(hold);
            let _ = sender.send(outcome);
        });
        match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => Err(Lost::Panicked),
            // The job was dropped unrun: rayon runs every spawned job, so
            // only if that ever changed.
            Err(_dropped) => Err(Lost::Cancelled),
        }
    }

    /// Starts the threads now rather than at the first job (no-op once
    /// started).
    pub(crate) fn start(&self) {
        self.pools();
    }

    /// The pools, built now if they are not yet and the last failure (if
    /// any) is [`RETRY_AFTER`] old; `None` while they cannot be.
    fn pools(&self) -> Option<&Pools> {
        if let Some(pools) = self.pools.get() {
            return Some(pools);
        }
        let mut building = lock(&self.building);
        // Built by another caller while this one waited.
        if let Some(pools) = self.pools.get() {
            return Some(pools);
        }
        if building
            .failed_at
            .is_some_and(|at| at.elapsed() < building.retry_after)
        {
            return None;
        }
        #[cfg(test)]
        let stack = {
            building.attempts += 1;
            (building.attempts <= building.failing).then_some(1 << 60)
        };
        #[cfg(not(test))]
        let stack = None;
        match Pools::build(self.threads, stack) {
            Ok(built) => {
                lock(&self.state).free_solo = (0..built.solo.len()).rev().collect();
                if building.failed_at.take().is_some() {
                    tracing::info!("the password hashing threads started at last");
                }
                // Only this caller builds (it holds `building`).
                Some(self.pools.get_or_init(|| built))
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    retry_in_s = building.retry_after.as_secs(),
                    "no threads for password hashing; hashing on Tokio's blocking pool, \
                     argon2's lanes one after the other, until they start"
                );
                building.failed_at = Some(Instant::now());
                None
            }
        }
    }

    /// Threads the shared pool has (or will have): one per hashing slot.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Whether the threads were started (by a first job, or [`Self::start`]).
    #[cfg(test)]
    pub(crate) fn started(&self) -> bool {
        self.pools.get().is_some()
    }

    /// Makes the next `count` attempts to start the threads fail, and
    /// waits `retry_after` after a failure before the next.
    #[cfg(test)]
    fn fail_to_start(&self, count: usize, retry_after: Duration) {
        let mut building = lock(&self.building);
        building.failing = building.attempts + count;
        building.retry_after = retry_after;
    }

    #[cfg(test)]
    fn attempts(&self) -> usize {
        lock(&self.building).attempts
    }
}

impl Pools {
    /// The pools, their threads' stacks of `stack` bytes if given (rayon's
    /// default otherwise).
    fn build(threads: usize, stack: Option<usize>) -> Result<Self, rayon::ThreadPoolBuildError> {
        let builder = || {
            let builder = rayon::ThreadPoolBuilder::new();
            match stack {
                Some(bytes) => builder.stack_size(bytes),
                None => builder,
            }
        };
        let shared = builder()
            .num_threads(threads)
            .thread_name(|i| format!("password-hash-{i}"))
            .build()?;
        let solo = if threads > 1 {
            (0..threads)
                .map(|i| {
                    builder()
                        .num_threads(1)
                        .thread_name(move |_| format!("password-hash-solo-{i}"))
                        .build()
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self { shared, solo })
    }

    /// Whether this thread is one of the hashing threads.
    fn on_one_of_them(&self) -> bool {
        self.shared.current_thread_index().is_some()
            || self
                .solo
                .iter()
                .any(|pool| pool.current_thread_index().is_some())
    }
}

impl fmt::Debug for LanePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanePool")
            .field("threads", &self.threads)
            .field("started", &self.pools.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::poll_once;
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
                .is_some_and(|n| n.starts_with("password-hash-"))),
            "{names:?}"
        );
    }

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_spawned_job_runs_on_a_pool_thread_and_its_lanes_there_too() {
        let lanes = LanePool::new(2);
        let runtime = tokio::runtime::Handle::current();
        let (job, lane_threads) = lanes
            .spawn(&runtime, (), || {
                let lane_threads: HashSet<_> = (0..64)
                    .into_par_iter()
                    .map(|_| thread_name())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect();
                (thread_name(), lane_threads)
            })
            .await
            .expect("outcome");
        assert!(lanes.started());
        // Not this (runtime) thread, nor a thread of Tokio's blocking pool.
        assert!(
            job.as_deref()
                .is_some_and(|n| n.starts_with("password-hash-")),
            "{job:?}"
        );
        assert!(
            lane_threads.iter().all(|n| n
                .as_deref()
                .is_some_and(|n| n.starts_with("password-hash-"))),
            "{lane_threads:?}"
        );
    }

    /// Threads that could not start are started by a later job, not before
    /// [`RETRY_AFTER`] (here as set) has passed since the failure; meanwhile
    /// jobs run on Tokio's blocking pool. The failure is real: a stack no
    /// thread can get.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn threads_that_could_not_start_are_started_by_a_later_job() {
        let lanes = LanePool::new(2);
        lanes.fail_to_start(1, Duration::from_secs(3600));
        let runtime = tokio::runtime::Handle::current();
        let job = lanes
            .spawn(&runtime, (), thread_name)
            .await
            .expect("outcome");
        assert!(!lanes.started());
        assert_eq!(lanes.attempts(), 1);
        assert!(
            !job.as_deref()
                .is_some_and(|n| n.starts_with("password-hash")),
            "ran on Tokio's blocking pool: {job:?}"
        );
        // Within the interval: no new attempt, though it would succeed.
        assert_eq!(lanes.run(|| 7), 7);
        let job = lanes
            .spawn(&runtime, (), thread_name)
            .await
            .expect("outcome");
        assert!(!is_shared(&job) && !is_solo(&job), "{job:?}");
        assert_eq!((lanes.started(), lanes.attempts()), (false, 1));

        lanes.fail_to_start(0, Duration::ZERO);
        let job = lanes
            .spawn(&runtime, (), thread_name)
            .await
            .expect("outcome");
        assert!(is_shared(&job), "{job:?}");
        assert_eq!((lanes.started(), lanes.attempts()), (true, 2));
        // Started: never built again.
        lanes
            .spawn(&runtime, (), thread_name)
            .await
            .expect("outcome");
        assert_eq!(lanes.attempts(), 2);
    }

    fn is_solo(name: &Option<String>) -> bool {
        name.as_deref()
            .is_some_and(|n| n.starts_with("password-hash-solo-"))
    }

    fn is_shared(name: &Option<String>) -> bool {
        name.as_deref()
            .is_some_and(|n| n.starts_with("password-hash-") && !n.contains("solo"))
    }

    /// A job started while another runs computes its lanes (a parallel
    /// iterator, through [`LanePool::run`] as argon2's are) on one solo
    /// thread of its own; a job started alone spreads them over the shared
    /// pool's threads, side by side.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_started_while_another_runs_computes_its_lanes_on_a_solo_thread() {
        let lanes = Arc::new(LanePool::new(2));
        let runtime = tokio::runtime::Handle::current();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (began, has_begun) = std::sync::mpsc::channel::<()>();
        let first = {
            let (lanes, runtime) = (Arc::clone(&lanes), runtime.clone());
            tokio::spawn(async move {
                lanes
                    .spawn(&runtime, (), move || {
                        began.send(()).expect("the test waits");
                        released.recv().expect("released");
                        thread_name()
                    })
                    .await
            })
        };
        has_begun
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the first job runs");
        let inner = Arc::clone(&lanes);
        let (job, lane_threads) = lanes
            .spawn(&runtime, (), move || {
                let names = inner.run(|| {
                    (0..64)
                        .into_par_iter()
                        .map(|_| thread_name())
                        .collect::<Vec<_>>()
                });
                (thread_name(), names.into_iter().collect::<HashSet<_>>())
            })
            .await
            .expect("outcome");
        assert!(is_solo(&job), "{job:?}");
        assert_eq!(
            lane_threads,
            HashSet::from([job]),
            "its lanes on its thread"
        );
        release.send(()).expect("the first job waits");
        let first = first.await.expect("task").expect("outcome");
        assert!(is_shared(&first), "started alone: {first:?}");

        // Alone again: the lanes side by side (a barrier only two threads
        // at once get past; on one thread the test would hang, not pass).
        let barrier = Arc::new(Barrier::new(2));
        let inner = Arc::clone(&lanes);
        let names = lanes
            .spawn(&runtime, (), move || {
                inner.run(|| {
                    (0..2)
                        .into_par_iter()
                        .map(|_| {
                            barrier.wait();
                            thread_name()
                        })
                        .collect::<HashSet<_>>()
                })
            })
            .await
            .expect("outcome");
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(is_shared), "{names:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_spawned_job_is_lost_and_the_pool_goes_on() {
        let lanes = LanePool::new(1);
        let runtime = tokio::runtime::Handle::current();
        let lost = lanes.spawn(&runtime, (), || -> u8 { panic!("boom") }).await;
        assert_eq!(lost, Err(Lost::Panicked));
        // Its one thread survived the panic (rayon would abort the process
        // on an uncaught one).
        assert_eq!(lanes.spawn(&runtime, (), || 7).await, Ok(7));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_whose_caller_went_away_still_runs_to_its_end() {
        let lanes = LanePool::new(1);
        let runtime = tokio::runtime::Handle::current();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (done, finished) = std::sync::mpsc::channel();
        let caller = lanes.spawn(&runtime, (), move || {
            released.recv().expect("released");
            done.send(()).expect("the test waits");
        });
        // Started by its first poll, then dropped: nobody awaits the outcome.
        assert!(
            poll_once(caller).is_none(),
            "the job cannot end before it is released"
        );
        release.send(()).expect("the job waits");
        finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the job ran to its end");
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
