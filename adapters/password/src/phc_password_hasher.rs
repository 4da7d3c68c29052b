//! The adapter: [`PasswordHasher`] over argon2 and PBKDF2, with the work on
//! the hasher's own threads, at most one job per core at a time, a bounded
//! queue in front, and failed verifications padded to one duration.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use portcullis_domain::{HashError, PasswordHasher, Verification};

use crate::blocking_limiter::BlockingLimiter;
use crate::config::{ConfigError, HasherConfig};
use crate::scheme::Scheme;

/// Hashes secrets into PHC strings (argon2id or PBKDF2-SHA256, per
/// [`HasherConfig`]) and verifies any argon2 (`argon2id`, `argon2i`,
/// `argon2d`, any parameters) or PBKDF2 hash, including Python pwdlib's
/// argon2id hashes and passlib's `$pbkdf2-sha256$<rounds>$…` strings, and
/// bcrypt hashes (`$2a$`, `$2b$`, `$2y$`, cost up to
/// [`MAX_BCRYPT_COST`](crate::MAX_BCRYPT_COST)) as pwdlib and passlib wrote
/// them for FastAPI Users (the first 72 bytes of a secret count).
///
/// A hash that verifies but was made with another algorithm, version,
/// parameters or format than the configured ones comes back re-hashed in
/// [`Verification::new_hash`]. A malformed or unsupported hash string is
/// simply not valid.
///
/// The work runs on threads of the hasher's own, one per slot, at most
/// [`max_concurrency`](Self::max_concurrency) jobs at once (by default one per
/// core); the calling task awaits it without blocking a thread. When every slot is busy, at most [`HasherConfig::queue_max`] calls
/// wait their turn, each at most [`HasherConfig::queue_timeout`]; the others
/// fail at once with [`HashError::Busy`]. A call dropped while it waits
/// leaves the queue and computes nothing. Clones share the slots and the
/// queue. An argon2 hash's lanes (its parallelism) run side by side on
/// those threads: at light load a hash with
/// several lanes uses the idle slots' cores, under load each job computes
/// its lanes on one thread.
///
/// Timing: every computation is timed per parameter set, and a failed
/// verification (and [`verify_unknown`](PasswordHasher::verify_unknown))
/// then sleeps, without holding a slot, until its computation's start plus
/// the compute time of the slowest set met so far (the upper quartile of
/// its last 15 computations): a wrong password for a
/// user with an older or foreign hash (FastAPI Users' m=65536,t=3,p=4), a
/// wrong password for a current hash and an unknown address all take the
/// same time. Successful verifications are not padded. The sets are learnt
/// as they are met, so until the first check of an other-parameter hash
/// since start, failures last as long as the configured set's.
///
/// Needs a Tokio runtime with its timer enabled (actix-web's has it).
///
/// ```
/// use portcullis_domain::PasswordHasher as _;
/// use portcullis_password::{HasherConfig, PhcPasswordHasher};
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// # runtime.block_on(async {
/// let hasher = PhcPasswordHasher::new(HasherConfig::default())?;
/// let hash = hasher.hash("correct horse battery").await?;
/// assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
///
/// let check = hasher.verify_and_update("correct horse battery", &hash).await?;
/// assert!(check.valid);
/// assert_eq!(check.new_hash, None); // already made the configured way
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct PhcPasswordHasher {
    config: HasherConfig,
    scheme: Arc<Scheme>,
    limiter: BlockingLimiter,
}

