//! The sessions of the SQL stores: FastAPI Users' `accesstoken` table (the
//! [`AccessTokenStore`](portcullis_domain::AccessTokenStore)) and the
//! session stamp column Portcullis adds to `user`, with the statements over
//! them written once for both dialects.
//!
//! The table is exactly the one FastAPI Users' SQLAlchemy adapter
//! (`SQLAlchemyBaseAccessTokenTableUUID`) creates, so a database whose
//! FastAPI Users service used the `DatabaseStrategy` is adopted with its
//! sessions, and tokens either side writes are read by the other. On
//! PostgreSQL:
//!
//! ```sql
//! CREATE TABLE accesstoken (
//!     user_id UUID NOT NULL,
//!     token VARCHAR(43) NOT NULL,
//!     created_at TIMESTAMP WITH TIME ZONE NOT NULL,
//!     PRIMARY KEY (token),
//!     FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
//! );
//! CREATE INDEX ix_accesstoken_created_at ON accesstoken (created_at);
//! ```
//!
//! On SQLite, `user_id` is `CHAR(36)` (the UUID as hyphenated lowercase
//! text) and `created_at` is `TIMESTAMP`, holding UTC as the text
//! `YYYY-MM-DD HH:MM:SS.ffffff` (always six digits of microseconds, no
//! offset): what SQLAlchemy's SQLite `DATETIME` writes for FastAPI Users'
//! `TIMESTAMPAware`. That text sorts as the times do, so the comparisons
//! (`created_at >= …`) are text comparisons that use the index.
//!
//! Every statement here binds and returns text only: the token, the user id
//! (cast to `UUID` on PostgreSQL) and the time in that format (cast to
//! `TIMESTAMPTZ` at UTC on PostgreSQL), so both stores read a row with the
//! same code ([`TokenRow`]).
//!
//! The session stamp: `portcullis_session_stamp BIGINT NOT NULL DEFAULT 0`
//! on `user` ([`SESSION_STAMP_COLUMN`]). The default matters: FastAPI Users
//! inserts users without the column, and they start at 0. FastAPI Users
//! ignores it (its JWTs carry no stamp). A raise sets it to the time of the
//! revocation in Unix milliseconds (or the old value + 1, whichever is
//! more), which is how Portcullis judges FastAPI Users' stampless tokens by
//! when they were issued.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_domain::{AccessTokenRecord, UserId};

use crate::fields::Dialect;
use crate::{CorruptRow, parse_id};

/// FastAPI Users' table of opaque access tokens.
pub const ACCESS_TOKEN_TABLE: &str = "accesstoken";

/// FastAPI Users' index on `accesstoken.created_at` (purge, expiry).
pub const ACCESS_TOKEN_INDEX: &str = "ix_accesstoken_created_at";

/// Portcullis' own index on `accesstoken.user_id` (FastAPI Users' table has
/// none): a user's tokens are found through it when their sessions end
/// ([`delete_access_tokens_of_sql`]) and by the `ON DELETE CASCADE` of the
/// user's deletion, instead of reading every session (issue 16).
pub const ACCESS_TOKEN_USER_INDEX: &str = "ix_portcullis_accesstoken_user_id";

/// Creates [`ACCESS_TOKEN_USER_INDEX`], the same on both dialects,
/// idempotent (`IF NOT EXISTS`); ends with `;`.
pub const CREATE_ACCESS_TOKEN_USER_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS ix_portcullis_accesstoken_user_id ON accesstoken (user_id);";

/// The column of `user` that holds [`User::session_stamp`](portcullis_domain::User::session_stamp).
pub const SESSION_STAMP_COLUMN: &str = "portcullis_session_stamp";

/// The value a patch with `end_sessions: Some(now_ms)` sets the stamp to,
/// on both dialects: `max(stamp + 1, now_ms)` from the row's current value,
/// in the same `UPDATE` (atomic against concurrent patches; see
/// [`UserPatch::end_sessions`](portcullis_domain::UserPatch::end_sessions)).
/// `now_ms` is written as an integer literal (an `i64`, so nothing but
/// digits and a sign), which keeps the statement's bind list unchanged.
pub fn raised_session_stamp_sql(now_ms: i64) -> String {
    format!(
        r#"CASE WHEN "portcullis_session_stamp" + 1 > {now_ms} THEN "portcullis_session_stamp" + 1 ELSE {now_ms} END"#
    )
}

