//! What one hash computation costs, per parameter set, so that every failed
//! verification can be made to last as long as the slowest one.
//!
//! A login for an unknown address hashes with the configured parameters; a
//! wrong password for a user whose stored hash has other parameters (an
//! adopted FastAPI Users database: argon2id m=65536,t=3,p=4) costs those.
//! Without padding the answer time tells which addresses have accounts. The
//! book keeps each set's last [`WINDOW`] compute times and estimates the set
//! by their upper quartile: a failure padded to it lasts at least what the
//! slow set's typical failure lasts, and one slow run under load moves
//! nothing. (Not the median: on a loaded machine a long computation is
//! stretched by preemption while a sleep is not, and its durations trend
//! up; measured, padding to the median left the padded kinds some 15%
//! faster than the slow set under load.)
//! The hasher sleeps, after the job and outside the slot, until
//! compute start + the slowest set's estimate.
//!
//! The sets are learnt as they are met: until the first verification of an
//! other-parameter hash since start, unknown addresses answer in the time of
//! the configured set.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::lock;

/// How many recent compute times of each set the estimate looks at.
pub(crate) const WINDOW: usize = 15;

/// Recent compute times per parameter set (keyed by the part of a hash
/// string before the salt, e.g. `$argon2id$v=19$m=65536,t=3,p=4`, or
/// bcrypt's ident and cost, `$2b$12`). Shared by the clones of a hasher.
#[derive(Debug, Default)]
pub(crate) struct CostBook {
    samples: Mutex<HashMap<String, VecDeque<Duration>>>,
}

impl CostBook {
    /// Counts one computation of `key` that took `elapsed`.
    pub(crate) fn record(&self, key: &str, elapsed: Duration) {
        let mut samples = lock(&self.samples);
        let recent = match samples.get_mut(key) {
            Some(recent) => recent,
            None => samples.entry(key.to_owned()).or_default(),
        };
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back(elapsed);
    }

    /// The estimate of the slowest set met so far (zero before any).
    pub(crate) fn slowest(&self) -> Duration {
        let samples = lock(&self.samples);
        samples
            .values()
            .map(upper_quartile)
            .max()
            .unwrap_or_default()
    }

    /// The estimate of `key`, if it was met.
    #[cfg(test)]
    pub(crate) fn estimate(&self, key: &str) -> Option<Duration> {
        let samples = lock(&self.samples);
        samples.get(key).map(upper_quartile)
    }
}

/// The upper quartile of a window: the value three quarters of the way up
/// (the one sample itself when there is one).
fn upper_quartile(recent: &VecDeque<Duration>) -> Duration {
    let mut sorted: Vec<Duration> = recent.iter().copied().collect();
    sorted.sort_unstable();
    sorted
        .get(sorted.len() * 3 / 4)
        .copied()
        .unwrap_or_default()
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
    fn the_estimate_is_the_upper_quartile_of_the_recent_measures() {
        let book = CostBook::default();
        for ms in [250, 240, 900, 245, 260, 255, 235, 265] {
            book.record("set", ms * MS);
        }
        // Sorted: 235 240 245 250 255 260 265 900; index 8 * 3 / 4 = 6.
        assert_eq!(
            book.estimate("set"),
            Some(265 * MS),
            "an outlier moves nothing"
        );
    }

    #[test]
    fn only_the_last_window_of_measures_counts() {
        let book = CostBook::default();
        for _ in 0..WINDOW {
            book.record("set", 100 * MS);
        }
        assert_eq!(book.estimate("set"), Some(100 * MS));
        // The machine got slower (or the load heavier): the estimate follows
        // once a quarter of the window says so (index 15 * 3 / 4 = 11 of 15).
        for _ in 0..3 {
            book.record("set", 200 * MS);
        }
        assert_eq!(book.estimate("set"), Some(100 * MS));
        book.record("set", 200 * MS);
        assert_eq!(book.estimate("set"), Some(200 * MS));
        // And back, once the old measures have left the window.
        for _ in 0..WINDOW - 3 {
            book.record("set", 100 * MS);
        }
        assert_eq!(book.estimate("set"), Some(100 * MS));
    }
}
