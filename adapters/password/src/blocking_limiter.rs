//! Runs CPU-heavy jobs on the hashing threads (a [`LanePool`] of `limit`
//! threads), at most `limit` at a time, with a bounded queue in front.
//!
//! The async executor never computes a hash itself, nor blocks a thread
//! waiting for one, and a flood of logins
//! queues on a fair semaphore instead of starting one argon2 job per request.
//! At most `limit` jobs run, so the argon2 memory they reuse
//! ([`BlockPool`](crate::block_pool::BlockPool), one buffer per permit) stays
//! at `limit × m` KiB. At most `queue_max` callers wait for a permit, each
//! for at most `queue_timeout`; the others are refused at once
//! ([`HashError::Busy`]), so a flood is shed in microseconds instead of
//! queueing for seconds. A caller that stops waiting (its future dropped:
//! the client went away) leaves the queue, and its job never starts.
//!
//! It reports through the `metrics` facade (a no-op until a recorder is
//! installed): the gauges `portcullis_hashing_slots`,
//! `portcullis_hashing_slots_busy` and `portcullis_hashing_queue_length`,
//! and `portcullis_requests_shed_total` with `reason` `hashing_queue_full`
//! or `hashing_queue_timeout` for each caller refused as busy.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use portcullis_domain::HashError;

use crate::lanes::{LanePool, Lost};

/// Gauge: the hashing slots (jobs that may run at once).
const SLOTS: &str = "portcullis_hashing_slots";
/// Gauge: slots held by a job right now.
const SLOTS_BUSY: &str = "portcullis_hashing_slots_busy";
/// Gauge: callers waiting for a slot right now.
const QUEUE_LENGTH: &str = "portcullis_hashing_queue_length";
/// Counter (label `reason`): requests refused rather than served.
const SHED: &str = "portcullis_requests_shed_total";

/// A bounded gate in front of the hashing threads. Clones share the bound,
/// the queue and the threads.
#[derive(Debug, Clone)]
pub(crate) struct BlockingLimiter {
    permits: Arc<Semaphore>,
    limit: usize,
    /// One thread per permit, where the jobs run.
    lanes: Arc<LanePool>,
    queue: Arc<Queue>,
    /// Jobs started since the limiter was made.
    started: Arc<AtomicU64>,
    #[cfg(test)]
    pub(crate) probe: Arc<probe::Probe>,
}

/// The callers waiting for a permit, and how many may.
#[derive(Debug)]
struct Queue {
    waiting: AtomicUsize,
    max: usize,
    timeout: Duration,
}

/// A caller's place in the queue, given up when dropped: when it gets a
/// permit, times out, or its future is dropped.
struct QueuePlace<'a>(&'a Queue);

impl<'a> QueuePlace<'a> {
    /// A place, or `None` when `max` callers wait already.
    fn join(queue: &'a Queue) -> Option<Self> {
        queue
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < queue.max).then_some(n + 1)
            })
            .ok()
            .map(|_| {
                metrics::gauge!(QUEUE_LENGTH).increment(1.0);
                Self(queue)
            })
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(QUEUE_LENGTH).decrement(1.0);
    }
}

/// A slot held by a job: counted in `portcullis_hashing_slots_busy` from
/// the moment the permit is taken until the job ends (or, never run, is
/// dropped).
struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!(SLOTS_BUSY).increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(SLOTS_BUSY).decrement(1.0);
    }
}

