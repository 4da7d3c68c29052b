//! The adapter: [`PasswordHasher`] over argon2 and PBKDF2, with the work on
//! Tokio's blocking pool and at most one job per core at a time.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use async_trait::async_trait;

use portcullis_domain::{HashError, PasswordHasher, Verification};

use crate::blocking_limiter::BlockingLimiter;
use crate::config::{ConfigError, HasherConfig};
use crate::scheme::Scheme;

/// Hashes secrets into PHC strings (argon2id or PBKDF2-SHA256, per
/// [`HasherConfig`]) and verifies any argon2 (`argon2id`, `argon2i`,
/// `argon2d`, any parameters) or PBKDF2 hash, including Python pwdlib's
/// argon2id hashes and passlib's `$pbkdf2-sha256$<rounds>$…` strings.
///
/// A hash that verifies but was made with another algorithm, version,
/// parameters or format than the configured ones comes back re-hashed in
/// [`Verification::new_hash`]. A malformed or unsupported hash string is
/// simply not valid.
///
/// The work runs on Tokio's blocking pool, at most
/// [`max_concurrency`](Self::max_concurrency) jobs at once (by default one per
/// core); other calls wait their turn. Clones share that bound.
///
/// ```
/// use portcullis_domain::PasswordHasher as _;
/// use portcullis_password::{HasherConfig, PhcPasswordHasher};
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
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

    /// A hasher for `config` running at most `max_jobs` jobs at a time. Each
    /// running argon2 job works in one of at most `max_jobs` buffers of
    /// `argon2_memory_kib` KiB, made when first needed and then reused, so
    /// this also bounds the memory used by hashing. A stored hash asking for
    /// more memory than that (pwdlib's 64 MiB, say) gets a buffer of its own
    /// for its job, freed when the job ends.
    ///
    /// # Errors
    /// A setting of `config` is out of range; see [`HasherConfig::validate`].
    pub fn with_max_concurrency(
        config: HasherConfig,
        max_jobs: NonZeroUsize,
    ) -> Result<Self, ConfigError> {
        let limiter = BlockingLimiter::new(max_jobs);
        Ok(Self {
            // One argon2 buffer per job the limiter lets run.
            scheme: Arc::new(Scheme::new(&config, limiter.limit())?),
            config,
            limiter,
        })
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
}

impl fmt::Debug for PhcPasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhcPasswordHasher")
            .field("config", &self.config)
            .field("max_concurrency", &self.max_concurrency())
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
        let scheme = Arc::clone(&self.scheme);
        let secret = secret.to_owned();
        let hash = hash.to_owned();
        // Verification and any re-hash share one job, and one permit.
        self.limiter
            .run(move || scheme.verify_and_update(secret.as_bytes(), &hash))
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "every call must be a blocking-pool job"
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
}
