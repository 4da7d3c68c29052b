//! What one hash computation costs, per parameter set, so that every failed
//! verification can be made to last as long as the slowest one.
//!
//! A login for an unknown address hashes with the configured parameters; a
//! wrong password for a user whose stored hash has other parameters (an
//! adopted FastAPI Users database: argon2id m=65536,t=3,p=4) costs those.
//! Without padding the answer time tells which addresses have accounts. The
//! book keeps a running estimate of each set's compute time (a moving
//! average, so one slow run under load does not inflate it for good), and
//! the hasher sleeps, after the job and outside the slot, until
//! compute start + the slowest estimate.
//!
//! The sets are learnt as they are met: until the first verification of an
//! other-parameter hash since start, unknown addresses answer in the time of
//! the configured set.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A parameter set: the algorithm and its cost, e.g.
/// `argon2id v=19 m=65536,t=3,p=4` or `pbkdf2-sha256 i=600000`.
pub(crate) type CostKey = String;

/// Weight of a new sample in the moving average: 1/8.
const NEW_SAMPLE_SHARE: u32 = 8;

/// Running compute-time estimates per parameter set. Shared by the clones
/// of a hasher.
#[derive(Debug, Default)]
pub(crate) struct CostBook {
    estimates: Mutex<HashMap<CostKey, Duration>>,
}

impl CostBook {
    /// Counts one computation of `key` that took `elapsed`.
    pub(crate) fn record(&self, key: &str, elapsed: Duration) {
        let mut estimates = self.estimates.lock().unwrap_or_else(|e| e.into_inner());
        match estimates.get_mut(key) {
            Some(estimate) => {
                // estimate += (elapsed - estimate) / 8, in either direction.
                if elapsed >= *estimate {
                    *estimate += (elapsed - *estimate) / NEW_SAMPLE_SHARE;
                } else {
                    *estimate -= (*estimate - elapsed) / NEW_SAMPLE_SHARE;
                }
            }
            None => {
                estimates.insert(key.to_owned(), elapsed);
            }
        }
    }

    /// The estimate of the slowest set met so far (zero before any).
    pub(crate) fn slowest(&self) -> Duration {
        let estimates = self.estimates.lock().unwrap_or_else(|e| e.into_inner());
        estimates.values().copied().max().unwrap_or_default()
    }

    /// The estimate of `key`, if it was met.
    #[cfg(test)]
    pub(crate) fn estimate(&self, key: &str) -> Option<Duration> {
        let estimates = self.estimates.lock().unwrap_or_else(|e| e.into_inner());
        estimates.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_new_set_is_taken_at_its_first_measure() {
        let book = CostBook::default();
        assert_eq!(book.slowest(), Duration::ZERO);
        book.record("fast", 30 * MS);
        assert_eq!(book.estimate("fast"), Some(30 * MS));
        assert_eq!(book.slowest(), 30 * MS);
    }

    #[test]
    fn the_slowest_set_is_the_largest_estimate() {
        let book = CostBook::default();
        book.record("configured", 30 * MS);
        book.record("fastapi-users", 240 * MS);
        book.record("pbkdf2", 80 * MS);
        assert_eq!(book.slowest(), 240 * MS);
        book.record("configured", 30 * MS);
        assert_eq!(book.slowest(), 240 * MS, "a faster set never lowers it");
    }

    #[test]
    fn the_estimate_moves_an_eighth_of_the_way_to_each_sample() {
        let book = CostBook::default();
        book.record("set", 80 * MS);
        book.record("set", 160 * MS);
        assert_eq!(book.estimate("set"), Some(90 * MS));
        book.record("set", 10 * MS);
        assert_eq!(book.estimate("set"), Some(80 * MS));
    }

    #[test]
    fn one_slow_outlier_does_not_inflate_the_estimate_for_good() {
        let book = CostBook::default();
        book.record("set", 100 * MS);
        book.record("set", 900 * MS);
        assert_eq!(book.estimate("set"), Some(200 * MS));
        for _ in 0..40 {
            book.record("set", 100 * MS);
        }
        let estimate = book.estimate("set").expect("met");
        assert!(estimate < 101 * MS, "{estimate:?}");
    }
}