impl BlockingLimiter {
    /// At most `limit` jobs at once, on as many threads (started at the
    /// first job, or [`LanePool::start`]); at most `queue_max` callers
    /// waiting for one of them, each for at most `queue_timeout`.
    pub(crate) fn new(limit: NonZeroUsize, queue_max: usize, queue_timeout: Duration) -> Self {
        let limit = limit.get().min(Semaphore::MAX_PERMITS);
        #[allow(clippy::cast_precision_loss)] // a count of cores
        metrics::gauge!(SLOTS).set(limit as f64);
        // Present from the start (at 0), not from the first hash on.
        metrics::gauge!(SLOTS_BUSY).increment(0.0);
        metrics::gauge!(QUEUE_LENGTH).increment(0.0);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            lanes: Arc::new(LanePool::new(limit)),
            queue: Arc::new(Queue {
                waiting: AtomicUsize::new(0),
                max: queue_max,
                timeout: queue_timeout,
            }),
            started: Arc::default(),
            #[cfg(test)]
            probe: Arc::default(),
        }
    }

    /// Callers waiting for a permit right now.
    pub(crate) fn waiting(&self) -> usize {
        self.queue.waiting.load(Ordering::Acquire)
    }

    /// Permits held by running jobs right now.
    pub(crate) fn busy(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }

    /// The threads the jobs run on (argon2's lanes use them too).
    pub(crate) fn lanes(&self) -> &Arc<LanePool> {
        &self.lanes
    }

    /// Jobs started so far.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// How many jobs may run at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Permits not held by a running job right now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Takes a free slot, or waits for one in the queue, then runs `job` on
    /// one of the hashing threads ([`LanePool::spawn`]).
    ///
    /// The permit moves into the job and is released when the job ends, not
    /// when the caller stops waiting: a cancelled request cannot free a slot
    /// while its hash is still being computed. A caller dropped while it
    /// waits leaves the queue and its job never starts.
    ///
    /// Waiting needs Tokio's timer (as actix-web's runtime has).
    ///
    /// # Errors
    /// [`HashError::Busy`] when every slot is taken and `queue_max` callers
    /// wait already, or the wait outlasted `queue_timeout`.
    /// [`HashError::Failed`] when the job panicked, was cancelled (runtime
    /// shutting down), or there is no Tokio runtime: never a panic in the
    /// caller.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let failed = |what: &str| HashError::Failed(what.to_owned());
        let runtime =
            Handle::try_current().map_err(|_| failed("password hashing needs a Tokio runtime"))?;
        let slot = Slot::new(match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => self.wait_for_permit().await?,
            Err(TryAcquireError::Closed) => return Err(failed("the password hasher is shut down")),
        });
        let started = Arc::clone(&self.started);
        #[cfg(test)]
        let probe = Arc::clone(&self.probe);
        self.lanes
            // The slot is let go once the job's thread is counted free.
            .spawn(&runtime, slot, move || {
                started.fetch_add(1, Ordering::Relaxed);
                #[cfg(test)]
                let _in_flight = probe.enter();
                job()
            })
            .await
            .map_err(|lost| match lost {
                Lost::Panicked => failed("a password hashing job panicked"),
                Lost::Cancelled => failed("a password hashing job was cancelled"),
            })
    }

    /// Waits in the queue for a permit; a fair semaphore serves waiters in
    /// order, and a newcomer's `try_acquire` cannot overtake them.
    async fn wait_for_permit(&self) -> Result<OwnedSemaphorePermit, HashError> {
        let Some(_place) = QueuePlace::join(&self.queue) else {
            metrics::counter!(SHED, "reason" => "hashing_queue_full").increment(1);
            return Err(HashError::Busy);
        };
        let acquire = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(self.queue.timeout, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(HashError::Failed(
                "the password hasher is shut down".to_owned(),
            )),
            Err(_elapsed) => {
                metrics::counter!(SHED, "reason" => "hashing_queue_timeout").increment(1);
                Err(HashError::Busy)
            }
        }
    }
}

/// Test instrumentation: counts jobs running on the hashing threads, and can
/// hold them there.
#[cfg(test)]
pub(crate) mod probe {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    #[derive(Debug, Default)]
    pub(crate) struct Probe {
        in_flight: AtomicUsize,
        peak: AtomicUsize,
        started: AtomicUsize,
        /// Whether starting jobs wait (holding their permit) before running.
        held: Mutex<bool>,
        released: Condvar,
    }

    impl Probe {
        /// Counts a job that starts; while [`Probe::hold`] is in force, waits
        /// on this (hashing) thread until it is released.
        pub(crate) fn enter(&self) -> InFlight<'_> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let in_flight = InFlight(self);
            let mut held = self.held();
            while *held {
                held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
            }
            in_flight
        }