impl PhcPasswordHasher {
    /// A hasher for `config`, running at most one job per core
    /// ([`std::thread::available_parallelism`]) at a time.
    ///
    /// # Errors
    /// A setting of `config` is out of range; see [`HasherConfig::validate`].
    pub fn new(config: HasherConfig) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Self::with_max_concurrency(config, cores)
    }

    /// A hasher for `config` running at most `max_jobs` jobs at a time, on
    /// at most `max_jobs` threads (argon2's lanes included). Each running
    /// argon2 job works in one of at most `max_jobs` buffers of
    /// `argon2_memory_kib` KiB, made when first needed, reused while jobs
    /// keep coming and freed once unused for 10 s, so this also bounds the
    /// memory used by hashing, and an idle hasher holds none. A stored hash
    /// asking for more memory than that (pwdlib's 64 MiB, say) gets a buffer
    /// of its own for its job, freed when the job ends.
    ///
    /// # Errors
    /// A setting of `config` is out of range; see [`HasherConfig::validate`].
    pub fn with_max_concurrency(
        config: HasherConfig,
        max_jobs: NonZeroUsize,
    ) -> Result<Self, ConfigError> {
        let limiter = BlockingLimiter::new(max_jobs, config.queue_max, config.queue_timeout);
        Ok(Self {
            // One argon2 buffer per job the limiter lets run, computed on
            // the limiter's threads.
            scheme: Arc::new(Scheme::new(&config, Arc::clone(limiter.lanes()))?),
            config,
            limiter,
        })
    }

    /// Starts the threads every hashing job (and argon2's lanes) runs on
    /// now, instead of at the first hash or verification: what a server does
    /// as it starts, so that its first login spends no time starting threads
    /// and its memory before any hashing already counts theirs. Harmless once
    /// they run.
    pub fn start_threads(&self) {
        self.limiter.lanes().start();
    }

    /// The configuration new hashes follow.
    #[must_use]
    pub fn config(&self) -> &HasherConfig {
        &self.config
    }

    /// How many hashing jobs may run at the same time.
    #[must_use]
    pub fn max_concurrency(&self) -> usize {
        self.limiter.limit()
    }

    /// Hashing slots taken by a running job right now (at most
    /// [`max_concurrency`](Self::max_concurrency)).
    #[must_use]
    pub fn busy_slots(&self) -> usize {
        self.limiter.busy()
    }

    /// Calls waiting for a slot right now (at most
    /// [`HasherConfig::queue_max`]).
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.limiter.waiting()
    }

    /// Hashing jobs started since this hasher (or the one it was cloned
    /// from) was made: a call refused as busy, or dropped while it waited,
    /// starts none.
    #[must_use]
    pub fn jobs_started(&self) -> u64 {
        self.limiter.started()
    }

    /// Runs `job` in a slot; the instant its computation started comes back
    /// with its result.
    async fn run_timed<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Scheme) -> Result<T, HashError> + Send + 'static,
    ) -> Result<(T, Instant), HashError> {
        let scheme = Arc::clone(&self.scheme);
        let (outcome, started) = self
            .limiter
            .run(move || {
                let started = Instant::now();
                (job(&scheme), started)
            })
            .await?;
        Ok((outcome?, started))
    }

    /// Sleeps, outside any slot, until a failure whose computation started
    /// at `started` has lasted what the slowest parameter set costs.
    async fn pad_failure(&self, started: Instant) {
        let slowest = self.scheme.costs.slowest();
        tracing::debug!(
            computed_ms = started.elapsed().as_secs_f64() * 1000.0,
            padded_to_ms = slowest.as_secs_f64() * 1000.0,
            "failed password check"
        );
        tokio::time::sleep_until((started + slowest).into()).await;
    }
}

impl fmt::Debug for PhcPasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhcPasswordHasher")
            .field("config", &self.config)
            .field("max_concurrency", &self.max_concurrency())
            .field("busy_slots", &self.busy_slots())
            .field("queue_len", &self.queue_len())
            .finish()
    }
}

#[async_trait]
impl PasswordHasher for PhcPasswordHasher {
    async fn hash(&self, secret: &str) -> Result<String, HashError> {
        let scheme = Arc::clone(&self.scheme);
        let secret = secret.to_owned();
        self.limiter
            .run(move || scheme.hash(secret.as_bytes()))
            .await?
    }

