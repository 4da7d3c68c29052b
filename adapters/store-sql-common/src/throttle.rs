//! The [`ThrottleLedger`](portcullis_domain::ThrottleLedger) of the SQL
//! stores: the table `portcullis_throttle`, one row per window, and the
//! four statements over it, written once for both dialects.
//!
//! ```sql
//! CREATE TABLE portcullis_throttle (
//!     kind VARCHAR(32) NOT NULL,      -- ThrottleKind::as_str()
//!     key VARCHAR(320) NOT NULL,      -- e.g. a lowercased address
//!     window_start BIGINT NOT NULL,   -- unix time, milliseconds
//!     count INTEGER NOT NULL,         -- events in the window, >= 1
//!     PRIMARY KEY (kind, key)
//! );
//! CREATE INDEX ix_portcullis_throttle_kind_window_start
//!     ON portcullis_throttle (kind, window_start);  -- for purge
//! ```
//!
//! A hit is one `INSERT … ON CONFLICT (kind, key) DO UPDATE … RETURNING`:
//! the database serialises concurrent hits on one row (PostgreSQL's row
//! lock, SQLite's write lock), so hits from any number of instances are all
//! counted. Times are bound as unix milliseconds; a window of length `w`
//! opened at `s` is open at `now` while `s > now - w` (`w` rounded up to
//! the millisecond, which keeps that exact). FastAPI Users ignores the
//! table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_domain::{ThrottleKind, ThrottleWindow};

use crate::CorruptRow;
use crate::fields::Dialect;

/// The table that holds the windows.
pub const THROTTLE_TABLE: &str = "portcullis_throttle";

/// The index `purge` uses.
pub const THROTTLE_INDEX: &str = "ix_portcullis_throttle_kind_window_start";

/// The DDL of the table and its index, the same on SQLite and PostgreSQL,
/// idempotent (`IF NOT EXISTS`). Each statement ends with `;`.
pub const CREATE_THROTTLE_TABLE: [&str; 2] = [
    r#"CREATE TABLE IF NOT EXISTS portcullis_throttle (
	"kind" VARCHAR(32) NOT NULL,
	"key" VARCHAR(320) NOT NULL,
	"window_start" BIGINT NOT NULL,
	"count" INTEGER NOT NULL,
	PRIMARY KEY ("kind", "key")
);"#,
    r#"CREATE INDEX IF NOT EXISTS ix_portcullis_throttle_kind_window_start ON portcullis_throttle ("kind", "window_start");"#,
];

/// `$n` placeholders as `dialect` writes them (`?n` on SQLite).
fn placeholders(sql: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => sql.to_owned(),
        Dialect::Sqlite => sql.replace('$', "?"),
    }
}

/// Counts one hit: `$1` kind, `$2` key, `$3` now and `$4` the latest start
/// of a closed window ([`ThrottleTimes::closed_from`]), both in unix
/// milliseconds. Returns one row: `window_start` (BIGINT), `count`
/// (INTEGER), after counting.
///
/// Every `SET` expression reads the row as it was before the update, so
/// both `CASE`s test the old window. The count stops at `i32::MAX` rather
/// than overflow.
pub fn hit_sql(dialect: Dialect) -> String {
    placeholders(
        r#"INSERT INTO portcullis_throttle ("kind", "key", "window_start", "count")
VALUES ($1, $2, $3, 1)
ON CONFLICT ("kind", "key") DO UPDATE SET
	"count" = CASE
		WHEN portcullis_throttle."window_start" <= $4 THEN 1
		WHEN portcullis_throttle."count" >= 2147483647 THEN portcullis_throttle."count"
		ELSE portcullis_throttle."count" + 1
	END,
	"window_start" = CASE
		WHEN portcullis_throttle."window_start" <= $4 THEN excluded."window_start"
		ELSE portcullis_throttle."window_start"
	END
RETURNING "window_start", "count""#,
        dialect,
    )
}

/// The open window, if any: `$1` kind, `$2` key, `$3` the latest start of a
/// closed window. Returns zero or one row: `window_start`, `count`.
pub fn current_sql(dialect: Dialect) -> String {
    placeholders(
        r#"SELECT "window_start", "count" FROM portcullis_throttle
WHERE "kind" = $1 AND "key" = $2 AND "window_start" > $3"#,
        dialect,
    )
}

