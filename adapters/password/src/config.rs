//! What the hasher is told: the algorithm for new hashes and its cost, checked
//! once, up front, so a bad setting stops the start-up with a clear message
//! instead of failing every login later.

use std::time::Duration;
use std::{fmt, str::FromStr};

/// Largest argon2 memory cost accepted, in KiB (4 GiB), for new hashes and for
/// stored ones: a stored hash asking for more is treated as unsupported rather
/// than allowed to exhaust the server's memory.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Largest argon2 iteration count accepted (new and stored hashes).
pub const MAX_ARGON2_ITERATIONS: u32 = 256;
/// Largest argon2 parallelism (lanes) accepted (new and stored hashes).
pub const MAX_ARGON2_PARALLELISM: u32 = 255;
/// Fewest PBKDF2 rounds accepted (new and stored hashes); the floor of the
/// `pbkdf2` crate, after NIST.
pub const MIN_PBKDF2_ROUNDS: u32 = 1_000;
/// Most PBKDF2 rounds accepted (new and stored hashes), about a second of work.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Highest bcrypt cost accepted for stored hashes (bcrypt is verified, never
/// written): 2^14 rounds, about a second of work, like the PBKDF2 maximum.
/// pwdlib and passlib write 12 by default; a stored hash asking for more is
/// treated as unsupported rather than allowed to stall every failed login
/// (failures are padded to the slowest parameter set met).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Lowest bcrypt cost accepted for stored hashes: bcrypt's own floor.
pub const MIN_BCRYPT_COST: u32 = 4;

/// Most callers allowed to wait for a hashing slot (`HASH_QUEUE_MAX`).
pub const MAX_HASH_QUEUE: usize = 100_000;
/// Longest wait for a hashing slot accepted (`HASH_QUEUE_TIMEOUT_MS`): a
/// minute; a client has given up long before.
pub const MAX_HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// Argon2 needs at least this many KiB of memory per lane.
const ARGON2_MIN_KIB_PER_LANE: u32 = 8;

/// The algorithm used for new hashes. Hashes of either algorithm always verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Argon2id, version 19: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`. The default.
    #[default]
    Argon2id,
    /// PBKDF2-HMAC-SHA256: `$pbkdf2-sha256$i=…,l=32$salt$hash`.
    Pbkdf2Sha256,
}

impl Algorithm {
    /// The configuration spelling: `"argon2"` or `"pbkdf2"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2",
            Self::Pbkdf2Sha256 => "pbkdf2",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;

    /// Reads the value of `PASSWORD_HASHER`: `argon2` (or `argon2id`) and
    /// `pbkdf2` (or `pbkdf2-sha256`, `pbkdf2_sha256`), case-insensitively.
    ///
    /// ```
    /// use portcullis_password::Algorithm;
    ///
    /// assert_eq!("argon2".parse(), Ok(Algorithm::Argon2id));
    /// assert_eq!("PBKDF2".parse(), Ok(Algorithm::Pbkdf2Sha256));
    /// assert!("bcrypt".parse::<Algorithm>().is_err());
    /// ```
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "argon2" | "argon2id" => Ok(Self::Argon2id),
            "pbkdf2" | "pbkdf2-sha256" | "pbkdf2_sha256" => Ok(Self::Pbkdf2Sha256),
            _ => Err(ConfigError::UnknownAlgorithm(value.to_owned())),
        }
    }
}

