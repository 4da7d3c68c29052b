//! [`SqliteUserStore`] as a [`ThrottleLedger`]: the table
//! `portcullis_throttle`, through the statements `store-sql-common` writes
//! for both SQL stores.
//!
//! A hit is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement:
//! SQLite runs it under its single write lock, so concurrent hits from
//! every connection and every process on the file are all counted (a
//! writer waits for the lock up to `busy_timeout`).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use portcullis_domain::{StoreError, ThrottleKind, ThrottleLedger, ThrottleWindow};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::throttle::{
    ThrottleTimes, clear_sql, current_sql, hit_sql, purge_sql, unix_millis, window_from_row,
};

use crate::SqliteUserStore;
use crate::error::Failure;

/// One row of `portcullis_throttle` as the statements return it.
#[derive(QueryableByName)]
struct WindowRow {
    #[diesel(sql_type = BigInt)]
    window_start: i64,
    #[diesel(sql_type = Integer)]
    count: i32,
}

impl WindowRow {
    fn into_window(self, kind: ThrottleKind, key: &str) -> Result<ThrottleWindow, StoreError> {
        Ok(window_from_row(kind, key, self.window_start, self.count)?)
    }
}

#[async_trait]
impl ThrottleLedger for SqliteUserStore {
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError> {
        let times = ThrottleTimes::new(now, window);
        let bound_key = key.to_owned();
        let row = self
            .with_conn(move |conn| {
                diesel::sql_query(hit_sql(Dialect::Sqlite))
                    .bind::<Text, _>(kind.as_str())
                    .bind::<Text, _>(bound_key)
                    .bind::<BigInt, _>(times.now)
                    .bind::<BigInt, _>(times.closed_from)
                    .get_result::<WindowRow>(conn)
                    .map_err(Failure::from)
            })
            .await?;
        row.into_window(kind, key)
    }

    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError> {
        let times = ThrottleTimes::new(now, window);
        let bound_key = key.to_owned();
        let row = self
            .with_conn(move |conn| {
                diesel::sql_query(current_sql(Dialect::Sqlite))
                    .bind::<Text, _>(kind.as_str())
                    .bind::<Text, _>(bound_key)
                    .bind::<BigInt, _>(times.closed_from)
                    .get_result::<WindowRow>(conn)
                    .optional()
                    .map_err(Failure::from)
            })
            .await?;
        row.map(|row| row.into_window(kind, key)).transpose()
    }

    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.with_conn(move |conn| {
            diesel::sql_query(clear_sql(Dialect::Sqlite))
                .bind::<Text, _>(kind.as_str())
                .bind::<Text, _>(key)
                .execute(conn)
                .map(|_| ())
                .map_err(Failure::from)
        })
        .await
    }

    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
        let cutoff = unix_millis(cutoff);
        let deleted = self
            .with_conn(move |conn| {
                diesel::sql_query(purge_sql(Dialect::Sqlite))
                    .bind::<Text, _>(kind.as_str())
                    .bind::<BigInt, _>(cutoff)
                    .execute(conn)
                    .map_err(Failure::from)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store_sql_common::throttle::CREATE_THROTTLE_TABLE;

    /// The migration's DDL is the one `store-sql-common` writes for both
    /// stores (the PostgreSQL migration runs that constant).
    #[test]
    fn the_migration_creates_the_shared_table_and_index() {
        let up = include_str!("../migrations/2025-01-01-000002_create_throttle/up.sql");
        let statements: String = up
            .lines()
            .filter(|line| !line.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(statements.trim(), CREATE_THROTTLE_TABLE.join("\n"));
    }
}