/// Forgets one window: `$1` kind, `$2` key.
pub fn clear_sql(dialect: Dialect) -> String {
    placeholders(
        r#"DELETE FROM portcullis_throttle WHERE "kind" = $1 AND "key" = $2"#,
        dialect,
    )
}

/// Forgets the windows of `$1` kind started before `$2` (unix
/// milliseconds); the number of rows deleted is the answer.
pub fn purge_sql(dialect: Dialect) -> String {
    placeholders(
        r#"DELETE FROM portcullis_throttle WHERE "kind" = $1 AND "window_start" < $2"#,
        dialect,
    )
}

/// `time` as unix milliseconds (times before 1970 count as 1970, as the
/// memory store does).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_store_sql_common::throttle::unix_millis;
///
/// assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_micros(1_500_900)), 1_500);
/// ```
pub fn unix_millis(time: SystemTime) -> i64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds as a time (negative ones, which only another program
/// could have written, before 1970).
pub fn from_unix_millis(millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// The bound values of one `hit` or `current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleTimes {
    /// `now`, unix milliseconds.
    pub now: i64,
    /// The latest start of a window that is closed at `now`: `now` minus
    /// the window rounded up to the millisecond. A window is open while its
    /// start is greater.
    pub closed_from: i64,
}

impl ThrottleTimes {
    /// The values for a window of length `window` at `now`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use portcullis_store_sql_common::throttle::ThrottleTimes;
    ///
    /// let t = ThrottleTimes::new(UNIX_EPOCH + Duration::from_secs(10), Duration::from_secs(3));
    /// assert_eq!((t.now, t.closed_from), (10_000, 7_000));
    /// ```
    pub fn new(now: SystemTime, window: Duration) -> Self {
        let now = unix_millis(now);
        let window = i64::try_from(window.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
        Self {
            now,
            closed_from: now.saturating_sub(window),
        }
    }
}

/// A row of `portcullis_throttle` as a window; a count below 1 (only
/// another program could have written it) is a [`CorruptRow`].
pub fn window_from_row(
    kind: ThrottleKind,
    key: &str,
    window_start: i64,
    count: i32,
) -> Result<ThrottleWindow, CorruptRow> {
    let count = u32::try_from(count)
        .ok()
        .filter(|&c| c >= 1)
        .ok_or_else(|| CorruptRow::ThrottleCount {
            kind: kind.as_str(),
            key: key.to_owned(),
            count,
        })?;
    Ok(ThrottleWindow {
        started: from_unix_millis(window_start),
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_number_their_parameters_like_postgres() {
        let pg = hit_sql(Dialect::Postgres);
        let lite = hit_sql(Dialect::Sqlite);
        assert!(pg.contains("$4") && !pg.contains('?'));
        assert!(lite.contains("?4") && !lite.contains('$'));
        assert_eq!(lite.replace('?', "$"), pg);
        for sql in [current_sql, clear_sql, purge_sql] {
            assert!(!sql(Dialect::Sqlite).contains('$'));
        }
    }

    #[test]
    fn a_window_is_rounded_up_to_the_millisecond() {
        let now = UNIX_EPOCH + Duration::from_millis(10_000);
        let t = ThrottleTimes::new(now, Duration::from_micros(1_500));
        assert_eq!(t.closed_from, 10_000 - 2);
        let t = ThrottleTimes::new(now, Duration::from_secs(u64::MAX));
        assert_eq!(t.closed_from, 10_000 - i64::MAX, "a huge window saturates");
    }

    #[test]
    fn millis_round_trip_including_before_1970() {
        for millis in [0, 1, 1_764_000_000_123, -5] {
            assert_eq!(unix_millis(from_unix_millis(millis)), millis.max(0));
        }
        assert_eq!(from_unix_millis(-5), UNIX_EPOCH - Duration::from_millis(5));
    }

    #[test]
    fn a_count_below_one_is_a_corrupt_row() {
        let w = window_from_row(ThrottleKind::Mail, "a@b.c", 1_000, 3).unwrap();
        assert_eq!(w.count, 3);
        assert_eq!(w.started, UNIX_EPOCH + Duration::from_secs(1));
        for count in [0, -1] {
            let err = window_from_row(ThrottleKind::Mail, "a@b.c", 1_000, count).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("stored count {count} of the mail window of \"a@b.c\" is not positive")
            );
        }
    }
}