/// The `SET` item of a patch with `end_sessions: Some(now_ms)`:
/// `"portcullis_session_stamp" = ` [`raised_session_stamp_sql`].
pub fn raise_session_stamp(now_ms: i64) -> String {
    format!(
        r#""portcullis_session_stamp" = {}"#,
        raised_session_stamp_sql(now_ms)
    )
}

/// Adds the stamp column to `user` (existing users get 0), on both
/// dialects. PostgreSQL runs it with `IF NOT EXISTS`
/// ([`ADD_SESSION_STAMP_COLUMN_IF_MISSING_PG`]).
pub const ADD_SESSION_STAMP_COLUMN: &str =
    r#"ALTER TABLE "user" ADD COLUMN portcullis_session_stamp BIGINT NOT NULL DEFAULT 0;"#;

/// [`ADD_SESSION_STAMP_COLUMN`] for PostgreSQL, a no-op when the column exists.
pub const ADD_SESSION_STAMP_COLUMN_IF_MISSING_PG: &str = r#"ALTER TABLE "user" ADD COLUMN IF NOT EXISTS portcullis_session_stamp BIGINT NOT NULL DEFAULT 0;"#;

/// The DDL of `accesstoken` and its index as FastAPI Users' SQLAlchemy
/// adapter creates them on `dialect` (column order, types and the
/// constraint as SQLAlchemy spells them), idempotent (`IF NOT EXISTS`): an
/// existing table, FastAPI Users' own, is kept with its rows. Each
/// statement ends with `;`.
pub fn create_access_token_table(dialect: Dialect) -> [&'static str; 2] {
    match dialect {
        Dialect::Sqlite => [
            "CREATE TABLE IF NOT EXISTS accesstoken (
	user_id CHAR(36) NOT NULL,
	token VARCHAR(43) NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (token),
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
);",
            "CREATE INDEX IF NOT EXISTS ix_accesstoken_created_at ON accesstoken (created_at);",
        ],
        Dialect::Postgres => [
            r#"CREATE TABLE IF NOT EXISTS accesstoken (
	user_id UUID NOT NULL,
	token VARCHAR(43) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (token),
	FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
);"#,
            "CREATE INDEX IF NOT EXISTS ix_accesstoken_created_at ON accesstoken (created_at);",
        ],
    }
}

/// Parameter `n` holding a time in [`format_timestamp`]'s text, as the
/// column compares it.
fn time_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        // The text is UTC without an offset: read it at UTC.
        Dialect::Postgres => format!("(CAST(${n} AS TIMESTAMP) AT TIME ZONE 'UTC')"),
    }
}

/// Parameter `n` holding a user id as text, as the column compares it.
fn id_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("CAST(${n} AS UUID)"),
    }
}

/// Parameter `n` holding text.
fn text_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    }
}

/// The columns a lookup returns, as text: `user_id`, `token`, `created_at`
/// (in [`format_timestamp`]'s format).
fn text_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "user_id, token, created_at",
        Dialect::Postgres => {
            r#"CAST(user_id AS TEXT) AS user_id, token, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS created_at"#
        }
    }
}

/// Stores a token: `$1` user id, `$2` token, `$3` created_at (all text,
/// [`format_timestamp`]). A duplicate token violates the primary key
/// (`Conflict`), an unknown user the foreign key (`NotFound`).
pub fn create_access_token_sql(dialect: Dialect) -> String {
    format!(
        "INSERT INTO accesstoken (user_id, token, created_at) VALUES ({}, {}, {})",
        id_param(1, dialect),
        text_param(2, dialect),
        time_param(3, dialect)
    )
}

/// The token `$1` if created at or after `$2` (text time). Returns zero or
/// one row of text columns `user_id`, `token`, `created_at`.
pub fn get_access_token_sql(dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM accesstoken WHERE token = {} AND created_at >= {}",
        text_columns(dialect),
        text_param(1, dialect),
        time_param(2, dialect)
    )
}

/// PostgreSQL only: the tokens `$1` (an array of text) with their rows'
/// [`TokenRow`] columns, all text, in that order; no `created_at` bound: a
/// caller reading many tokens in one query (the PostgreSQL store's read
/// lane) compares each with its own bound, [`to_the_microsecond`].
pub fn get_access_tokens_any_sql() -> String {
    format!(
        "SELECT {} FROM accesstoken WHERE token = ANY($1)",
        text_columns(Dialect::Postgres)
    )
}

