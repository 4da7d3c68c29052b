//! Runs CPU-heavy jobs on Tokio's blocking pool, at most `limit` at a time.
//!
//! The async executor never computes a hash itself, and a flood of logins
//! queues on a fair semaphore instead of starting one argon2 job per request.
//! At most `limit` jobs run, so the argon2 memory they reuse
//! ([`BlockPool`](crate::block_pool::BlockPool), one buffer per permit) stays
//! at `limit × m` KiB.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use portcullis_domain::HashError;

/// A bounded gate in front of `spawn_blocking`. Clones share the bound.
#[derive(Debug, Clone)]
pub(crate) struct BlockingLimiter {
    permits: Arc<Semaphore>,
    limit: usize,
    #[cfg(test)]
    pub(crate) probe: Arc<probe::Probe>,
}

impl BlockingLimiter {
    pub(crate) fn new(limit: NonZeroUsize) -> Self {
        let limit = limit.get().min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            #[cfg(test)]
            probe: Arc::default(),
        }
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

    /// Waits for a free slot, then runs `job` on the blocking pool.
    ///
    /// The permit moves into the job and is released when the job ends, not
    /// when the caller stops waiting: a cancelled request cannot free a slot
    /// while its hash is still being computed.
    ///
    /// # Errors
    /// The job panicked, was cancelled (runtime shutting down), or there is
    /// no Tokio runtime: never a panic in the caller.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let runtime = Handle::try_current()
            .map_err(|_| HashError("password hashing needs a Tokio runtime".to_owned()))?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashError("the password hasher is shut down".to_owned()))?;
        #[cfg(test)]
        let probe = Arc::clone(&self.probe);
        runtime
            .spawn_blocking(move || {
                let _permit = permit;
                #[cfg(test)]
                let _in_flight = probe.enter();
                job()
            })
            .await
            .map_err(|error| {
                if error.is_panic() {
                    HashError("a password hashing job panicked".to_owned())
                } else {
                    HashError("a password hashing job was cancelled".to_owned())
                }
            })
    }
}

/// Test instrumentation: counts jobs running on the blocking pool, and can
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
        /// on this (blocking-pool) thread until it is released.
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
            self.held.lock().unwrap_or_else(|e| e.into_inner())
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

        /// Jobs started on the blocking pool so far.
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
    use std::sync::mpsc;
    use std::time::Duration;

    fn limiter(limit: usize) -> BlockingLimiter {
        BlockingLimiter::new(NonZeroUsize::new(limit).expect("non-zero"))
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
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let limiter = limiter(1);
        let error = limiter.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert_eq!(
            error,
            HashError("a password hashing job panicked".to_owned())
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
            Err(HashError(
                "password hashing needs a Tokio runtime".to_owned()
            ))
        );
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
