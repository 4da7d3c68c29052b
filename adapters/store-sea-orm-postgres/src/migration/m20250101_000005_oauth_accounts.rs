//! Social login: FastAPI Users' `oauth_account` table, kept when it exists
//! (an adopted FastAPI Users database keeps its links), and Portcullis'
//! unique index on (`oauth_name`, `account_id`). The DDL is
//! `store-sql-common`'s.

use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::oauth::{
    CREATE_OAUTH_ACCOUNT_UNIQUE_INDEX, create_oauth_account_table,
};
use sea_orm_migration::prelude::*;

use super::refuse_duplicate_links;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in create_oauth_account_table(Dialect::Postgres) {
            db.execute_unprepared(statement).await?;
        }
        // On an adopted table that links one provider account twice, refuse
        // by name (the whole migration rolls back) rather than let the index
        // fail on a bare constraint error.
        refuse_duplicate_links(db).await?;
        db.execute_unprepared(CREATE_OAUTH_ACCOUNT_UNIQUE_INDEX)
            .await?;
        Ok(())
    }

    /// Drops Portcullis' unique index; FastAPI Users' table and its links
    /// stay. Never run by Portcullis itself.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_oauth_account_oauth_name_account_id")
            .await?;
        Ok(())
    }
}