        fn held(&self) -> MutexGuard<'_, bool> {
            crate::lock(&self.held)
        }

        /// Makes starting jobs wait, counted as in flight, until the guard is
        /// dropped (also when the test fails, so no job stays stuck).
        pub(crate) fn hold(&self) -> Hold<'_> {
            *self.held() = true;
            Hold(self)
        }

        pub(crate) fn in_flight(&self) -> usize {
            self.in_flight.load(Ordering::SeqCst)
        }

        /// Jobs started so far.
        pub(crate) fn started(&self) -> usize {
            self.started.load(Ordering::SeqCst)
        }

        /// Most jobs seen running at the same time.
        pub(crate) fn peak(&self) -> usize {
            self.peak.load(Ordering::SeqCst)
        }
    }

    /// Releases the held jobs when dropped; see [`Probe::hold`].
    pub(crate) struct Hold<'a>(&'a Probe);

    impl Hold<'_> {
        /// With more calls made than `limit`, checks that exactly `limit`
        /// jobs run (`started` in all, counting earlier ones) while held:
        /// waits until `limit` are in flight (deterministic: they cannot
        /// finish while held), gives a job too many the chance to start (a
        /// broken limiter would show it), then checks none did. Drop the
        /// guard afterwards to let them all go: the peak is then `limit`.
        pub(crate) async fn assert_exactly_in_flight(&self, limit: usize, started: usize) {
            let probe = self.0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while probe.in_flight() < limit {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {limit} jobs ever ran at once",
                    probe.in_flight()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Not a wait for anything: room for a broken limiter to start a
            // job too many, which the checks below would see.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(probe.in_flight(), limit, "jobs running past the limit");
            assert_eq!(probe.started(), started, "jobs started past the limit");
        }
    }

    impl Drop for Hold<'_> {
        fn drop(&mut self) {
            *self.0.held() = false;
            self.0.released.notify_all();
        }
    }

    /// Leaves the count when the job ends, by return or by panic.
    pub(crate) struct InFlight<'a>(&'a Probe);

    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::poll_once;
    use std::sync::mpsc;
    use std::time::Duration;

    fn limiter(limit: usize) -> BlockingLimiter {
        queued_limiter(limit, 1_000, Duration::from_secs(60))
    }

    fn queued_limiter(limit: usize, queue_max: usize, timeout: Duration) -> BlockingLimiter {
        BlockingLimiter::new(
            NonZeroUsize::new(limit).expect("non-zero"),
            queue_max,
            timeout,
        )
    }

    /// Polls `condition` for up to 5 s.
    async fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        condition()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn never_runs_more_jobs_than_the_limit_at_once() {
        let limiter = limiter(3);
        let held = limiter.probe.hold();
        let jobs: Vec<_> = (0..12)
            .map(|i| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.run(move || i).await })
            })
            .collect();
        held.assert_exactly_in_flight(3, 3).await;
        assert_eq!(limiter.available(), 0, "the three running hold the permits");
        drop(held);
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.expect("task"), Ok(i));
        }
        assert_eq!(limiter.probe.started(), 12);
        assert_eq!(
            limiter.probe.peak(),
            3,
            "peak concurrency must reach, not pass, the limit"
        );
        assert_eq!(limiter.available(), 3);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn jobs_run_on_the_hashing_threads_not_on_tokio_blocking_pool() {
        let limiter = limiter(2);
        for _ in 0..4 {
            let name = limiter
                .run(|| std::thread::current().name().map(str::to_owned))
                .await
                .expect("ran");
            assert!(
                name.as_deref()
                    .is_some_and(|n| n.starts_with("password-hash-")),
                "{name:?}"
            );
        }
        assert!(limiter.lanes().started());
        assert_eq!(limiter.lanes().threads(), 2, "one thread per slot");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let limiter = limiter(1);
        let error = limiter.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert_eq!(
            error,
            HashError::Failed("a password hashing job panicked".to_owned())
        );
        assert_eq!(limiter.available(), 1);
        assert_eq!(limiter.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_cancelled_caller_keeps_the_slot_until_its_job_ends() {
        let limiter = limiter(2);
        let (release, released) = mpsc::channel::<()>();
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.run(move || released.recv()).await })
        };
        assert!(
            eventually(|| limiter.probe.in_flight() == 1).await,
            "job never started"
        );
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        // The caller is gone but the job still runs: its permit stays taken.
        assert_eq!(limiter.available(), 1);
        release.send(()).expect("job is waiting");
        assert!(
            eventually(|| limiter.available() == 2).await,
            "permit never came back"
        );
        assert_eq!(limiter.probe.in_flight(), 0);
    }

    #[test]
    fn outside_a_tokio_runtime_is_an_error_not_a_panic() {
        let limiter = limiter(1);
        let outcome = block_on_without_runtime(limiter.run(|| 1));
        assert_eq!(
            outcome,
            Err(HashError::Failed(
                "password hashing needs a Tokio runtime".to_owned()
            ))
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn exactly_queue_max_callers_wait_and_the_next_is_busy_at_once() {
        let limiter = queued_limiter(1, 3, Duration::from_secs(60));
        let held = limiter.probe.hold();
        let jobs: Vec<_> = (0..4)
            .map(|i| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.run(move || i).await })
            })
            .collect();
        held.assert_exactly_in_flight(1, 1).await;
        assert!(
            eventually(|| limiter.waiting() == 3).await,
            "three callers should wait, {} do",
            limiter.waiting()
        );
        // Refused on its first poll: it never waits.
        assert_eq!(
            poll_once(limiter.run(|| 99)),
            Some(Err(HashError::Busy)),
            "the caller past the queue must be refused at once"
        );
        assert_eq!(limiter.waiting(), 3, "a refused caller takes no place");
        drop(held);
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(
                job.await.expect("task"),
                Ok(i),
                "an admitted caller is served"
            );
        }
        assert_eq!(limiter.started(), 4, "the refused job never ran");
        assert_eq!(limiter.waiting(), 0);
        assert_eq!(limiter.run(|| 5).await, Ok(5), "free again");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_zero_queue_refuses_whenever_every_slot_is_taken() {
        let limiter = queued_limiter(1, 0, Duration::from_secs(60));
        let held = limiter.probe.hold();
        let running = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.run(|| 1).await })
        };
        held.assert_exactly_in_flight(1, 1).await;
        assert_eq!(poll_once(limiter.run(|| 2)), Some(Err(HashError::Busy)));
        drop(held);
        assert_eq!(running.await.expect("task"), Ok(1));
        assert_eq!(limiter.run(|| 3).await, Ok(3), "a free slot is taken");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_wait_past_the_timeout_is_busy_and_leaves_the_queue() {
        let limiter = queued_limiter(1, 4, Duration::from_millis(20));
        let held = limiter.probe.hold();
        let running = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.run(|| 1).await })
        };
        held.assert_exactly_in_flight(1, 1).await;
        // The slot stays held (until `held` is dropped): the wait must end.
        assert_eq!(limiter.run(|| 2).await, Err(HashError::Busy));
        assert_eq!(limiter.waiting(), 0, "the timed-out caller left the queue");
        drop(held);
        assert_eq!(running.await.expect("task"), Ok(1));
        assert_eq!(limiter.started(), 1, "the timed-out job never ran");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dropped_waiter_frees_its_place_and_its_job_never_runs() {
        let limiter = queued_limiter(1, 1, Duration::from_secs(60));
        let held = limiter.probe.hold();
        let running = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.run(|| 1).await })
        };
        held.assert_exactly_in_flight(1, 1).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let (limiter, ran) = (limiter.clone(), Arc::clone(&ran));
            tokio::spawn(async move {
                limiter
                    .run(move || ran.store(true, std::sync::atomic::Ordering::SeqCst))
                    .await
            })
        };
        assert!(eventually(|| limiter.waiting() == 1).await, "never queued");
        assert_eq!(poll_once(limiter.run(|| 0)), Some(Err(HashError::Busy)));
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(limiter.waiting(), 0, "the dropped waiter left the queue");
        // Its place is free for the next caller.
        let next = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.run(|| 3).await })
        };
        assert!(
            eventually(|| limiter.waiting() == 1).await,
            "no place for the next"
        );
        drop(held);
        assert_eq!(running.await.expect("task"), Ok(1));
        assert_eq!(next.await.expect("task"), Ok(3));
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "the dropped waiter's job ran"
        );
        assert_eq!(limiter.started(), 2);
        assert_eq!(limiter.busy(), 0);
    }

    /// Polls a future to completion on this thread without a Tokio runtime.
    fn block_on_without_runtime<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::yield_now();
        }
    }
}
