//! The per-client-address budget of `POST`s under `/auth/`
//! (`RATE_LIMIT_AUTH_PER_MINUTE`): [`UserService::admit_auth_request`].
//!
//! GCRA (`governor`) with a burst of the per-minute figure: `n` requests at
//! once, then one every `60/n` seconds, per client address. In this
//! process's memory: each instance behind a load balancer keeps its own
//! budgets (the failed-login lockout is the limit shared through the store).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::UserService;

/// `RATE_LIMIT_AUTH_PER_MINUTE` when not set.
pub const DEFAULT_AUTH_REQUESTS_PER_MINUTE: u32 = 30;

/// How often, at most, addresses whose budget is full again are forgotten,
/// so that the limiter's memory holds only the recent clients.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The client address has spent its budget: retry after `retry_after`
/// (when its next request would be admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests from this client address; retry in {retry_after:?}")]
pub struct TooManyRequests {
    /// How long until the address may send its next request.
    pub retry_after: Duration,
}

/// The per-client-address limit on `POST`s under `/auth/`: at most `n` a
/// minute, as a burst of `n` then one every `60/n` seconds (GCRA), or off.
/// Cheap to clone: clones share the budgets.
///
/// ```
/// use portcullis_application::AuthRateLimit;
///
/// let limit = AuthRateLimit::per_minute(2);
/// let client = "203.0.113.9".parse().unwrap();
/// assert!(limit.admit(client).is_ok());
/// assert!(limit.admit(client).is_ok());
/// let refused = limit.admit(client).unwrap_err();
/// assert!(refused.retry_after.as_secs() <= 30); // one every 30 s
/// // Another address has its own budget.
/// assert!(limit.admit("203.0.113.10".parse().unwrap()).is_ok());
/// // 0 is off.
/// assert!(AuthRateLimit::per_minute(0).is_off());
/// ```
#[derive(Clone)]
pub struct AuthRateLimit {
    per_minute: u32,
    budgets: Option<Arc<Budgets<MonotonicClock>>>,
}

impl AuthRateLimit {
    /// At most `n` requests a minute per client address; `0` is off.
    pub fn per_minute(n: u32) -> Self {
        Self {
            per_minute: n,
            budgets: NonZeroU32::new(n).map(|n| Arc::new(Budgets::new(n, MonotonicClock))),
        }
    }

    /// No limit.
    pub fn off() -> Self {
        Self::per_minute(0)
    }

    /// The per-minute figure (`0`: off).
    pub fn requests_per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Whether there is no limit.
    pub fn is_off(&self) -> bool {
        self.budgets.is_none()
    }

    /// Counts one request of `client` against its budget: `Ok` when
    /// admitted, otherwise how long until it would be.
    pub fn admit(&self, client: IpAddr) -> Result<(), TooManyRequests> {
        match &self.budgets {
            None => Ok(()),
            Some(budgets) => budgets.admit(client.to_canonical()),
        }
    }
}

impl Default for AuthRateLimit {
    /// [`DEFAULT_AUTH_REQUESTS_PER_MINUTE`].
    fn default() -> Self {
        Self::per_minute(DEFAULT_AUTH_REQUESTS_PER_MINUTE)
    }
}

impl std::fmt::Debug for AuthRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRateLimit")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

/// The budgets of the client addresses seen recently, on clock `C`.
struct Budgets<C: Clock> {
    limiter: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    start: C::Instant,
    /// Nanoseconds after `start` when full budgets were last forgotten.
    forgotten_at: AtomicU64,
}

impl<C: Clock + Clone> Budgets<C> {
    fn new(per_minute: NonZeroU32, clock: C) -> Self {
        let start = clock.now();
        Self {
            limiter: RateLimiter::hashmap_with_clock(Quota::per_minute(per_minute), clock.clone()),
            clock,
            start,
            forgotten_at: AtomicU64::new(0),
        }
    }

    fn admit(&self, client: IpAddr) -> Result<(), TooManyRequests> {
        let now = self.clock.now();
        self.forget_full_budgets(now);
        self.limiter
            .check_key(&client)
            .map_err(|not_until| TooManyRequests {
                retry_after: not_until.wait_time_from(now),
            })
    }