/// Deletes the token `$1`.
pub fn delete_access_token_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM accesstoken WHERE token = {}",
        text_param(1, dialect)
    )
}

/// Deletes every token of the user `$1` (id as text); the number of rows
/// deleted is the answer.
pub fn delete_access_tokens_of_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM accesstoken WHERE user_id = {}",
        id_param(1, dialect)
    )
}

/// Deletes every token created before `$1` (text time); the number of rows
/// deleted is the answer.
pub fn purge_access_tokens_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM accesstoken WHERE created_at < {}",
        time_param(1, dialect)
    )
}

/// One row of `accesstoken` as the statements return it: all text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// `user_id`, hyphenated.
    pub user_id: String,
    /// `token`.
    pub token: String,
    /// `created_at`, [`format_timestamp`]'s format.
    pub created_at: String,
}

impl TryFrom<TokenRow> for AccessTokenRecord {
    type Error = CorruptRow;

    /// A row another program wrote badly (an id that is no UUID, a time
    /// that is no time) is a [`CorruptRow`].
    fn try_from(row: TokenRow) -> Result<Self, CorruptRow> {
        Ok(AccessTokenRecord {
            user_id: UserId::from_uuid(parse_id(&row.user_id)?),
            created_at: parse_timestamp(&row.created_at)?,
            token: row.token,
        })
    }
}

/// The user id as the statements bind it.
pub fn id_text(user: UserId) -> String {
    user.as_uuid().hyphenated().to_string()
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `time` in UTC as `YYYY-MM-DD HH:MM:SS.ffffff`: what SQLAlchemy writes for
/// FastAPI Users' `created_at` on SQLite, and the text every statement here
/// binds. Truncated to the microsecond (the column's precision on both
/// databases); times before 1970 are written as such.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_store_sql_common::sessions::format_timestamp;
///
/// let t = UNIX_EPOCH + Duration::from_nanos(1_764_630_052_440_530_999);
/// assert_eq!(format_timestamp(t), "2025-12-01 23:00:52.440530");
/// ```
pub fn format_timestamp(time: SystemTime) -> String {
    let micros = micros_since_epoch(time);
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{fraction:06}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Whole microseconds from 1970 to `time`, rounded towards the past (so
/// that truncation is the same on both sides of 1970), saturated.
fn micros_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            -i64::try_from(d.as_micros() + u128::from(d.subsec_nanos() % 1000 != 0))
                .unwrap_or(i64::MAX)
        }
    }
}

/// `time` as the `created_at` column keeps it (and as
/// [`format_timestamp`] writes it): truncated to the microsecond, towards
/// the past. A store that compares a stored time with `time` in Rust
/// compares with this, to answer as the statement's `created_at >= $2`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_store_sql_common::sessions::to_the_microsecond;
///
/// let t = UNIX_EPOCH + Duration::from_nanos(1_764_630_052_440_530_999);
/// assert_eq!(to_the_microsecond(t), UNIX_EPOCH + Duration::from_micros(1_764_630_052_440_530));
/// let before = UNIX_EPOCH - Duration::from_nanos(1_500);
/// assert_eq!(to_the_microsecond(before), UNIX_EPOCH - Duration::from_micros(2));
/// ```
pub fn to_the_microsecond(time: SystemTime) -> SystemTime {
    let micros = micros_since_epoch(time);
    let shifted = if micros >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_micros(micros.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_micros(micros.unsigned_abs()))
    };
    shifted.unwrap_or(time)
}

/// A stored `created_at` as a time: `YYYY-MM-DD HH:MM:SS` with an optional
/// fraction of 1 to 6 digits, read as UTC (a `T` between date and time is
/// accepted too). Anything else is a [`CorruptRow`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_store_sql_common::sessions::parse_timestamp;
///
/// let t = parse_timestamp("2025-12-01 23:00:52.44053").unwrap();
/// assert_eq!(t, UNIX_EPOCH + Duration::from_micros(1_764_630_052_440_530));
/// ```
pub fn parse_timestamp(text: &str) -> Result<SystemTime, CorruptRow> {
    parse_parts(text).ok_or_else(|| CorruptRow::Timestamp {
        text: text.to_owned(),
    })
}