/// How new hashes are made, and how many callers may wait for a hashing
/// slot. The defaults are OWASP's: argon2id with 19 MiB, 2 iterations, 1
/// lane; PBKDF2-SHA256 with 600 000 rounds; and at most 32 callers waiting,
/// each at most 5 s.
///
/// A stored hash made with another algorithm or other parameters still
/// verifies, and is then re-hashed with these (see
/// [`PasswordHasher::verify_and_update`](portcullis_domain::PasswordHasher::verify_and_update)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HasherConfig {
    /// Algorithm for new hashes (`PASSWORD_HASHER`).
    pub algorithm: Algorithm,
    /// Argon2 memory cost in KiB (`ARGON2_MEMORY_KIB`); at least 8 per lane.
    pub argon2_memory_kib: u32,
    /// Argon2 iterations, a.k.a. time cost (`ARGON2_ITERATIONS`); at least 1.
    pub argon2_iterations: u32,
    /// Argon2 lanes, a.k.a. parallelism (`ARGON2_PARALLELISM`); at least 1.
    pub argon2_parallelism: u32,
    /// PBKDF2-SHA256 rounds; at least 1 000.
    pub pbkdf2_rounds: u32,
    /// Most callers that may wait for a hashing slot when every slot is busy
    /// (`HASH_QUEUE_MAX`); the next one is refused at once
    /// ([`HashError::Busy`](portcullis_domain::HashError::Busy)). `0`: never
    /// wait, refuse whenever every slot is busy.
    pub queue_max: usize,
    /// Longest wait for a hashing slot (`HASH_QUEUE_TIMEOUT_MS`), after which
    /// the caller is refused ([`HashError::Busy`](portcullis_domain::HashError::Busy));
    /// at least 1 ms.
    pub queue_timeout: Duration,
}

impl HasherConfig {
    /// OWASP's argon2id memory cost: 19 MiB.
    pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19_456;
    /// OWASP's argon2id iteration count.
    pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;
    /// OWASP's argon2id parallelism.
    pub const DEFAULT_ARGON2_PARALLELISM: u32 = 1;
    /// OWASP's PBKDF2-HMAC-SHA256 round count.
    pub const DEFAULT_PBKDF2_ROUNDS: u32 = 600_000;
    /// Callers that may wait for a hashing slot, by default.
    pub const DEFAULT_QUEUE_MAX: usize = 32;
    /// Longest wait for a hashing slot, by default: 5 s.
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(5_000);

    /// Checks every setting, those of the algorithm not in use included: a
    /// wrong value is a mistake whichever algorithm is selected.
    ///
    /// # Errors
    /// The first setting out of range, as a [`ConfigError`] whose message names
    /// the setting, the allowed range and the value given.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let parallelism = self.argon2_parallelism;
        if !(1..=MAX_ARGON2_PARALLELISM).contains(&parallelism) {
            return Err(ConfigError::Argon2Parallelism {
                value: parallelism,
                max: MAX_ARGON2_PARALLELISM,
            });
        }
        if !(1..=MAX_ARGON2_ITERATIONS).contains(&self.argon2_iterations) {
            return Err(ConfigError::Argon2Iterations {
                value: self.argon2_iterations,
                max: MAX_ARGON2_ITERATIONS,
            });
        }
        // Cannot overflow: parallelism <= 255 here.
        let min_memory = ARGON2_MIN_KIB_PER_LANE * parallelism;
        if !(min_memory..=MAX_ARGON2_MEMORY_KIB).contains(&self.argon2_memory_kib) {
            return Err(ConfigError::Argon2Memory {
                value: self.argon2_memory_kib,
                min: min_memory,
                max: MAX_ARGON2_MEMORY_KIB,
                parallelism,
            });
        }
        if !(MIN_PBKDF2_ROUNDS..=MAX_PBKDF2_ROUNDS).contains(&self.pbkdf2_rounds) {
            return Err(ConfigError::Pbkdf2Rounds {
                value: self.pbkdf2_rounds,
                min: MIN_PBKDF2_ROUNDS,
                max: MAX_PBKDF2_ROUNDS,
            });
        }
        if self.queue_max > MAX_HASH_QUEUE {
            return Err(ConfigError::QueueMax {
                value: self.queue_max,
                max: MAX_HASH_QUEUE,
            });
        }
        if self.queue_timeout.is_zero() || self.queue_timeout > MAX_HASH_QUEUE_TIMEOUT {
            return Err(ConfigError::QueueTimeout {
                value_ms: self.queue_timeout.as_millis(),
                max_ms: MAX_HASH_QUEUE_TIMEOUT.as_millis(),
            });
        }
        Ok(())
    }
}

