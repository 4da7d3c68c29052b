//! [`SqliteUserStore`] as an [`OAuthAccountStore`]: FastAPI Users'
//! `oauth_account` table, through the statements `store-sql-common` writes
//! for both SQL stores (ids as hyphenated lowercase text, as SQLAlchemy
//! stores them). One provider account is linked at most once: the unique
//! index `ix_oauth_account_oauth_name_account_id` decides (`Conflict`).
//! The cascade on user delete is the foreign key's (every connection sets
//! `PRAGMA foreign_keys = ON`).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{BigInt, Nullable, Text};
use portcullis_domain::{OAuthAccount, OAuthAccountStore, StoreError, UserId};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::oauth::{
    OAuthAccountRow, add_oauth_account_sql, get_oauth_account_sql, oauth_accounts_of_sql,
    update_oauth_account_sql,
};
use portcullis_store_sql_common::sessions::id_text;

use crate::SqliteUserStore;
use crate::error::Failure;

/// One row of `oauth_account` as the lookups return it.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    oauth_name: String,
    #[diesel(sql_type = Text)]
    access_token: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    refresh_token: Option<String>,
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    account_email: String,
}

impl From<Row> for OAuthAccountRow {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            oauth_name: row.oauth_name,
            access_token: row.access_token,
            expires_at: row.expires_at,
            refresh_token: row.refresh_token,
            account_id: row.account_id,
            account_email: row.account_email,
        }
    }
}

fn accounts(rows: Vec<Row>) -> Result<Vec<OAuthAccount>, StoreError> {
    rows.into_iter()
        .map(|row| OAuthAccount::try_from(OAuthAccountRow::from(row)).map_err(StoreError::from))
        .collect()
}

#[async_trait]
impl OAuthAccountStore for SqliteUserStore {
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError> {
        let (oauth_name, account_id) = (oauth_name.to_owned(), account_id.to_owned());
        let rows = self
            .with_conn(move |conn| {
                diesel::sql_query(get_oauth_account_sql(Dialect::Sqlite))
                    .bind::<Text, _>(oauth_name)
                    .bind::<Text, _>(account_id)
                    .load::<Row>(conn)
                    .map_err(Failure::from)
            })
            .await?;
        Ok(accounts(rows)?.into_iter().next())
    }

    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
        let user = id_text(user);
        let rows = self
            .with_conn(move |conn| {
                diesel::sql_query(oauth_accounts_of_sql(Dialect::Sqlite))
                    .bind::<Text, _>(user)
                    .load::<Row>(conn)
                    .map_err(Failure::from)
            })
            .await?;
        accounts(rows)
    }

    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let row = OAuthAccountRow::from(account);
        self.with_conn(move |conn| {
            match diesel::sql_query(add_oauth_account_sql(Dialect::Sqlite))
                .bind::<Text, _>(row.id)
                .bind::<Text, _>(row.user_id)
                .bind::<Text, _>(row.oauth_name)
                .bind::<Text, _>(row.access_token)
                .bind::<Nullable<BigInt>, _>(row.expires_at)
                .bind::<Nullable<Text>, _>(row.refresh_token)
                .bind::<Text, _>(row.account_id)
                .bind::<Text, _>(row.account_email)
                .execute(conn)
            {
                Ok(_) => Ok(()),
                // The user does not exist (or was just deleted).
                Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                    Err(Failure::from(StoreError::NotFound))
                }
                // A unique violation becomes `Conflict` in `Failure`.
                Err(other) => Err(Failure::from(other)),
            }
        })
        .await
    }

    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let row = OAuthAccountRow::from(account);
        let updated = self
            .with_conn(move |conn| {
                diesel::sql_query(update_oauth_account_sql(Dialect::Sqlite))
                    .bind::<Text, _>(row.access_token)
                    .bind::<Nullable<BigInt>, _>(row.expires_at)
                    .bind::<Nullable<Text>, _>(row.refresh_token)
                    .bind::<Text, _>(row.account_email)
                    .bind::<Text, _>(row.id)
                    .execute(conn)
                    .map_err(Failure::from)
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store_sql_common::fields::Dialect;
    use portcullis_store_sql_common::oauth::{
        CREATE_OAUTH_ACCOUNT_UNIQUE_INDEX, create_oauth_account_table,
    };

    /// The migration's DDL is the one `store-sql-common` writes (FastAPI
    /// Users' table on SQLite, and Portcullis' unique index).
    #[test]
    fn the_migration_creates_fastapi_users_table_and_the_unique_index() {
        let up = include_str!("../migrations/2025-01-01-000004_oauth_accounts/up.sql");
        let statements: String = up
            .lines()
            .filter(|line| !line.starts_with("--") && !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let expected = create_oauth_account_table(Dialect::Sqlite)
            .into_iter()
            .chain([CREATE_OAUTH_ACCOUNT_UNIQUE_INDEX])
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(statements.trim(), expected);
    }
}
