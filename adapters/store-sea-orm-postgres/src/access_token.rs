//! [`PostgresUserStore`] as an [`AccessTokenStore`]: FastAPI Users'
//! `accesstoken` table, through the statements `store-sql-common` writes
//! for both SQL stores (values bound as text and cast: `UUID`, and UTC
//! `TIMESTAMP WITH TIME ZONE` to the microsecond). Every call is bounded
//! like the user operations and answers [`StoreError::Unavailable`] while
//! PostgreSQL is away. The cascade on user delete is the foreign key's.
//!
//! A token's lookup (every request of a database session) goes through the
//! read lane, as a lookup by id does (`read_lane.rs`: no ping, a statement
//! prepared once per connection, the lookups waiting together in one
//! query); through the pool only for a store of one connection.

use std::time::SystemTime;

use async_trait::async_trait;
use portcullis_domain::{AccessTokenRecord, AccessTokenStore, StoreError, UserId};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::sessions::{
    TokenRow, create_access_token_sql, delete_access_token_sql, delete_access_tokens_of_sql,
    format_timestamp, get_access_token_sql, id_text, purge_access_tokens_sql, to_the_microsecond,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, SqlErr, Statement, Value};

use crate::PostgresUserStore;

fn statement(sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Whether `error` is a foreign key refusing the row (SQLSTATE 23503).
pub(crate) fn foreign_key_violation(error: &StoreError) -> bool {
    use std::error::Error;
    let mut cause = error.source();
    while let Some(e) = cause {
        if let Some(db) = e.downcast_ref::<DbErr>() {
            return matches!(db.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)));
        }
        cause = e.source();
    }
    false
}

#[async_trait]
impl AccessTokenStore for PostgresUserStore {
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError> {
        let insert = statement(
            create_access_token_sql(Dialect::Postgres),
            vec![
                id_text(record.user_id).into(),
                record.token.clone().into(),
                format_timestamp(record.created_at).into(),
            ],
        );
        match self.bounded(self.connection().execute_raw(insert)).await {
            Ok(_) => Ok(()),
            // The user does not exist (or was just deleted).
            Err(error) if foreign_key_violation(&error) => Err(StoreError::NotFound),
            Err(error) => Err(error),
        }
    }

    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        if let Some(lane) = self.read_lane() {
            // The lane reads the token whatever its age; the bound is
            // compared here, as the statement below compares it.
            let row = self.bounded_read(lane.fetch_token(token)).await?;
            let record = row.map(AccessTokenRecord::try_from).transpose()?;
            let not_before = to_the_microsecond(not_before);
            return Ok(record.filter(|record| record.created_at >= not_before));
        }
        let select = statement(
            get_access_token_sql(Dialect::Postgres),
            vec![token.into(), format_timestamp(not_before).into()],
        );
        let db = self.connection();
        let row = self
            .bounded(async {
                match db.query_one_raw(select).await? {
                    Some(row) => Ok(Some(TokenRow {
                        user_id: row.try_get_by_index(0)?,
                        token: row.try_get_by_index(1)?,
                        created_at: row.try_get_by_index(2)?,
                    })),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(row.map(AccessTokenRecord::try_from).transpose()?)
    }

    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError> {
        let delete = statement(
            delete_access_token_sql(Dialect::Postgres),
            vec![token.into()],
        );
        self.bounded(self.connection().execute_raw(delete))
            .await
            .map(|_| ())
    }

    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError> {
        let delete = statement(
            delete_access_tokens_of_sql(Dialect::Postgres),
            vec![id_text(user).into()],
        );
        let result = self.bounded(self.connection().execute_raw(delete)).await?;
        Ok(result.rows_affected())
    }

    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let delete = statement(
            purge_access_tokens_sql(Dialect::Postgres),
            vec![format_timestamp(cutoff).into()],
        );
        let result = self.bounded(self.connection().execute_raw(delete)).await?;
        Ok(result.rows_affected())
    }
}
