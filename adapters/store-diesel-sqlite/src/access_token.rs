//! [`SqliteUserStore`] as an [`AccessTokenStore`]: FastAPI Users'
//! `accesstoken` table, through the statements `store-sql-common` writes
//! for both SQL stores — but the lookup, made at every request a database
//! session authenticates, which is the same statement in Diesel's query
//! builder (prepared once per connection) on the calling thread's reader. Times are bound and read as the text FastAPI Users
//! writes (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), which sorts as the times do,
//! so `created_at >= ?` and `created_at < ?` are index range scans. The
//! cascade on user delete is the foreign key's (every connection sets
//! `PRAGMA foreign_keys = ON`).

use std::time::SystemTime;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;
use portcullis_domain::{AccessTokenRecord, AccessTokenStore, StoreError, UserId};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::sessions::{
    TokenRow, create_access_token_sql, delete_access_token_sql, delete_access_tokens_of_sql,
    format_timestamp, id_text, purge_access_tokens_sql,
};

use crate::SqliteUserStore;
use crate::error::Failure;
use crate::schema::accesstoken;

/// One row of `accesstoken` as the lookup returns it.
#[derive(Queryable)]
struct Row {
    user_id: String,
    token: String,
    created_at: String,
}

/// The row of `token` made at or after `not_before` (text as
/// [`format_timestamp`] writes it): one probe of the table's primary key.
fn find(conn: &mut SqliteConnection, token: &str, not_before: &str) -> QueryResult<Option<Row>> {
    lookup(token, not_before).first::<Row>(conn).optional()
}

/// [`find`]'s statement: `get_access_token_sql`'s, written with Diesel's
/// query builder so that it is prepared once per connection (Diesel never
/// caches an `sql_query`), then only bound and stepped.
#[allow(clippy::type_complexity)]
pub(crate) fn lookup<'a>(
    token: &'a str,
    not_before: &'a str,
) -> diesel::dsl::Select<
    diesel::dsl::Filter<
        diesel::dsl::Filter<accesstoken::table, diesel::dsl::Eq<accesstoken::token, &'a str>>,
        diesel::dsl::GtEq<accesstoken::created_at, &'a str>,
    >,
    (
        accesstoken::user_id,
        accesstoken::token,
        accesstoken::created_at,
    ),
> {
    accesstoken::table
        .filter(accesstoken::token.eq(token))
        .filter(accesstoken::created_at.ge(not_before))
        .select((
            accesstoken::user_id,
            accesstoken::token,
            accesstoken::created_at,
        ))
}

#[async_trait]
impl AccessTokenStore for SqliteUserStore {
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError> {
        let (user, token) = (id_text(record.user_id), record.token.clone());
        let created_at = format_timestamp(record.created_at);
        self.with_conn(move |conn| {
            match diesel::sql_query(create_access_token_sql(Dialect::Sqlite))
                .bind::<Text, _>(user)
                .bind::<Text, _>(token)
                .bind::<Text, _>(created_at)
                .execute(conn)
            {
                Ok(_) => Ok(()),
                // The user does not exist (or was just deleted).
                Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                    Err(Failure::from(StoreError::NotFound))
                }
                Err(other) => Err(Failure::from(other)),
            }
        })
        .await
    }

    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let not_before = format_timestamp(not_before);
        // Made by every request authenticated by a database session: on the
        // calling thread's reader, in its next batch, as a lookup by id (see
        // `inline_read`).
        let inline = match &self.inline_reads {
            Some(reads) => {
                let (token, not_before) = (token.to_owned(), not_before.clone());
                reads
                    .batched(move |conn, _, _| find(conn, &token, &not_before))
                    .await
            }
            None => None,
        };
        let row = match inline {
            Some(row) => row,
            None => {
                let token = token.to_owned();
                self.with_conn(move |conn| find(conn, &token, &not_before).map_err(Failure::from))
                    .await?
            }
        };
        let record = row
            .map(|row| {
                AccessTokenRecord::try_from(TokenRow {
                    user_id: row.user_id,
                    token: row.token,
                    created_at: row.created_at,
                })
            })
            .transpose()?;
        Ok(record)
    }

    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError> {
        let token = token.to_owned();
        self.with_conn(move |conn| {
            diesel::sql_query(delete_access_token_sql(Dialect::Sqlite))
                .bind::<Text, _>(token)
                .execute(conn)
                .map(|_| ())
                .map_err(Failure::from)
        })
        .await
    }

    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError> {
        let user = id_text(user);
        let deleted = self
            .with_conn(move |conn| {
                diesel::sql_query(delete_access_tokens_of_sql(Dialect::Sqlite))
                    .bind::<Text, _>(user)
                    .execute(conn)
                    .map_err(Failure::from)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }

    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let cutoff = format_timestamp(cutoff);
        let deleted = self
            .with_conn(move |conn| {
                diesel::sql_query(purge_access_tokens_sql(Dialect::Sqlite))
                    .bind::<Text, _>(cutoff)
                    .execute(conn)
                    .map_err(Failure::from)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store_sql_common::fields::Dialect;
    use portcullis_store_sql_common::sessions::{
        ADD_SESSION_STAMP_COLUMN, CREATE_ACCESS_TOKEN_USER_INDEX, create_access_token_table,
    };

    /// A migration's statements: its lines without comments or blanks.
    fn statements(up: &str) -> String {
        up.lines()
            .filter(|line| !line.starts_with("--") && !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The index on a token's user is `store-sql-common`'s, as PostgreSQL's.
    #[test]
    fn the_user_index_migration_is_the_shared_ddl() {
        let up = include_str!("../migrations/2026-12-02-160000_accesstoken_user_index/up.sql");
        assert_eq!(statements(up).trim(), CREATE_ACCESS_TOKEN_USER_INDEX);
    }

    /// The migration's DDL is the one `store-sql-common` writes (and the
    /// one FastAPI Users' SQLAlchemy adapter creates on SQLite).
    #[test]
    fn the_migration_adds_the_stamp_and_creates_fastapi_users_table() {
        let up = include_str!("../migrations/2025-01-01-000003_sessions/up.sql");
        let statements: String = up
            .lines()
            .filter(|line| !line.starts_with("--") && !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let expected = [ADD_SESSION_STAMP_COLUMN]
            .into_iter()
            .chain(create_access_token_table(Dialect::Sqlite))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(statements.trim(), expected);
    }
}
