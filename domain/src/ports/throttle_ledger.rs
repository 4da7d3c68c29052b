use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::StoreError;

/// What a [`ThrottleLedger`] counts. Each kind has its own windows: a key
/// may have one window of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleKind {
    /// Failed logins for one address (`LOGIN_LOCKOUT_*`).
    LoginFailure,
    /// Reset and verification mails sent to one address
    /// (`MAIL_PER_ADDRESS_PER_HOUR`).
    Mail,
}

impl ThrottleKind {
    /// Every kind.
    pub const ALL: [ThrottleKind; 2] = [Self::LoginFailure, Self::Mail];

    /// The kind's name where a store keeps it (the `kind` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailure => "login_failure",
            Self::Mail => "mail",
        }
    }
}

/// A fixed window of counted events for one key: it opened at `started`
/// with the first event, and `count` events fell in it so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// When the window opened (the first event counted in it), to the
    /// millisecond.
    pub started: SystemTime,
    /// Events counted in the window, at least 1.
    pub count: u32,
}

impl ThrottleWindow {
    /// When a window of length `window` opened at `started` closes.
    pub fn closes(&self, window: Duration) -> SystemTime {
        self.started + window
    }
}

/// Counts events per key in fixed windows: failed logins per address, mails
/// per address. Kept in the store so that every instance on one database
/// sees the same counts.
///
/// A window of length `window` is open at `now` when it started less than
/// `window` before `now`. Keys are opaque strings of at most 320 bytes (the
/// use cases pass a lowercased e-mail address); times are kept to the
/// millisecond.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ThrottleLedger: Send + Sync {
    /// Counts one event of `kind` for `key` at `now` and returns the window
    /// after counting: when `key` has no open window at `now`, a new one
    /// opens at `now` with count 1; otherwise its count grows by one.
    /// Atomic: concurrent hits from any number of instances on one store are
    /// all counted, in one window.
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError>;

    /// The window of `kind` for `key` open at `now`, if any. Writes nothing.
    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError>;

    /// Forgets `key`'s window of `kind`, open or not (nothing if none).
    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError>;

    /// Forgets every window of `kind` that started before `cutoff`, and
    /// returns how many there were.
    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError>;
}