    async fn verify_and_update(&self, secret: &str, hash: &str) -> Result<Verification, HashError> {
        let secret = secret.to_owned();
        let hash = hash.to_owned();
        // Verification and any re-hash share one job, and one permit.
        let (check, started) = self
            .run_timed(move |scheme| scheme.verify_and_update(secret.as_bytes(), &hash))
            .await?;
        if !check.valid {
            self.pad_failure(started).await;
        }
        Ok(check)
    }

    async fn verify_unknown(&self, secret: &str) -> Result<(), HashError> {
        let secret = secret.to_owned();
        // A hash with the configured parameters costs what checking a
        // current hash costs; the padding does the rest.
        let ((), started) = self
            .run_timed(move |scheme| scheme.hash(secret.as_bytes()).map(drop))
            .await?;
        self.pad_failure(started).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Cheap parameters, the configured ones of these tests.
    fn fast() -> HasherConfig {
        HasherConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..HasherConfig::default()
        }
    }

    /// A hash with 8192 times the work of [`fast`]'s, as an adopted
    /// database's would be.
    async fn other_parameter_hash(secret: &str) -> String {
        let slow = HasherConfig {
            argon2_memory_kib: 16_384,
            argon2_iterations: 32,
            ..HasherConfig::default()
        };
        let hasher = PhcPasswordHasher::new(slow).expect("valid");
        hasher.hash(secret).await.expect("hash")
    }

    /// A hasher of [`fast`] with one slot, that has met the other set.
    async fn hasher_that_met_the_other_set() -> (PhcPasswordHasher, String, String) {
        let limit = NonZeroUsize::new(1).expect("non-zero");
        let hasher = PhcPasswordHasher::with_max_concurrency(fast(), limit).expect("valid");
        let other = other_parameter_hash("pw").await;
        // A success: measured, not padded.
        let check = hasher
            .verify_and_update("pw", &other)
            .await
            .expect("verify");
        assert!(check.valid && check.new_hash.is_some());
        let own = check.new_hash.expect("re-hashed with the configured set");
        (hasher, own, other)
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_is_not_padded_and_a_failure_is() {
        // Tokio's clock is paused: only sleeps move it, so it measures the
        // padding alone, whatever the machine's speed.
        let (hasher, own, _) = hasher_that_met_the_other_set().await;
        let slowest = hasher.scheme.costs.slowest();
        assert!(slowest > Duration::ZERO);

        let before = tokio::time::Instant::now();
        assert!(
            hasher
                .verify_and_update("pw", &own)
                .await
                .expect("verify")
                .valid
        );
        assert_eq!(before.elapsed(), Duration::ZERO, "a success slept");

        let check = hasher
            .verify_and_update("wrong", &own)
            .await
            .expect("verify");
        assert!(!check.valid);
        assert!(
            before.elapsed() >= slowest,
            "a failure with the configured set slept {:?}, not the slowest set's {slowest:?}",
            before.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failures_and_unknown_addresses_last_as_long_as_the_slowest_set() {
        let (hasher, own, other) = hasher_that_met_the_other_set().await;
        // Lower bounds only: a sleep never ends early, however busy the
        // machine is.
        let slowest = hasher.scheme.costs.slowest();
        let start = Instant::now();
        assert!(
            !hasher
                .verify_and_update("wrong", &own)
                .await
                .expect("verify")
                .valid
        );
        assert!(
            start.elapsed() >= slowest,
            "{:?} < {slowest:?}",
            start.elapsed()
        );

        let slowest = hasher.scheme.costs.slowest();
        let start = Instant::now();
        hasher.verify_unknown("anything").await.expect("dummy");
        assert!(
            start.elapsed() >= slowest,
            "{:?} < {slowest:?}",
            start.elapsed()
        );

        // The slow set's own failure is measured too.
        let before = hasher.jobs_started();
        assert!(
            !hasher
                .verify_and_update("wrong", &other)
                .await
                .expect("verify")
                .valid
        );
        assert_eq!(hasher.jobs_started(), before + 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_padding_holds_no_slot() {
        let (hasher, own, _) = hasher_that_met_the_other_set().await;
        let started = hasher.jobs_started();
        let failing = {
            let (hasher, own) = (hasher.clone(), own.clone());
            tokio::spawn(async move { hasher.verify_and_update("wrong", &own).await })
        };
        // The check itself takes microseconds, its padding the slow set's
        // hundreds of milliseconds: catch it padding.
        while hasher.jobs_started() == started || hasher.busy_slots() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!failing.is_finished(), "the failure was not padded");
        // The one slot is free for someone else meanwhile.
        assert_eq!(
            hasher.verify_and_update("pw", &own).await.map(|c| c.valid),
            Ok(true)
        );
        assert!(!failing.await.expect("task").expect("verify").valid);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_queue_is_busy_and_counts_no_job() {
        let config = HasherConfig {
            queue_max: 1,
            ..fast()
        };
        let limit = NonZeroUsize::new(1).expect("non-zero");
        let hasher = PhcPasswordHasher::with_max_concurrency(config, limit).expect("valid");
        let held = hasher.limiter.probe.hold();
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("pw").await })
            })
            .collect();
        held.assert_exactly_in_flight(1, 1).await;
        while hasher.queue_len() < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!((hasher.busy_slots(), hasher.queue_len()), (1, 1));
        assert_eq!(hasher.verify_unknown("pw").await, Err(HashError::Busy));
        assert_eq!(
            hasher.verify_and_update("pw", "$argon2id$x").await,
            Err(HashError::Busy)
        );
        drop(held);
        for job in jobs {
            job.await.expect("task").expect("hash");
        }
        assert_eq!(
            hasher.jobs_started(),
            2,
            "the refused calls started nothing"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hashing_and_verifying_run_on_the_blocking_pool_at_most_one_job_per_core() {
        let hasher = PhcPasswordHasher::new(HasherConfig::default()).expect("valid");
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(hasher.max_concurrency(), cores);
        let stored = hasher.hash("correct horse battery").await.expect("hash");

        let calls = 4 * cores;
        let held = hasher.limiter.probe.hold();
        let jobs: Vec<_> = (0..calls)
            .map(|i| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        hasher.hash("correct horse battery").await.map(|_| ())
                    } else {
                        let check = hasher.verify_and_update("correct horse battery", &stored);
                        check.await.map(|check| assert!(check.valid))
                    }
                })
            })
            .collect();
        // The first hash, then one job per core at once.
        held.assert_exactly_in_flight(cores, 1 + cores).await;
        drop(held);
        for job in jobs {
            job.await.expect("task").expect("hashing");
        }

