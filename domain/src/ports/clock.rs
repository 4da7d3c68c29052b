use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time, as a port so that rules about expiry and windows can
/// be tested.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> i64;

    /// The current time, for windows counted to the millisecond (failed
    /// logins, mails). By default [`now_unix`](Self::now_unix) to the
    /// second; [`SystemClock`] gives the system's time as is.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use portcullis_domain::Clock;
    ///
    /// struct Fixed;
    /// impl Clock for Fixed {
    ///     fn now_unix(&self) -> i64 { 1_700_000_000 }
    /// }
    /// assert_eq!(Fixed.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// ```
    fn now(&self) -> SystemTime {
        let secs = self.now_unix();
        match u64::try_from(secs) {
            Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
            Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
        }
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
