//! [`PostgresUserStore`] as an [`OAuthAccountStore`]: FastAPI Users'
//! `oauth_account` table, through the statements `store-sql-common` writes
//! for both SQL stores (ids bound as text and cast to `UUID`). One provider
//! account is linked at most once: the unique index
//! `ix_oauth_account_oauth_name_account_id` decides (`Conflict`). Every
//! call is bounded like the user operations and answers
//! [`StoreError::Unavailable`] while PostgreSQL is away. The cascade on
//! user delete is the foreign key's.

use async_trait::async_trait;
use portcullis_domain::{OAuthAccount, OAuthAccountStore, StoreError, UserId};
use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::oauth::{
    OAuthAccountRow, add_oauth_account_sql, get_oauth_account_sql, oauth_accounts_of_sql,
    update_oauth_account_sql,
};
use portcullis_store_sql_common::sessions::id_text;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::PostgresUserStore;
use crate::access_token::foreign_key_violation;

fn statement(sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// A row of the lookups, in the statements' column order.
fn row_of(row: &QueryResult) -> Result<OAuthAccountRow, DbErr> {
    Ok(OAuthAccountRow {
        id: row.try_get_by_index(0)?,
        user_id: row.try_get_by_index(1)?,
        oauth_name: row.try_get_by_index(2)?,
        access_token: row.try_get_by_index(3)?,
        expires_at: row.try_get_by_index(4)?,
        refresh_token: row.try_get_by_index(5)?,
        account_id: row.try_get_by_index(6)?,
        account_email: row.try_get_by_index(7)?,
    })
}

impl PostgresUserStore {
    /// The accounts `select` returns.
    async fn oauth_accounts(&self, select: Statement) -> Result<Vec<OAuthAccount>, StoreError> {
        let db = self.connection();
        let rows = self
            .bounded(async {
                db.query_all_raw(select)
                    .await?
                    .iter()
                    .map(row_of)
                    .collect::<Result<Vec<_>, DbErr>>()
            })
            .await?;
        rows.into_iter()
            .map(|row| OAuthAccount::try_from(row).map_err(StoreError::from))
            .collect()
    }
}

#[async_trait]
impl OAuthAccountStore for PostgresUserStore {
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError> {
        let select = statement(
            get_oauth_account_sql(Dialect::Postgres),
            vec![oauth_name.into(), account_id.into()],
        );
        Ok(self.oauth_accounts(select).await?.into_iter().next())
    }

    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
        let select = statement(
            oauth_accounts_of_sql(Dialect::Postgres),
            vec![id_text(user).into()],
        );
        self.oauth_accounts(select).await
    }

    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let row = OAuthAccountRow::from(account);
        let insert = statement(
            add_oauth_account_sql(Dialect::Postgres),
            vec![
                row.id.into(),
                row.user_id.into(),
                row.oauth_name.into(),
                row.access_token.into(),
                row.expires_at.into(),
                row.refresh_token.into(),
                row.account_id.into(),
                row.account_email.into(),
            ],
        );
        match self.bounded(self.connection().execute_raw(insert)).await {
            Ok(_) => Ok(()),
            // The user does not exist (or was just deleted).
            Err(error) if foreign_key_violation(&error) => Err(StoreError::NotFound),
            // A unique violation is already `Conflict`.
            Err(error) => Err(error),
        }
    }

    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let row = OAuthAccountRow::from(account);
        let update = statement(
            update_oauth_account_sql(Dialect::Postgres),
            vec![
                row.access_token.into(),
                row.expires_at.into(),
                row.refresh_token.into(),
                row.account_email.into(),
                row.id.into(),
            ],
        );
        let result = self.bounded(self.connection().execute_raw(update)).await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