impl Default for HasherConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            argon2_memory_kib: Self::DEFAULT_ARGON2_MEMORY_KIB,
            argon2_iterations: Self::DEFAULT_ARGON2_ITERATIONS,
            argon2_parallelism: Self::DEFAULT_ARGON2_PARALLELISM,
            pbkdf2_rounds: Self::DEFAULT_PBKDF2_ROUNDS,
            queue_max: Self::DEFAULT_QUEUE_MAX,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// A hasher setting is unusable. The message names the setting (and its
/// environment variable), the allowed range and the value given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `PASSWORD_HASHER` is neither `argon2` nor `pbkdf2`.
    #[error("unknown password hasher {0:?} (PASSWORD_HASHER): expected \"argon2\" or \"pbkdf2\"")]
    UnknownAlgorithm(String),
    /// The argon2 memory cost is below 8 KiB per lane or above the maximum.
    #[error(
        "argon2 memory (ARGON2_MEMORY_KIB) must be between {min} and {max} KiB \
         (at least 8 KiB per lane, and ARGON2_PARALLELISM is {parallelism}); got {value}"
    )]
    Argon2Memory {
        /// The value given, in KiB.
        value: u32,
        /// The least accepted: 8 KiB × parallelism.
        min: u32,
        /// The most accepted.
        max: u32,
        /// The configured parallelism.
        parallelism: u32,
    },
    /// The argon2 iteration count is 0 or above the maximum.
    #[error("argon2 iterations (ARGON2_ITERATIONS) must be between 1 and {max}; got {value}")]
    Argon2Iterations {
        /// The value given.
        value: u32,
        /// The most accepted.
        max: u32,
    },
    /// The argon2 parallelism is 0 or above the maximum.
    #[error("argon2 parallelism (ARGON2_PARALLELISM) must be between 1 and {max}; got {value}")]
    Argon2Parallelism {
        /// The value given.
        value: u32,
        /// The most accepted.
        max: u32,
    },
    /// The PBKDF2 round count is out of range.
    #[error("PBKDF2 rounds must be between {min} and {max}; got {value}")]
    Pbkdf2Rounds {
        /// The value given.
        value: u32,
        /// The least accepted.
        min: u32,
        /// The most accepted.
        max: u32,
    },
    /// `HASH_QUEUE_MAX` is above the maximum.
    #[error(
        "the hashing queue (HASH_QUEUE_MAX) must hold between 0 and {max} callers; got {value}"
    )]
    QueueMax {
        /// The value given.
        value: usize,
        /// The most accepted.
        max: usize,
    },
    /// `HASH_QUEUE_TIMEOUT_MS` is 0 or above the maximum.
    #[error(
        "the wait for a hashing slot (HASH_QUEUE_TIMEOUT_MS) must be between 1 and {max_ms} ms; got {value_ms}"
    )]
    QueueTimeout {
        /// The value given, in milliseconds.
        value_ms: u128,
        /// The most accepted, in milliseconds.
        max_ms: u128,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut HasherConfig)) -> HasherConfig {
        let mut config = HasherConfig::default();
        change(&mut config);
        config
    }

    #[test]
    fn defaults_are_owasp_argon2id_and_valid() {
        let config = HasherConfig::default();
        assert_eq!(config.algorithm, Algorithm::Argon2id);
        assert_eq!(
            (
                config.argon2_memory_kib,
                config.argon2_iterations,
                config.argon2_parallelism,
                config.pbkdf2_rounds
            ),
            (19_456, 2, 1, 600_000)
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn algorithm_parses_the_password_hasher_setting() {
        assert_eq!("argon2".parse(), Ok(Algorithm::Argon2id));
        assert_eq!(" Argon2id ".parse(), Ok(Algorithm::Argon2id));
        assert_eq!("pbkdf2".parse(), Ok(Algorithm::Pbkdf2Sha256));
        assert_eq!("pbkdf2_sha256".parse(), Ok(Algorithm::Pbkdf2Sha256));
        let error = "bcrypt".parse::<Algorithm>().unwrap_err();
        assert_eq!(error, ConfigError::UnknownAlgorithm("bcrypt".into()));
        assert!(error.to_string().contains("PASSWORD_HASHER"), "{error}");
        assert_eq!(
            Algorithm::Pbkdf2Sha256.to_string().parse(),
            Ok(Algorithm::Pbkdf2Sha256)
        );
    }

    #[test]
    fn memory_below_eight_kib_per_lane_is_refused_with_a_clear_message() {
        let error = with(|c| {
            c.argon2_memory_kib = 31;
            c.argon2_parallelism = 4;
        })
        .validate()
        .unwrap_err();
        assert_eq!(
            error,
            ConfigError::Argon2Memory {
                value: 31,
                min: 32,
                max: MAX_ARGON2_MEMORY_KIB,
                parallelism: 4
            }
        );
        let message = error.to_string();
        assert!(message.contains("ARGON2_MEMORY_KIB"), "{message}");
        assert!(message.contains("got 31"), "{message}");
        assert_eq!(with(|c| c.argon2_memory_kib = 8).validate(), Ok(()));
    }

    #[test]
    fn memory_above_the_maximum_is_refused() {
        let config = with(|c| c.argon2_memory_kib = MAX_ARGON2_MEMORY_KIB + 1);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Argon2Memory { .. })
        ));
    }

    #[test]
    fn zero_iterations_or_parallelism_are_refused() {
        let error = with(|c| c.argon2_iterations = 0).validate().unwrap_err();
        assert!(error.to_string().contains("ARGON2_ITERATIONS"), "{error}");
        let error = with(|c| c.argon2_parallelism = 0).validate().unwrap_err();
        assert!(error.to_string().contains("ARGON2_PARALLELISM"), "{error}");
        let error = with(|c| c.argon2_parallelism = MAX_ARGON2_PARALLELISM + 1).validate();
        assert!(matches!(error, Err(ConfigError::Argon2Parallelism { .. })));
    }

    #[test]
    fn argon2_settings_are_checked_even_when_pbkdf2_is_selected() {
        let config = with(|c| {
            c.algorithm = Algorithm::Pbkdf2Sha256;
            c.argon2_iterations = 0;
        });
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Argon2Iterations { .. })
        ));
    }

    #[test]
    fn pbkdf2_rounds_out_of_range_are_refused() {
        assert!(matches!(
            with(|c| c.pbkdf2_rounds = 999).validate(),
            Err(ConfigError::Pbkdf2Rounds { value: 999, .. })
        ));
        assert!(
            with(|c| c.pbkdf2_rounds = MAX_PBKDF2_ROUNDS + 1)
                .validate()
                .is_err()
        );
        assert_eq!(with(|c| c.pbkdf2_rounds = 1_000).validate(), Ok(()));
    }

    #[test]
    fn the_queue_defaults_to_32_callers_for_5_seconds_and_may_be_empty() {
        let config = HasherConfig::default();
        assert_eq!(config.queue_max, 32);
        assert_eq!(config.queue_timeout, Duration::from_secs(5));
        assert_eq!(with(|c| c.queue_max = 0).validate(), Ok(()));
    }

    #[test]
    fn queue_settings_out_of_range_are_refused_naming_the_variable() {
        let error = with(|c| c.queue_max = MAX_HASH_QUEUE + 1)
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("HASH_QUEUE_MAX"), "{error}");
        let error = with(|c| c.queue_timeout = Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::QueueTimeout {
                value_ms: 0,
                max_ms: 60_000
            }
        );
        assert!(
            error.to_string().contains("HASH_QUEUE_TIMEOUT_MS"),
            "{error}"
        );
        let too_long =
            with(|c| c.queue_timeout = MAX_HASH_QUEUE_TIMEOUT + Duration::from_millis(1));
        assert!(matches!(
            too_long.validate(),
            Err(ConfigError::QueueTimeout { .. })
        ));
    }
}