fn parse_parts(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !text.is_ascii() {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &text[range];
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| bytes[i] != c) || !matches!(bytes[10], b' ' | b'T') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let fraction = match &text[19..] {
        "" => 0,
        rest => {
            let digits = rest.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 6 {
                return None;
            }
            number(20..text.len())? * 10_i64.pow(6 - digits.len() as u32)
        }
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    let micros = seconds * MICROS_PER_SECOND + fraction;
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    Some(if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_micros(micros: i64) -> SystemTime {
        let magnitude = Duration::from_micros(micros.unsigned_abs());
        if micros >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    #[test]
    fn timestamps_are_fastapi_users_text_on_sqlite() {
        // Written by FastAPI Users (SQLAlchemy 2.0, aiosqlite) for a token
        // created at 2026-12-01 23:00:52.440530 UTC.
        let t = parse_timestamp("2026-12-01 23:00:52.440530").unwrap();
        assert_eq!(format_timestamp(t), "2026-12-01 23:00:52.440530");
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_timestamp(at_micros(951_782_400_000_001)),
            "2000-02-29 00:00:00.000001",
            "a leap day"
        );
    }

    #[test]
    fn timestamps_round_trip_every_day_and_before_1970() {
        for day in -800..800 {
            for micros in [0, 1, 43_199_999_999, 86_399_999_999] {
                let m = day * 86_400_000_000 * 37 + micros;
                let t = at_micros(m);
                assert_eq!(parse_timestamp(&format_timestamp(t)), Ok(t), "{m}");
            }
        }
        assert_eq!(
            format_timestamp(at_micros(-1)),
            "1969-12-31 23:59:59.999999"
        );
        let just_before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format_timestamp(just_before), "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn formatting_truncates_to_the_microsecond_and_sorts_as_time() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        assert_eq!(
            parse_timestamp(&format_timestamp(t)).unwrap(),
            UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456)
        );
        let a = format_timestamp(at_micros(1_764_000_000_999_999));
        let b = format_timestamp(at_micros(1_764_000_001_000_000));
        assert!(a < b, "{a} < {b}");
    }

    #[test]
    fn short_fractions_and_t_are_read_and_garbage_is_a_corrupt_row() {
        assert_eq!(
            parse_timestamp("2026-01-02T03:04:05.5").unwrap(),
            parse_timestamp("2026-01-02 03:04:05.500000").unwrap()
        );
        assert_eq!(
            parse_timestamp("2026-01-02 03:04:05").unwrap(),
            parse_timestamp("2026-01-02 03:04:05.000000").unwrap()
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-02-30 00:00:00",
            "2026-01-02 24:00:00",
            "2026-01-02 03:04:05.",
            "2026-01-02 03:04:05.1234567",
            "2026-01-02 03:04:05+00:00",
            "2026-01-02 03:04:0x",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(CorruptRow::Timestamp { text: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_row_is_a_record_or_a_corrupt_row() {
        let id = "10e80a18-88e2-496b-9ab7-b1c109d6d5ea";
        let row = TokenRow {
            user_id: id.into(),
            token: "t".repeat(43),
            created_at: "2026-12-01 23:00:52.440530".into(),
        };
        let record = AccessTokenRecord::try_from(row.clone()).unwrap();
        assert_eq!(id_text(record.user_id), id);
        assert_eq!(record.token, "t".repeat(43));
        let bad_id = TokenRow {
            user_id: "x".into(),
            ..row.clone()
        };
        assert!(matches!(
            AccessTokenRecord::try_from(bad_id),
            Err(CorruptRow::Id { .. })
        ));
    }

    #[test]
    fn statements_bind_text_on_both_dialects() {
        let lite = get_access_token_sql(Dialect::Sqlite);
        assert_eq!(
            lite,
            "SELECT user_id, token, created_at FROM accesstoken WHERE token = ?1 AND created_at >= ?2"
        );
        let pg = purge_access_tokens_sql(Dialect::Postgres);
        assert_eq!(
            pg,
            "DELETE FROM accesstoken WHERE created_at < (CAST($1 AS TIMESTAMP) AT TIME ZONE 'UTC')"
        );
        assert!(create_access_token_sql(Dialect::Postgres).contains("CAST($1 AS UUID)"));
        assert!(!delete_access_tokens_of_sql(Dialect::Sqlite).contains('$'));
    }
}
