//! Issue 16 (scale): an index on the user of each opaque access token.
//!
//! FastAPI Users' `accesstoken` table has none, so finding one user's
//! tokens read the whole table: ending a user's sessions (sign-out
//! everywhere, a password change or reset, deactivation: `DELETE FROM
//! accesstoken WHERE user_id = …`) and the `ON DELETE CASCADE` of a user's
//! deletion. FastAPI Users ignores the index. The DDL is
//! `store-sql-common`'s, the same as the SQLite store's.

use portcullis_store_sql_common::sessions::{
    ACCESS_TOKEN_USER_INDEX, CREATE_ACCESS_TOKEN_USER_INDEX,
};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(CREATE_ACCESS_TOKEN_USER_INDEX)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX IF EXISTS {ACCESS_TOKEN_USER_INDEX}"))
            .await?;
        Ok(())
    }
}
