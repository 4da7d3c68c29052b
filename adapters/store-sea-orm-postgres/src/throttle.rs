//! [`PostgresUserStore`] as a [`ThrottleLedger`]: the table
//! `portcullis_throttle`, through the statements `store-sql-common` writes
//! for both SQL stores.
//!
//! A hit is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement:
//! concurrent hits on one key, from any number of instances, take the row's
//! lock in turn and each counts (the loser of an insert race updates the
//! winner's row instead). Every call is bounded like the user operations
//! and answers [`StoreError::Unavailable`] while PostgreSQL is away.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use portcullis_domain::{StoreError, ThrottleKind, ThrottleLedger, ThrottleWindow};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::throttle::{
    ThrottleTimes, clear_sql, current_sql, hit_sql, purge_sql, unix_millis, window_from_row,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::PostgresUserStore;

fn statement(sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// `(window_start, count)` of a returned row.
fn columns(row: &QueryResult) -> Result<(i64, i32), DbErr> {
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))
}

#[async_trait]
impl ThrottleLedger for PostgresUserStore {
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError> {
        let times = ThrottleTimes::new(now, window);
        let hit = statement(
            hit_sql(Dialect::Postgres),
            vec![
                kind.as_str().into(),
                key.into(),
                times.now.into(),
                times.closed_from.into(),
            ],
        );
        let db = self.connection();
        let (start, count) = self
            .bounded(async {
                let row = db.query_one_raw(hit).await?.ok_or_else(|| {
                    DbErr::RecordNotFound("INSERT … RETURNING returned no row".into())
                })?;
                columns(&row)
            })
            .await?;
        Ok(window_from_row(kind, key, start, count)?)
    }

    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError> {
        let times = ThrottleTimes::new(now, window);
        let select = statement(
            current_sql(Dialect::Postgres),
            vec![kind.as_str().into(), key.into(), times.closed_from.into()],
        );
        let db = self.connection();
        let row = self
            .bounded(async {
                match db.query_one_raw(select).await? {
                    Some(row) => columns(&row).map(Some),
                    None => Ok(None),
                }
            })
            .await?;
        row.map(|(start, count)| Ok(window_from_row(kind, key, start, count)?))
            .transpose()
    }

    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
        let delete = statement(
            clear_sql(Dialect::Postgres),
            vec![kind.as_str().into(), key.into()],
        );
        self.bounded(self.connection().execute_raw(delete))
            .await
            .map(|_| ())
    }

    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
        let delete = statement(
            purge_sql(Dialect::Postgres),
            vec![kind.as_str().into(), unix_millis(cutoff).into()],
        );
        let result = self.bounded(self.connection().execute_raw(delete)).await?;
        Ok(result.rows_affected())
    }
}