    /// At most once every [`FORGET_EVERY`], on the request path: drops the
    /// addresses whose budget is full again (they are indistinguishable
    /// from addresses never seen), so memory holds only the addresses of
    /// about the last minute. One caller does it; the others go on.
    fn forget_full_budgets(&self, now: C::Instant) {
        let elapsed = u64::from(now.duration_since(self.start));
        let last = self.forgotten_at.load(Ordering::Relaxed);
        let every = u64::try_from(FORGET_EVERY.as_nanos()).unwrap_or(u64::MAX);
        if elapsed.saturating_sub(last) >= every
            && self
                .forgotten_at
                .compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.limiter.len()
    }
}

impl UserService {
    /// The same use cases, with `limit` on `POST`s under `/auth/`
    /// (default: [`AuthRateLimit::default`], 30 a minute).
    pub fn with_auth_rate_limit(mut self, limit: AuthRateLimit) -> Self {
        self.auth_rate_limit = limit;
        self
    }

    /// The limit on `POST`s under `/auth/` in force.
    pub fn auth_rate_limit(&self) -> &AuthRateLimit {
        &self.auth_rate_limit
    }

    /// Admits one `POST` under `/auth/` from `client` (register, the
    /// logins, forgot/reset password, request-verify-token, verify), or
    /// refuses it with the wait until its budget allows the next one. The
    /// HTTP adapter asks before reading the request's body.
    pub fn admit_auth_request(&self, client: IpAddr) -> Result<(), TooManyRequests> {
        let admitted = self.auth_rate_limit.admit(client);
        if let Err(e) = &admitted {
            tracing::debug!(%client, retry_after = ?e.retry_after, "auth request refused: over the per-address limit");
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn budgets(per_minute: u32) -> (Budgets<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let n = NonZeroU32::new(per_minute).unwrap();
        (Budgets::new(n, clock.clone()), clock)
    }

    #[test]
    fn a_burst_of_n_then_one_every_60_over_n_seconds() {
        let (budgets, clock) = budgets(30);
        let client = ip("198.51.100.1");
        for i in 0..30 {
            assert!(budgets.admit(client).is_ok(), "request {i}");
        }
        let refused = budgets.admit(client).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(
            budgets.admit(client).unwrap_err().retry_after,
            Duration::from_millis(500)
        );
        clock.advance(Duration::from_millis(500));
        assert!(budgets.admit(client).is_ok());
        assert!(budgets.admit(client).is_err());
    }

    #[test]
    fn each_address_has_its_own_budget() {
        let (budgets, _) = budgets(1);
        assert!(budgets.admit(ip("198.51.100.1")).is_ok());
        assert!(budgets.admit(ip("198.51.100.1")).is_err());
        assert!(budgets.admit(ip("198.51.100.2")).is_ok());
        assert!(budgets.admit(ip("2001:db8::1")).is_ok());
        assert!(budgets.admit(ip("2001:db8::1")).is_err());
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address() {
        let limit = AuthRateLimit::per_minute(1);
        assert!(limit.admit(ip("198.51.100.1")).is_ok());
        assert!(limit.admit(ip("::ffff:198.51.100.1")).is_err());
    }

    #[test]
    fn full_budgets_are_forgotten_at_most_once_a_minute() {
        let (budgets, clock) = budgets(60);
        for i in 0..100u8 {
            budgets.admit(IpAddr::from([10, 0, 0, i])).unwrap();
        }
        assert_eq!(budgets.remembered(), 100);
        // Full again after a second, but not forgotten before a minute.
        clock.advance(Duration::from_millis(59_500));
        budgets.admit(ip("10.0.1.1")).unwrap();
        assert_eq!(budgets.remembered(), 101);
        clock.advance(Duration::from_millis(500));
        budgets.admit(ip("10.0.1.2")).unwrap();
        // 10.0.1.1 spent a request half a second ago: still remembered.
        assert_eq!(budgets.remembered(), 2);
    }

    #[test]
    fn off_admits_everything() {
        let limit = AuthRateLimit::off();
        assert!(limit.is_off());
        assert_eq!(limit.requests_per_minute(), 0);
        for _ in 0..1000 {
            assert!(limit.admit(ip("198.51.100.1")).is_ok());
        }
    }

    #[test]
    fn the_default_is_30_a_minute() {
        let limit = AuthRateLimit::default();
        assert_eq!(limit.requests_per_minute(), 30);
        let client = ip("198.51.100.1");
        for _ in 0..30 {
            assert!(limit.admit(client).is_ok());
        }
        assert!(limit.admit(client).is_err());
    }
}