        let probe = &hasher.limiter.probe;
        assert_eq!(
            probe.started(),
            calls + 1,
            "every call must be a job on the hashing threads"
        );
        assert_eq!(
            probe.peak(),
            cores,
            "at most one job per core, and all cores used"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn clones_share_one_bound() {
        let limit = NonZeroUsize::new(2).expect("non-zero");
        let hasher =
            PhcPasswordHasher::with_max_concurrency(HasherConfig::default(), limit).expect("valid");
        let held = hasher.limiter.probe.hold();
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("correct horse battery").await })
            })
            .collect();
        held.assert_exactly_in_flight(2, 2).await;
        drop(held);
        for job in jobs {
            job.await.expect("task").expect("hash");
        }
        assert_eq!(hasher.limiter.probe.started(), 8);
        assert_eq!(hasher.limiter.probe.peak(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn argon2_jobs_reuse_at_most_one_buffer_per_permit() {
        let config = HasherConfig {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..HasherConfig::default()
        };
        let limit = NonZeroUsize::new(2).expect("non-zero");
        let hasher = PhcPasswordHasher::with_max_concurrency(config, limit).expect("valid");
        let memory = &hasher.scheme.memory;
        assert_eq!(memory.made(), 0, "nothing allocated before the first job");
        let stored = hasher.hash("correct horse battery").await.expect("hash");
        let first = memory.idle_addresses();
        assert_eq!(first.len(), 1);

        // One at a time: always that same buffer.
        for _ in 0..3 {
            let check = hasher.verify_and_update("correct horse battery", &stored);
            assert!(check.await.expect("verify").valid);
            assert_eq!(memory.idle_addresses(), first);
        }

        // Many at once: never more buffers than permits, all of them back.
        let held = hasher.limiter.probe.hold();
        let jobs: Vec<_> = (0..24)
            .map(|i| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        hasher.hash("correct horse battery").await.map(|_| ())
                    } else {
                        let check = hasher.verify_and_update("wrong", &stored);
                        check.await.map(|check| assert!(!check.valid))
                    }
                })
            })
            .collect();
        // The first hash and the three checks, then two jobs at once.
        held.assert_exactly_in_flight(2, 4 + 2).await;
        drop(held);
        for job in jobs {
            job.await.expect("task").expect("hashing");
        }
        assert_eq!(hasher.limiter.probe.peak(), 2);
        let mut idle = memory.idle_addresses();
        idle.sort_unstable();
        idle.dedup();
        assert!((1..=2).contains(&idle.len()), "{memory:?}");
        assert_eq!(idle.len(), memory.made(), "{memory:?}");
        assert!(idle.contains(&first[0]), "the first buffer is still in use");
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn an_idle_hasher_gives_its_argon2_memory_back_and_hashes_on_afterwards() {
        let limit = NonZeroUsize::new(2).expect("non-zero");
        let hasher = PhcPasswordHasher::with_max_concurrency(fast(), limit).expect("valid");
        let memory = &hasher.scheme.memory;
        let stored = hasher.hash("pw").await.expect("hash");
        assert_eq!(memory.made(), 1);
        // The explicit trigger, with the time the buffer would be due:
        // no waiting, whatever the machine's speed.
        let due = Instant::now() + crate::block_pool::KEEP_IDLE;
        assert_eq!(memory.release_idle(due), None, "{memory:?}");
        assert_eq!(memory.made(), 0, "the idle buffer was freed");

        let check = hasher.verify_and_update("pw", &stored).await;
        assert_eq!(check.map(|c| (c.valid, c.new_hash)), Ok((true, None)));
        assert_eq!(memory.made(), 1, "made again for the next job");
    }

    #[test]
    fn start_threads_starts_the_lane_threads_before_any_hash() {
        let hasher = PhcPasswordHasher::with_max_concurrency(
            HasherConfig::default(),
            NonZeroUsize::new(3).unwrap(),
        )
        .unwrap();
        let lanes = hasher.scheme.memory.lanes();
        assert!(!lanes.started(), "no thread until asked");
        hasher.start_threads();
        assert!(lanes.started());
        assert_eq!(lanes.threads(), 3, "one per slot");
        hasher.start_threads();
        assert_eq!(lanes.threads(), 3, "started once");
    }

    /// Where a job's parallel iterators run (the pool's threads) is
    /// `lanes.rs`'s test; here, that argon2 computed through the pool hashes
    /// as the crate does.
    #[tokio::test(flavor = "multi_thread")]
    async fn argon2_hashes_with_a_pool_of_one_thread_per_slot_as_the_crate_does() {
        let config = HasherConfig {
            argon2_memory_kib: 256,
            argon2_iterations: 2,
            argon2_parallelism: 4,
            ..HasherConfig::default()
        };
        let limit = NonZeroUsize::new(3).expect("non-zero");
        let hasher = PhcPasswordHasher::with_max_concurrency(config, limit).expect("valid");
        let stored = hasher.hash("correct horse battery").await.expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=256,t=2,p=4$"),
            "{stored}"
        );
        let lanes = hasher.scheme.memory.lanes();
        assert!(lanes.started());
        assert_eq!(lanes.threads(), 3);
        // The argon2 crate's own check agrees with the lanes' result.
        let phc = password_hash::phc::PasswordHash::new(&stored).expect("PHC");
        use password_hash::PasswordVerifier as _;
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse battery", &phc)
                .is_ok()
        );
    }
}
